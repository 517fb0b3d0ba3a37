"""Expected expression of the genes a cell sentence leaves out.

A sentence of the top ``ℓ`` genes says nothing about the value of any other gene except that it ranks below
them. Decoding those genes to 0 (C2S's decoder) is right only for a sentence that lists every expressed gene;
for a truncated sentence (a generated 50-gene sentence, say) it under-estimates every gene that was cut off.
:func:`fit_absent_values` measures, on training cells, each gene's mean expression over the cells whose top
``L`` genes do not include it (zeros included), on a grid of lengths ``L``; :func:`absent_rows` interpolates
that table at each sentence's own length, in ``log(1 + L)``. At ``L = 0`` the value is the gene's mean; past
the longest sentence of the fit cells it is 0 when those sentences listed every expressed gene.
"""

from __future__ import annotations

import numpy as np

ABSENT = ("zero", "expected")


def check_absent(absent: str, name: str = "absent") -> None:
    """Raise a ``ValueError`` naming the choices unless ``absent`` is one of :data:`ABSENT`."""
    if absent not in ABSENT:
        msg = f"`{name}` must be one of {ABSENT}, got {absent!r}."
        raise ValueError(msg)


def length_grid(top: int) -> np.ndarray:
    """``0, 1, 2, 5, 10, 20, 50 …`` up to ``top``, with ``top`` itself as the last length."""
    grid = [0] + [m * 10**k for k in range(12) for m in (1, 2, 5) if m * 10**k < top]
    return np.asarray([*grid, max(int(top), 1)], dtype=np.int64)


def fittable_length(sentence_lengths: np.ndarray, n_expressed: np.ndarray) -> int:
    """Longest ``L`` whose top-``L`` sets the sentences reveal: the shortest truncated sentence, else the longest."""
    sentence_lengths, n_expressed = np.asarray(sentence_lengths), np.asarray(n_expressed)
    truncated = sentence_lengths < n_expressed
    if truncated.any():
        return int(sentence_lengths[truncated].min())
    return int(max(sentence_lengths.max(initial=0), 1))


def fit_absent_values(
    ranks: np.ndarray,
    genes: np.ndarray,
    values: np.ndarray,
    column_sums: np.ndarray,
    n_cells: int,
    lengths: np.ndarray,
) -> np.ndarray:
    """``(len(lengths), n_genes)`` table: each gene's mean over cells whose top-``L`` genes leave it out.

    ``ranks``, ``genes`` and ``values`` are the sentence entries of the ``n_cells`` fit cells (1-based rank,
    gene index, expression); ``column_sums`` is each gene's total expression over those cells.
    """
    column_sums = np.asarray(column_sums, dtype=np.float64).ravel()
    n_genes = len(column_sums)
    table = np.empty((len(lengths), n_genes))
    for j, length in enumerate(lengths):
        top = ranks <= length
        inside = np.bincount(genes[top], values[top], minlength=n_genes)
        left_out = n_cells - np.bincount(genes[top], minlength=n_genes)
        table[j] = np.where(left_out > 0, (column_sums - inside) / np.maximum(left_out, 1), 0.0)
    return np.maximum(table, 0.0)


def absent_rows(table: np.ndarray, lengths: np.ndarray, sentence_lengths: np.ndarray) -> np.ndarray:
    """``(n_sentences, n_genes)`` float32: the table interpolated in ``log(1 + L)`` at each sentence's length."""
    x = np.log1p(np.asarray(lengths, dtype=np.float64))
    at = np.clip(np.log1p(np.asarray(sentence_lengths, dtype=np.float64)), x[0], x[-1])
    hi = np.clip(np.searchsorted(x, at, side="left"), 1, len(x) - 1)
    t = ((at - x[hi - 1]) / (x[hi] - x[hi - 1]))[:, None]
    return ((1 - t) * table[hi - 1] + t * table[hi]).astype(np.float32)


def expected_absent(
    indptr: np.ndarray, ranks: np.ndarray, genes: np.ndarray, values: np.ndarray, X: object, cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The length grid and :func:`fit_absent_values` table, fitted on rows ``cells`` of ``X`` (cells × genes).

    ``indptr``, ``ranks``, ``genes`` and ``values`` describe every row's sentence entries as a ragged array
    (:class:`~sc_llm.core.sentences.decoding.ParsedSentences` plus each entry's expression).
    """
    from scipy import sparse

    cells = np.asarray(cells, dtype=np.int64)
    sub = X[cells]
    n_expressed = np.asarray((sub > 0).sum(axis=1)).ravel()
    column_sums = np.asarray(sub.sum(axis=0) if sparse.issparse(sub) else np.sum(sub, axis=0)).ravel()
    counts = np.diff(indptr)
    cell_of = np.repeat(np.arange(len(counts)), counts)
    keep = np.isin(cell_of, cells)
    lengths = length_grid(fittable_length(counts[cells], n_expressed))
    table = fit_absent_values(ranks[keep], genes[keep], values[keep], column_sums, len(cells), lengths)
    return lengths, table
