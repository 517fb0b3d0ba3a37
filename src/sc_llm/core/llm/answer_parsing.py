"""Map a generative model's free (or reasoning) text to exactly one of the allowed labels.

Hosted models answer in prose: ``"<think>…</think> Answer: **CD4 T cells**."``, ``"cd4t"``, ``"2"``.
:func:`match_answer` strips reasoning blocks, keeps the text after the last answer marker, and compares it to
the candidates after normalising case, Unicode, punctuation, plurals and the words "cell"/"type", so that
``"CD4 T cells"``, ``"cd4-T cell"`` and ``"CD4T"`` name the same candidate. It returns ``None`` for text it
cannot map; :func:`match_answers` then falls back to the first candidate and counts those cells.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_REASONING = re.compile(r"<(think|thinking|reasoning|reflection)>.*?</\1>", re.S | re.I)
_OPEN_REASONING = re.compile(r"<(think|thinking|reasoning|reflection)>.*", re.S | re.I)
_MARKER = re.compile(
    r"(?:final\s+answer|answer|cell\s+type|prediction|predicted\s+type|choice)\s*(?:is)?\s*[:：=\-]\s*", re.I
)
_OPTION = re.compile(r"^\(?(?:option\s*)?([1-9]|[a-i])\)?[.):]?$", re.I)
_FILLER = {"cell", "cells", "type", "types", "a", "an", "the", "is", "this", "it", "of"}
_FUZZY_CUTOFF = 0.85


def strip_reasoning(text: str) -> str:
    """Drop ``<think>…</think>``-style blocks (and an unterminated block running to the end of the text)."""
    text = _REASONING.sub(" ", text)
    return _OPEN_REASONING.sub(" ", text)


def final_answer(text: str) -> str:
    """The answer part of ``text``: reasoning removed, then the text after the last answer marker (its first line)."""
    text = strip_reasoning(text).strip()
    markers = list(_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].strip()
        if rest:
            text = rest.splitlines()[0]
    return text.strip()


def normalize_label(text: str) -> str:
    """Lower-case words with punctuation (except ``+``) removed: ``'"CD14+ Monocytes".'`` → ``'cd14+ monocytes'``."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w+]+", " ", text).replace("_", " ")
    return " ".join(text.split())


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def label_key(text: str) -> str:
    """Compact matching key: normalised, filler words ("cell", "type", articles) and plurals dropped, spaces removed.

    ``'CD4 T cells'``, ``'cd4-t cell'`` and ``'CD4T'`` all give ``'cd4t'``.
    """
    words = [_singular(w) for w in normalize_label(text).split() if w not in _FILLER]
    return "".join(words)


@dataclass(frozen=True)
class _Keys:
    full: list[str]
    compact: list[str]


def _keys(candidates: Sequence[str]) -> _Keys:
    return _Keys([normalize_label(c) for c in candidates], [label_key(c) for c in candidates])


def _unique(hits: list[int]) -> int | None:
    hits = sorted(set(hits))
    return hits[0] if len(hits) == 1 else None


def _mentioned(answer: str, keys: _Keys) -> int | None:
    """A candidate named inside a longer answer.

    Names contained in another named candidate are dropped (``'T cell'`` inside ``'CD4 T cell'``); of the rest,
    the one named first wins.
    """
    padded = f" {normalize_label(answer)} "
    found = {i: padded.find(f" {name} ") for i, name in enumerate(keys.full) if name and f" {name} " in padded}
    table = keys.full
    if not found:
        compact = label_key(answer)
        found = {i: compact.find(k) for i, k in enumerate(keys.compact) if len(k) >= 2 and k in compact}
        table = keys.compact
    specific = [i for i in found if not any(j != i and table[i] in table[j] and table[i] != table[j] for j in found)]
    if not specific:
        return None
    return min(specific, key=lambda i: (found[i], i))


def match_answer(text: str | None, candidates: Sequence[str]) -> int | None:
    """Index of the candidate that ``text`` names, or ``None`` when it names none (or several equally).

    In order: exact match after normalisation; match of the compact keys (:func:`label_key`); an option
    number or letter (``"2"``, ``"(b)"``) when the answer is only that; a candidate named inside the answer
    (the most specific, then the first named); the answer inside exactly one candidate (``'Monocytes'``);
    a close spelling (``difflib`` ratio ≥ 0.85, unique best).
    """
    if text is None or not candidates:
        return None
    answer = final_answer(text).strip(" \t\"'`*_.,;:!()[]{}")
    if not answer:
        return None
    keys = _keys(candidates)
    norm, compact = normalize_label(answer), label_key(answer)
    for probe, table in ((norm, keys.full), (compact, keys.compact)):
        hit = _unique([i for i, k in enumerate(table) if k and k == probe])
        if hit is not None:
            return hit
    option = _OPTION.match(answer)
    if option:
        token = option.group(1).lower()
        idx = int(token) - 1 if token.isdigit() else ord(token) - ord("a")
        return idx if idx < len(candidates) else None
    hit = _mentioned(answer, keys)
    if hit is not None:
        return hit
    if len(compact) >= 3:  # an abbreviation inside exactly one candidate: 'Monocytes' → 'CD14+ Monocytes'
        hit = _unique([i for i, k in enumerate(keys.compact) if compact in k])
        if hit is not None:
            return hit
    for probe, table in ((norm, keys.full), (compact, keys.compact)):
        ratios = [difflib.SequenceMatcher(None, probe, k).ratio() if k else 0.0 for k in table]
        best = max(ratios)
        if best >= _FUZZY_CUTOFF and ratios.count(best) == 1:
            return ratios.index(best)
    return None


def match_answers(texts: Sequence[str | None], candidates: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Map each text to its row's candidates; unmappable answers fall back to candidate 0.

    Returns
    -------
    ``(index, mapped)``: the chosen candidate per row, and whether the text could be mapped (``False`` means
    the fallback was used).
    """
    if len(texts) != len(candidates):
        msg = f"Got {len(texts)} answers for {len(candidates)} candidate lists."
        raise ValueError(msg)
    index = np.zeros(len(texts), dtype=np.int64)
    mapped = np.zeros(len(texts), dtype=bool)
    for row, (text, cands) in enumerate(zip(texts, candidates, strict=True)):
        hit = match_answer(text, cands)
        if hit is not None:
            index[row], mapped[row] = hit, True
    return index, mapped
