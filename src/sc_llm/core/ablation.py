"""Cell-sentence ablations of the first paper, on plain lists of gene words (no AnnData here).

Every transform takes sentences as lists of gene names (most expressed first) and returns new lists; the
random ones take a :class:`numpy.random.Generator`, so a seed fixes the result. How many genes fit in an
encoder's context is decided by its tokenizer: :func:`gene_token_spans` finds each gene's token positions
with the same :class:`~sc_llm.core.gene_tokens.GeneTokenizer` that :class:`~sc_llm.core.text_encoder.TextEncoder`
uses, so "in context" means exactly the genes the encoder reads.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from .gene_tokens import GeneTokenizer

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


def _word_spans_by_prefixes(genes: GeneTokenizer, leading: list[Sentence]) -> list[list[tuple[int, int]]]:
    """Gene spans from tokenising every prefix of each sentence (any tokenizer; quadratic in the gene count)."""
    head, tail = len(genes._head), len(genes._tail)
    spans = []
    for words in leading:
        ids, truncated = genes([" ".join(words[: j + 1]) for j in range(len(words))])
        row, start = [], head + len(genes.prefix_ids)
        for x, cut in zip(ids, truncated, strict=True):
            if cut:
                break
            row.append((start, len(x) - tail))
            start = len(x) - tail
        spans.append(row)
    return spans


def _word_spans_by_offsets(genes: GeneTokenizer, leading: list[Sentence]) -> list[list[tuple[int, int]]]:
    tok = genes.tokenizer
    if not getattr(tok, "is_fast", False):
        msg = f"{type(tok).__name__} is not a fast tokenizer: it returns no character offsets."
        raise TypeError(msg)
    head = len(genes._head)
    texts = [genes._text(words) for words in leading]
    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans = []
    for words, offsets in zip(leading, enc["offset_mapping"], strict=True):
        start_char = len(genes.prefix) + 1 if genes.prefix else 0
        word_chars = []
        for w in words:
            word_chars.append((start_char, start_char + len(w)))
            start_char += len(w) + 1
        row = []
        t = 0
        for cs, ce in word_chars:
            while t < len(offsets) and offsets[t][1] <= cs:
                t += 1
            first = t
            while t < len(offsets) and offsets[t][0] < ce:
                t += 1
            if t > genes.budget or first == t:
                break
            row.append((head + first, head + t))
        spans.append(row)
    return spans


def gene_token_spans(
    genes: GeneTokenizer, sentences: Sequence[str]
) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids of each sentence (as the encoder sees them) and the token span of every gene that fits whole.

    Parameters
    ----------
    genes
        The encoder's gene tokenizer (``TextEncoder.genes``).
    sentences
        Space-separated gene names.

    Returns
    -------
    ``(ids, spans)``: ``ids[i]`` are the token ids with special tokens; ``spans[i][j] = (start, stop)`` are the
    positions in ``ids[i]`` of gene ``j`` of sentence ``i``, for the leading genes whose tokens all fit in the
    context. ``len(spans[i])`` is the number of in-context genes.
    """
    ids, _ = genes(sentences)
    leading = [genes.leading_words(s)[0] for s in sentences]
    if getattr(genes.tokenizer, "is_fast", False):
        # the encoder's ids equal whole-text tokenisation (checked by GeneTokenizer.calibrate, or done so in
        # its 'text' mode), so character offsets of the text locate every gene's tokens
        return ids, _word_spans_by_offsets(genes, leading)
    return ids, _word_spans_by_prefixes(genes, leading)


def n_in_context(genes: GeneTokenizer, sentences: Sequence[Sentence]) -> np.ndarray:
    """Count the leading genes of each sentence whose tokens fit whole in the encoder's context."""
    _, spans = gene_token_spans(genes, [" ".join(words) for words in sentences])
    return np.array([len(s) for s in spans], dtype=np.int64)


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
