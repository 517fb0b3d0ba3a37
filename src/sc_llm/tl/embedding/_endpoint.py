"""``sl.tl.embed(backend='openai')``: cell-sentence embeddings from an OpenAI-compatible ``/v1/embeddings`` server."""

from __future__ import annotations

import os
import warnings
from typing import Any

from ..._utils._anndata import get_modality, uns_key
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ..._utils._validation import check_writes
from ...core.llm.endpoint_client import ENDPOINT_OPTIONS
from ._write import write_embedding

# what only the local backend reads, and its value when unset
_LOCAL_ONLY = {
    "token_budget": None,
    "max_length": None,
    "device": None,
    "revision": None,
    "dtype": None,
    "trust_remote_code": False,
    "shard_size": 10_000,
}


def refuse_endpoint_options(base_url: str | None, endpoint_kwargs: dict | None) -> None:
    """The local backend takes neither ``base_url`` nor ``endpoint_kwargs``."""
    if base_url is not None or endpoint_kwargs is not None:
        msg = "`base_url` and `endpoint_kwargs` apply to backend='openai' only."
        raise ValueError(msg)


def _endpoint_options(encoder: str, endpoint_kwargs: dict | None, local: dict[str, Any]) -> dict:
    """Refuse the local backend's options; the endpoint's options (``on_error`` included), validated."""
    if encoder == "scgpt":
        msg = "backend='openai' embeds cell sentences with a served text encoder; scGPT runs locally only."
        raise ValueError(msg)
    given = sorted(k for k, unset in _LOCAL_ONLY.items() if local.get(k, unset) != unset)
    if local.get("encoder_kwargs"):
        given.append(f"scGPT options {sorted(local['encoder_kwargs'])}")
    if given:
        msg = f"{', '.join(given)} apply to backend='local' only (the server decides them for backend='openai')."
        raise ValueError(msg)
    options = dict(endpoint_kwargs or {})
    unknown = set(options) - ENDPOINT_OPTIONS
    if unknown:
        msg = f"Unknown `endpoint_kwargs` {sorted(unknown)}; allowed: {sorted(ENDPOINT_OPTIONS)}."
        raise ValueError(msg)
    return options


def embed_endpoint(
    adata: Any,
    *,
    model: str,
    sentence_key: str,
    key_added: str,
    batch_size: int,
    prefix: str | None,
    base_url: str | None,
    cache_dir: str | os.PathLike | None,
    endpoint_kwargs: dict | None,
    mod: str | None,
    progress: bool,
    copy: bool,
    encoder: str,
    backend: str = "openai",
    **local: Any,
):
    """Embed ``adata.obs[sentence_key]`` with a served model and write ``.obsm[key_added]`` and its parameters.

    Takes every argument of :func:`sc_llm.tl.embed`; ``local`` holds those of the local backend, refused here.
    """
    from ...core.llm.embeddings import embed_texts

    options = _endpoint_options(encoder, endpoint_kwargs, local)
    target = get_modality(adata, mod)
    sentences = read_sentences(target, sentence_key)
    check_writes(target, {"obsm": [key_added], "uns": [uns_key(key_added)]}, {})
    texts = [f"{prefix} {s}" if prefix else s for s in sentences]
    on_error = options.pop("on_error", "raise")
    start = logg.info(f"embedding {len(texts)} cell sentences with the served {model!r} into adata.obsm[{key_added!r}]")
    X, info = embed_texts(
        texts,
        model=model,
        base_url=base_url,
        batch_size=batch_size,
        cache_dir=cache_dir,
        on_error=on_error,
        progress=progress,
        **options,
    )
    endpoint = info["endpoint"]
    if info["n_failed"] == len(texts) and texts:
        msg = f"No cell got an embedding from {endpoint['base_url']} ({info['stats']['failed']} requests failed)."
        raise RuntimeError(msg)
    if info["n_failed"]:
        warnings.warn(
            f"{info['n_failed']} of {len(texts)} cells got no embedding (on_error='skip'): their rows are NaN. "
            "Rerun with the same cache_dir to ask only for them.",
            UserWarning,
            stacklevel=3,
        )
    params = {"model": model, "encoder": "text", "backend": "openai", "base_url": endpoint["base_url"]}
    params |= {"sentence_key": sentence_key, "prefix": prefix, "batch_size": batch_size, "dim": info["dim"]}
    params |= {"endpoint": endpoint | {"on_error": on_error}, "cache": str(cache_dir) if cache_dir else None}
    params |= {"n_failed": info["n_failed"], "stats": info["stats"]}
    return write_embedding(adata, X, params, key_added=key_added, mod=mod, copy=copy, start=start)
