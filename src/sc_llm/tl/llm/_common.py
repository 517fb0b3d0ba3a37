"""What ``llm_rerank`` and ``llm_annotate`` share: reading sentences, and running the local or endpoint backend."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.llm.endpoint_client import ENDPOINT_OPTIONS

if TYPE_CHECKING:
    pass

BACKENDS = ("local", "openai")


@dataclass
class Backend:
    """Backend choice and options, validated before anything is loaded or asked."""

    name: str
    model: str
    batch_size: int = 8
    length_normalize: bool = False
    chat_template: bool | None = None
    device: Any = None
    dtype: Any = None
    gguf_file: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    base_url: str | None = None
    cache_dir: str | os.PathLike | None = None
    endpoint_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in BACKENDS:
            msg = f"`backend` must be one of {BACKENDS}, got {self.name!r}."
            raise ValueError(msg)
        if not isinstance(self.model, str | os.PathLike) or not str(self.model):
            msg = "`model` must name a checkpoint (hub id or local folder) or, for backend='openai', a served model."
            raise TypeError(msg)
        if self.batch_size < 1:
            msg = f"`batch_size` must be positive, got {self.batch_size}."
            raise ValueError(msg)
        unknown = set(self.endpoint_kwargs) - ENDPOINT_OPTIONS
        if unknown:
            msg = f"Unknown `endpoint_kwargs` {sorted(unknown)}; allowed: {sorted(ENDPOINT_OPTIONS)}."
            raise ValueError(msg)
        if self.name == "local" and (self.base_url or self.endpoint_kwargs or self.cache_dir):
            msg = "`base_url`, `cache_dir` and `endpoint_kwargs` apply to backend='openai' only."
            raise ValueError(msg)

    def load(self, work: str = "score"):
        """``(model, tokenizer)`` of the local causal LM, in eval mode on its device, set up for ``work``."""
        from ...core.llm.loading import load_causal_lm

        return load_causal_lm(
            str(self.model),
            revision=self.revision,
            gguf_file=self.gguf_file,
            trust_remote_code=self.trust_remote_code,
            device=self.device,
            dtype=self.dtype,
            work=work,
        )

    def endpoint(self):
        """The :class:`~sc_llm.core.llm.endpoint.ChatEndpoint` (the API key stays in the environment)."""
        from ...core.llm.endpoint import ChatEndpoint

        options = {k: v for k, v in self.endpoint_kwargs.items() if k != "on_error"}
        return ChatEndpoint(str(self.model), base_url=self.base_url, cache_dir=self.cache_dir, **options)

    def params(self) -> dict:
        """What goes to ``.uns[key]['params']`` (no key, no client)."""
        out = {"backend": self.name, "model": str(self.model)}
        if self.name == "local":
            out |= {
                "batch_size": self.batch_size,
                "length_normalize": self.length_normalize,
                "gguf_file": self.gguf_file or "",
                "revision": self.revision or "",
                "dtype": str(self.dtype or ""),
            }
        return out


def run_local_scores(backend: Backend, chats, candidates: Sequence[Sequence[str]], *, template) -> dict:
    """Candidate log-likelihoods with the local model: ``scores``, ``probs``, ``index``, ``chat_template``."""
    from ...core.llm.choice import choose_by_score, local_scores

    start = time.perf_counter()
    model, tokenizer = backend.load()
    loaded = time.perf_counter()
    scores, chat = local_scores(
        model,
        tokenizer,
        chats,
        candidates,
        template=template,
        chat_template=backend.chat_template,
        batch_size=backend.batch_size,
        length_normalize=backend.length_normalize,
        progress=True,
    )
    from ...core.base.device import dtype_name
    from ...core.llm.loading import compute_dtype

    index, probs = choose_by_score(scores)
    seconds = {"load": loaded - start, "score": time.perf_counter() - loaded}
    out = {"scores": scores, "probs": probs, "index": index, "chat_template": chat, "seconds": seconds}
    return out | {"dtype": dtype_name(compute_dtype(model))}


def run_endpoint_choice(backend: Backend, chats, candidates: Sequence[Sequence[str]], *, template=None) -> dict:
    """Parsed endpoint answers: ``index``, ``mapped``, ``asked`` and the endpoint's description and stats."""
    from ...core.llm.choice import endpoint_choice

    endpoint = backend.endpoint()
    on_error = backend.endpoint_kwargs.get("on_error", "raise")
    index, mapped, asked = endpoint_choice(endpoint, chats, candidates, on_error=on_error, progress=True)
    return {
        "index": index,
        "mapped": mapped,
        "asked": asked,
        "endpoint": endpoint.describe() | {"on_error": on_error},
        "stats": endpoint.stats.to_dict(),
    }


def as_categorical(values: Sequence[str | None], categories: Sequence[str]):
    """A :class:`pandas.Categorical` over ``categories`` (``None`` → missing)."""
    import pandas as pd

    return pd.Categorical(list(values), categories=list(categories))


def nan_scores_frame(index, values: np.ndarray, prefix: str, columns: Sequence[str] | None = None):
    """A DataFrame of per-candidate numbers, columns ``prefix_1..k`` (or ``columns``)."""
    import pandas as pd

    cols = list(columns) if columns is not None else [f"{prefix}_{j + 1}" for j in range(values.shape[1])]
    return pd.DataFrame(values, index=index, columns=cols)
