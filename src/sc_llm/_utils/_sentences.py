"""Cell sentences as users store them: the one reader of a sentence column, for memory and for files.

A sentence column is what :func:`sc_llm.pp.cell_sentences` writes: one string of gene names per cell,
separated by spaces. It may come back from ``.h5ad`` as a Categorical. The rules, in one place
(:func:`as_sentences`):

- numbers, booleans or other non-text values are refused (they are not sentences);
- a missing value is an empty sentence, with a warning (``empty='warn'``), or an error (``empty='error'``,
  for tools that cannot answer for a cell without genes);
- words are separated by one space; ``n_genes`` keeps the first (highest-ranked) ``n_genes`` words.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._validation import check_count

if TYPE_CHECKING:
    from anndata import AnnData

EMPTY = ("warn", "error")


def split_sentence(sentence: str) -> list[str]:
    """The gene words of a cell sentence: split on any run of whitespace, no empty words."""
    return sentence.split()


def _missing_column(adata: AnnData, key: str) -> KeyError:
    return KeyError(
        f"No cell sentences in `adata.obs[{key!r}]` (columns: {list(adata.obs.columns)}). "
        "Run `sl.pp.cell_sentences(adata)` first, or pass `sentence_key=` naming the column that holds them."
    )


def as_sentences(values: Any, where: str, *, n_genes: int | None = None, empty: str = "warn") -> list[str]:
    """The cell sentences of a column (a Series or array) as plain strings, by the rules of the module docstring."""
    if empty not in EMPTY:
        msg = f"`empty` must be one of {EMPTY}, got {empty!r}."
        raise ValueError(msg)
    n_genes = check_count(n_genes, "n_genes", allow_none=True)
    col = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = col.dtype.categories.dtype if isinstance(col.dtype, pd.CategoricalDtype) else col.dtype
    if len(col) and (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        msg = (
            f"{where} holds numbers ({dtype}), not cell sentences. Pass `sentence_key=` a column of text such as "
            "the one written by `sl.pp.cell_sentences`."
        )
        raise TypeError(msg)
    raw = col.astype(object).to_numpy()
    missing = pd.isna(raw)
    not_text = [v for v, m in zip(raw, missing, strict=True) if not m and not isinstance(v, str)]
    if not_text:
        msg = (
            f"{where} holds {len(not_text)} value(s) that are not text, e.g. {not_text[0]!r} "
            f"({type(not_text[0]).__name__}). Cell sentences are strings of gene names; recompute them with "
            "`sl.pp.cell_sentences`."
        )
        raise TypeError(msg)
    sentences = ["" if m else " ".join(v.split()[:n_genes]) for v, m in zip(raw, missing, strict=True)]
    _check_empty(sentences, missing, where, empty)
    return sentences


def _check_empty(sentences: list[str], missing, where: str, empty: str) -> None:
    if empty == "error":
        n_empty = sum(not s for s in sentences)
        if n_empty:
            msg = (
                f"{n_empty} cell(s) have an empty or missing sentence in {where}; filter them first (e.g. "
                "`sc.pp.filter_cells(adata, min_genes=1)`) and recompute the sentences."
            )
            raise ValueError(msg)
    elif missing.any():
        warnings.warn(
            f"{int(missing.sum())} cell(s) have a missing sentence in {where}; they are read as empty.",
            UserWarning,
            stacklevel=4,
        )


def read_sentences(adata: AnnData, key: str, *, n_genes: int | None = None, empty: str = "warn") -> list[str]:
    """The cell sentences of ``adata.obs[key]``, one string per cell (see :func:`as_sentences`)."""
    if key not in adata.obs:
        raise _missing_column(adata, key)
    return as_sentences(adata.obs[key], f"`adata.obs[{key!r}]`", n_genes=n_genes, empty=empty)


def read_sentence_words(
    adata: AnnData, key: str, *, n_genes: int | None = None, empty: str = "warn"
) -> list[list[str]]:
    """The first ``n_genes`` gene words of every cell sentence in ``adata.obs[key]``."""
    return [split_sentence(s) for s in read_sentences(adata, key, n_genes=n_genes, empty=empty)]
