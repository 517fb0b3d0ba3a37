"""Tokenise cell sentences gene by gene, only as far as the encoder's context reaches.

A cell sentence can hold thousands of genes while a text encoder reads a few hundred tokens. Rather than
tokenising every full sentence and throwing most of it away, each distinct gene name is tokenised once and
a cell's token ids are the concatenation of its leading genes' ids, cut at the token budget. This equals
tokenising the full sentence with truncation whenever the tokenizer splits on whitespace first (WordPiece,
byte-level BPE, SentencePiece with a word-boundary marker); :class:`GeneTokenizer` checks that equality
on the data at hand and otherwise tokenises each cell's leading words as text.

Which tokens belong to which gene (:func:`gene_token_spans`) and how many genes fit whole in the context
(:func:`n_in_context`) are answered here too, so that nothing outside this module reads the tokenizer's internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

_PROBE_CELLS = 8
_PROBE_WORDS = 48


def _special_wrapping(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens a tokenizer puts before and after one sequence, found by tokenising a probe."""
    probe = "cell"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare) :])
    msg = f"Cannot tell where {type(tokenizer).__name__} puts its special tokens."
    raise ValueError(msg)


class GeneTokenizer:
    """Turn sentences (space-separated words) into token ids that fit ``max_length``, special tokens included.

    Parameters
    ----------
    tokenizer
        A Hugging Face tokenizer.
    max_length
        Maximum sequence length including special tokens.
    prefix
        Text put before the genes (e.g. ``"A cell with genes ranked by expression:"``); counts toward the budget.
    """

    def __init__(self, tokenizer: Any, max_length: int, prefix: str | None = None):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.prefix = prefix or ""
        self._head, self._tail = _special_wrapping(tokenizer)
        self.budget = self.max_length - len(self._head) - len(self._tail)
        if self.budget < 1:
            msg = f"max_length={max_length} leaves no room for tokens after the special tokens."
            raise ValueError(msg)
        self.prefix_ids: list[int] = self._encode(self.prefix) if self.prefix else []
        if len(self.prefix_ids) >= self.budget:
            msg = (
                f"The prefix takes {len(self.prefix_ids)} tokens but only {self.budget} fit in max_length={max_length} "
                "(after the special tokens), leaving no room for genes: every cell would get the same embedding. "
                "Shorten the prefix or raise `max_length`."
            )
            raise ValueError(msg)
        self.mode: str | None = None  # set by calibrate()
        self._cache: dict[tuple[str, bool], list[int]] = {}

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _text(self, words: Sequence[str]) -> str:
        body = " ".join(words)
        return f"{self.prefix} {body}" if self.prefix else body

    def _word_ids(self, words: Sequence[str], space: bool) -> list[list[int]]:
        items = [" " + w for w in words] if space else list(words)
        return self.tokenizer(items, add_special_tokens=False)["input_ids"] if items else []

    def _spaced(self, mode: str) -> tuple[bool, bool]:
        """Whether the first word and the later words are tokenised with a leading space in ``mode``."""
        later = mode != "word"
        first = later if mode != "mixed" or self.prefix else False
        return first, later

    def _concat(self, words: Sequence[str], mode: str) -> list[int]:
        first, later = self._spaced(mode)
        ids = list(self.prefix_ids)
        if words:
            ids += self._word_ids(words[:1], first)[0]
            ids += list(chain.from_iterable(self._word_ids(words[1:], later)))
        return ids

    def calibrate(self, sentences: Sequence[str]) -> str:
        """Choose how words are tokenised by checking concatenation against whole-text tokenisation.

        Modes: ``'word'`` (each word alone: WordPiece, SentencePiece), ``'space_word'`` (each word after a
        space), ``'mixed'`` (byte-level BPE without a prefix space: the first word bare, later words after a
        space), or ``'text'`` when none reproduces the tokenizer (the leading words are then tokenised as text).
        """
        probes = [s.split(" ", _PROBE_WORDS)[:_PROBE_WORDS] for s in sentences[:_PROBE_CELLS] if s]
        self.mode = "text"
        if not probes:
            self.mode = "word"
            return self.mode
        for mode in ("word", "space_word", "mixed"):
            if all(self._concat(words, mode) == self._encode(self._text(words)) for words in probes):
                self.mode = mode
                break
        return self.mode

    def leading_words(self, sentence: str) -> tuple[list[str], bool]:
        """The words that can fit (each word is at least one token) and whether any were left out."""
        room = max(self.budget - len(self.prefix_ids), 0)
        words = sentence.split(" ", room) if sentence else []
        more = len(words) > room
        return words[:room], more

    def __call__(self, sentences: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids with special tokens for each sentence, and whether each was truncated."""
        if self.mode is None:
            self.calibrate(sentences)
        leading = [self.leading_words(s) for s in sentences]
        if self.mode == "text":
            return self._by_text(leading)
        first, later = self._spaced(self.mode)
        wanted = {(w, later) for words, _ in leading for w in words[1:]}
        wanted |= {(words[0], first) for words, _ in leading if words}
        for space in (False, True):
            new = sorted(w for w, sp in wanted if sp == space and (w, sp) not in self._cache)
            self._cache.update(zip(((w, space) for w in new), self._word_ids(new, space), strict=True))
        out, truncated = [], []
        cache = self._cache
        for words, more in leading:
            ids = list(self.prefix_ids)
            if words:
                ids += cache[words[0], first]
                ids += chain.from_iterable(cache[w, later] for w in words[1:])
            cut = len(ids) > self.budget
            out.append(self._head + ids[: self.budget] + self._tail)
            truncated.append(cut or more)
        return out, truncated

    def _by_text(self, leading: list[tuple[list[str], bool]]) -> tuple[list[list[int]], list[bool]]:
        texts = [self._text(words) for words, _ in leading]
        enc = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        out = [self._head + ids[: self.budget] + self._tail for ids in enc]
        truncated = [len(ids) > self.budget or more for ids, (_, more) in zip(enc, leading, strict=True)]
        return out, truncated


def _word_spans_by_prefixes(genes: GeneTokenizer, leading: list[list[str]]) -> list[list[tuple[int, int]]]:
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


def _word_spans_by_offsets(genes: GeneTokenizer, leading: list[list[str]]) -> list[list[tuple[int, int]]]:
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


def n_in_context(genes: GeneTokenizer, sentences: Sequence[Sequence[str]]) -> np.ndarray:
    """Count the leading genes of each sentence whose tokens fit whole in the encoder's context."""
    _, spans = gene_token_spans(genes, [" ".join(words) for words in sentences])
    return np.array([len(s) for s in spans], dtype=np.int64)
