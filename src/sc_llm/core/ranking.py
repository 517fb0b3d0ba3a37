"""Rank genes within each cell of a CSR matrix: the numeric heart of cell sentences.

Order: descending expression; ties keep the column (``.var``) order, i.e. the lower column index first.
Explicitly stored zeros are dropped. Values are compared at float32 precision.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

_ROW_BITS = 14  # rows per packed sort
_GENE_BITS = 18  # up to 262,144 genes with the packed-key sort
_MAX_ROWS = 1 << _ROW_BITS
_MAX_GENES = 1 << _GENE_BITS


def rank_genes(X: sparse.csr_matrix, n_genes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-row gene indices in descending order of value, zeros dropped.

    Parameters
    ----------
    X
        Cells × genes CSR matrix with finite, non-negative values.
    n_genes
        Keep at most this many genes per cell (the top ones); all non-zero genes when ``None``.

    Returns
    -------
    ``(indptr, genes)`` in CSR style: the ranked gene indices of row ``i`` are ``genes[indptr[i]:indptr[i + 1]]``.
    """
    X = sparse.csr_matrix(X)
    n_rows, n_cols = X.shape
    indptr_out = np.zeros(n_rows + 1, dtype=np.int64)
    parts = []
    step = _MAX_ROWS if n_cols <= _MAX_GENES else n_rows or 1
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = X[start:stop]
        genes, counts = (_rank_packed if n_cols <= _MAX_GENES else _rank_lexsort)(block, n_genes)
        parts.append(genes)
        indptr_out[start + 1 : stop + 1] = counts
    np.cumsum(indptr_out, out=indptr_out)
    genes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return indptr_out, genes.astype(np.int32, copy=False)


def _row_ids(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def _keep_top(rows: np.ndarray, n_rows: int, n_genes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Given sorted row ids, return a mask of the first ``n_genes`` per row and the per-row counts."""
    counts = np.bincount(rows, minlength=n_rows)
    if n_genes is None:
        return np.ones(len(rows), dtype=bool), counts
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(rows)) - np.repeat(starts, counts)
    return pos < n_genes, np.minimum(counts, n_genes)


def _rank_packed(block: sparse.csr_matrix, n_genes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One ``np.sort`` of uint64 keys ``row | inverted float32 bits | column`` per block of rows."""
    values = block.data.astype(np.float32, copy=False)
    nz = values != 0
    rows = _row_ids(block.indptr)
    cols = block.indices
    if not nz.all():
        values, rows, cols = values[nz], rows[nz], cols[nz]
    # For non-negative float32, the bit pattern as uint32 is monotone in the value; invert it for descending.
    inv_bits = (~values.view(np.uint32)).astype(np.uint64)
    keys = (rows.astype(np.uint64) << np.uint64(32 + _GENE_BITS)) | (inv_bits << np.uint64(_GENE_BITS))
    keys |= cols.astype(np.uint64)
    keys.sort()
    sorted_rows = (keys >> np.uint64(32 + _GENE_BITS)).astype(np.int64)
    genes = (keys & np.uint64(_MAX_GENES - 1)).astype(np.int32)
    keep, counts = _keep_top(sorted_rows, block.shape[0], n_genes)
    return genes[keep], counts


def _rank_lexsort(block: sparse.csr_matrix, n_genes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Fallback for very wide matrices: a lexsort on (row, -value, column)."""
    values = block.data.astype(np.float32, copy=False)
    nz = values != 0
    rows = _row_ids(block.indptr)[nz]
    cols = block.indices[nz]
    values = values[nz]
    order = np.lexsort((cols, -values, rows))
    keep, counts = _keep_top(rows[order], block.shape[0], n_genes)
    return cols[order][keep].astype(np.int32), counts


def join_sentences(indptr: np.ndarray, genes: np.ndarray, names: np.ndarray, sep: str = " ") -> list[str]:
    """Turn ranked gene indices into space-separated sentences."""
    words = names[genes].tolist()
    bounds = indptr.tolist()
    return [sep.join(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
