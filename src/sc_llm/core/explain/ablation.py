"""Cell-sentence ablations of the first paper, on plain lists of gene words (no AnnData here).

Every transform takes sentences as lists of gene names (most expressed first) and returns new lists; the
random ones take a :class:`numpy.random.Generator`, so a seed fixes the result. How many genes fit in an
encoder's context is decided by its tokenizer: :func:`~sc_llm.core.text.gene_tokens.n_in_context` counts them with
the same :class:`~sc_llm.core.text.gene_tokens.GeneTokenizer` that :class:`~sc_llm.core.text.encoder.TextEncoder`
uses, so "in context" means exactly the genes the encoder reads.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from ..text.gene_tokens import GeneTokenizer, n_in_context

HASH_LENGTH = 10

Sentence = list[str]


def hash_gene(name: str, length: int = HASH_LENGTH) -> str:
    """SHA-256 hex digest of a gene name, truncated to ``length`` characters (the same name, the same hash)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:length]


def hash_genes(sentences: Sequence[Sentence], length: int = HASH_LENGTH) -> list[Sentence]:
    """Replace every gene name by its truncated SHA-256 hash, consistently across cells."""
    cache: dict[str, str] = {}
    out = []
    for words in sentences:
        row = []
        for w in words:
            h = cache.get(w)
            if h is None:
                h = cache[w] = hash_gene(w, length)
            row.append(h)
        out.append(row)
    return out


def random_hashes(sentences: Sequence[Sentence], rng: np.random.Generator, length: int = HASH_LENGTH) -> list[Sentence]:
    """Replace every gene occurrence by a fresh random hex string of ``length`` characters."""
    n_bytes = math.ceil(length / 2)
    out = []
    for words in sentences:
        raw = rng.bytes(n_bytes * len(words)).hex()
        step = 2 * n_bytes
        out.append([raw[i * step : i * step + length] for i in range(len(words))])
    return out


def shuffle_leading(
    sentences: Sequence[Sentence], n_leading: Sequence[int] | None, rng: np.random.Generator
) -> list[Sentence]:
    """Shuffle the first ``n_leading[i]`` genes of sentence ``i`` (all genes when ``n_leading`` is ``None``).

    The genes after the shuffled part keep their place, so each sentence keeps its multiset of genes.
    """
    out = []
    for i, words in enumerate(sentences):
        n = len(words) if n_leading is None else min(int(n_leading[i]), len(words))
        head = [words[j] for j in rng.permutation(n)] if n > 1 else list(words[:n])
        out.append(head + list(words[n:]))
    return out


def keep_leading(sentences: Sequence[Sentence], n_leading: Sequence[int]) -> list[Sentence]:
    """Keep only the first ``n_leading[i]`` genes of sentence ``i``."""
    return [list(words[: int(n)]) for words, n in zip(sentences, n_leading, strict=True)]


def fraction_count(n: Sequence[int] | np.ndarray, fraction: float) -> np.ndarray:
    """``ceil(fraction * n)`` per entry: the number of genes in the top ``fraction`` (at least one if ``n > 0``)."""
    n = np.asarray(n, dtype=np.int64)
    return np.minimum(np.ceil(fraction * n - 1e-9).astype(np.int64), n)


MODES = (
    "hash",
    "random_hash",
    "shuffle_all",
    "shuffle_in_context",
    "shuffle_top_in_context",
    "hash_shuffle_in_context",
    "shorten",
)
NEEDS_TOKENIZER = ("shuffle_in_context", "shuffle_top_in_context", "hash_shuffle_in_context", "shorten")


def ablate(
    sentences: Sequence[Sentence],
    mode: str,
    *,
    rng: np.random.Generator,
    genes: GeneTokenizer | None = None,
    fraction: float = 0.1,
) -> tuple[list[Sentence], np.ndarray | None]:
    """Apply one ablation of the paper to lists of gene words.

    Parameters
    ----------
    sentences
        Gene names per cell, most expressed first.
    mode
        ``'hash'`` (truncated SHA-256 per gene name), ``'random_hash'`` (a fresh random hex string per
        occurrence), ``'shuffle_all'``, ``'shuffle_in_context'`` (shuffle the genes that fit in the context),
        ``'shuffle_top_in_context'`` (shuffle the top ``fraction`` of the in-context genes),
        ``'hash_shuffle_in_context'`` (hash, then shuffle the hashed genes that fit) or ``'shorten'`` (keep the
        top ``fraction`` of the in-context genes).
    rng
        Random generator for the random modes.
    genes
        The encoder's gene tokenizer; required by the in-context modes.
    fraction
        Share of in-context genes used by ``'shuffle_top_in_context'`` and ``'shorten'`` (rounded up).

    Returns
    -------
    ``(ablated, n_context)``: the new sentences and, for in-context modes, the in-context gene count of each
    sentence the count was taken on (``None`` otherwise).
    """
    if mode not in MODES:
        msg = f"Unknown ablation mode {mode!r}; choose one of {MODES}."
        raise ValueError(msg)
    if mode in NEEDS_TOKENIZER and genes is None:
        msg = f"Ablation {mode!r} needs the encoder's tokenizer to count in-context genes; pass `model=`."
        raise ValueError(msg)
    if not 0 < fraction <= 1:
        msg = f"`fraction` must be in (0, 1], got {fraction}."
        raise ValueError(msg)
    if mode == "hash":
        return hash_genes(sentences), None
    if mode == "random_hash":
        return random_hashes(sentences, rng), None
    if mode == "shuffle_all":
        return shuffle_leading(sentences, None, rng), None
    if mode == "hash_shuffle_in_context":
        sentences = hash_genes(sentences)
    n_ctx = n_in_context(genes, sentences)
    if mode == "shorten":
        return keep_leading(sentences, fraction_count(n_ctx, fraction)), n_ctx
    n = fraction_count(n_ctx, fraction) if mode == "shuffle_top_in_context" else n_ctx
    return shuffle_leading(sentences, n, rng), n_ctx
