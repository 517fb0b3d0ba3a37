"""Tokenise cell sentences gene by gene, only as far as the encoder's context reaches.

A cell sentence can hold thousands of genes while a text encoder reads a few hundred tokens. Rather than
tokenising every full sentence and throwing most of it away, each distinct gene name is tokenised once and
a cell's token ids are the concatenation of its leading genes' ids, cut at the token budget. This equals
tokenising the full sentence with truncation whenever the tokenizer splits on whitespace first (WordPiece,
byte-level BPE, SentencePiece with a word-boundary marker); :class:`GeneTokenizer` checks that equality
on the data at hand and otherwise tokenises each cell's leading words as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

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
        self.mode: str | None = None  # 'word', 'space_word' or 'text', set by calibrate()
        self._cache: dict[str, list[int]] = {}

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _text(self, words: Sequence[str]) -> str:
        body = " ".join(words)
        return f"{self.prefix} {body}" if self.prefix else body

    def _word_ids(self, words: Sequence[str], mode: str) -> list[list[int]]:
        items = list(words) if mode == "word" else [" " + w for w in words]
        return self.tokenizer(items, add_special_tokens=False)["input_ids"] if items else []

    def calibrate(self, sentences: Sequence[str]) -> str:
        """Choose how words are tokenised by checking concatenation against whole-text tokenisation."""
        probes = [s.split(" ", _PROBE_WORDS)[:_PROBE_WORDS] for s in sentences[:_PROBE_CELLS] if s]
        self.mode = "text"
        if not probes:
            self.mode = "space_word"
            return self.mode
        for mode in ("word", "space_word"):
            ok = True
            for words in probes:
                joined = self.prefix_ids + list(chain.from_iterable(self._word_ids(words, mode)))
                if joined != self._encode(self._text(words)):
                    ok = False
                    break
            if ok:
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
        new = {w for words, _ in leading for w in words if w not in self._cache}
        if new:
            new = sorted(new)
            self._cache.update(zip(new, self._word_ids(new, self.mode), strict=True))
        out, truncated = [], []
        cache = self._cache
        for words, more in leading:
            ids = self.prefix_ids + list(chain.from_iterable(cache[w] for w in words))
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
