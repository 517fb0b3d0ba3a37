"""Free texts (gene descriptions, labels) to vectors: the one call every text-embedding path goes through.

Cell sentences are tokenised gene by gene (:mod:`~sc_llm.core.text.gene_tokens`); a free text is tokenised
whole, as sentence-transformers does, and cut at the encoder's context. :func:`encode_texts` maps a list of
texts to vectors given an *encoder*: a local :class:`~sc_llm.core.text.encoder.TextEncoder`, or any object with
``encode_texts(texts, *, batch_size, progress, desc) -> (vectors, truncated)`` and ``params()`` (the door for
an embeddings endpoint). :func:`text_identity` says which settings of an encoder change the vectors, so caches
of text vectors are keyed by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TOKENIZE_CHUNK = 4096
"""Texts tokenised at a time."""
IDENTITY_FIELDS = ("model", "revision", "fingerprint", "pooling", "normalize", "max_length", "dtype")
"""The settings of :meth:`TextEncoder.params` that change a text's vector (the device does not, beyond rounding)."""


def tokenize_texts(encoder: Any, texts: Sequence[str]) -> tuple[list[list[int]], np.ndarray]:
    """Token ids of whole texts, special tokens included, cut at ``encoder.max_length``; and which were cut.

    The tokenizer's own truncation is used (as sentence-transformers does), so the ids are what it would feed
    the model; only texts that reach the context are tokenised a second time, untruncated, to tell whether
    anything was left out.
    """
    tok, limit = encoder.tokenizer, int(encoder.max_length)
    texts = [str(t) for t in texts]
    ids: list[list[int]] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):  # chunks: a tokenizer's batch output is many times the ids
        ids += [
            list(x) for x in tok(texts[start : start + TOKENIZE_CHUNK], truncation=True, max_length=limit)["input_ids"]
        ]
    full = [i for i, x in enumerate(ids) if len(x) >= limit]
    truncated = np.zeros(len(texts), dtype=bool)
    if full:
        room = limit - tok.num_special_tokens_to_add(pair=False)
        bare = tok([texts[i] for i in full], add_special_tokens=False, verbose=False)["input_ids"]
        truncated[full] = [len(x) > room for x in bare]
    return ids, truncated


def encode_texts(
    encoder: Any, texts: Sequence[str], *, batch_size: int = 32, progress: bool = True, desc: str = "texts"
) -> tuple[np.ndarray, np.ndarray]:
    """Embed free texts: ``(vectors float32 (n, dim), truncated bool (n,))``, in the order of ``texts``.

    Parameters
    ----------
    encoder
        A :class:`~sc_llm.core.text.encoder.TextEncoder` (texts batched by token length, order restored, pooled
        and normalised by the model's sentence-transformers settings), or an object with an
        ``encode_texts(texts, *, batch_size, progress, desc)`` method returning the same pair.
    texts
        The texts; an empty list gives a ``(0, dim)`` array.
    batch_size
        Texts per forward pass (or per request).
    progress
        Show a progress bar.
    desc
        The progress bar's label.
    """
    from .encoder import TextEncoder

    if isinstance(encoder, TextEncoder):
        ids, truncated = tokenize_texts(encoder, texts)
        if not ids:
            return np.zeros((0, encoder.dim), dtype=np.float32), truncated
        X = encoder.encode_ids(ids, batch_size=batch_size, progress=progress, desc=desc)
        return X, truncated
    method = getattr(encoder, "encode_texts", None)
    if not callable(method):
        msg = (
            f"Cannot embed texts with a {type(encoder).__name__}: pass a model (hub id or folder), a TextEncoder, "
            "or an object with `encode_texts(texts, *, batch_size, progress, desc)`."
        )
        raise TypeError(msg)
    X, truncated = method(list(texts), batch_size=batch_size, progress=progress, desc=desc)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(texts):
        msg = f"{type(encoder).__name__}.encode_texts returned shape {X.shape} for {len(texts)} texts."
        raise ValueError(msg)
    return X, np.asarray(truncated, dtype=bool)


def text_identity(encoder: Any) -> dict[str, Any]:
    """What makes an encoder's text vectors what they are: model identity and the settings that change them.

    ``{'model', 'revision', 'fingerprint', 'pooling', 'normalize', 'max_length', 'dtype', 'tokenization'}``
    for a :class:`~sc_llm.core.text.encoder.TextEncoder` (from its ``params()``, which names the checkpoint by
    :func:`~sc_llm.core.base.identity.model_identity`); for another encoder, every JSON-able field of its
    ``params()``.
    """
    params = dict(encoder.params())
    from .encoder import TextEncoder

    if isinstance(encoder, TextEncoder):
        out = {k: params.get(k) for k in IDENTITY_FIELDS}
        out["tokenization"] = "text"
        return out
    return {k: v for k, v in params.items() if isinstance(v, str | int | float | bool | type(None))}
