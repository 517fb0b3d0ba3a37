"""Rank genes within each cell of a CSR matrix, and spell the rankings out: the numeric heart of cell sentences.

Order: descending expression; ties keep the column (``.var``) order, i.e. the lower column index first.
Explicitly stored zeros are dropped. Values are compared at float32 precision.

Speed and memory: rows are ranked in blocks of about a million stored values with one ``np.sort`` of
packed ``uint64`` keys per block, and sentences are assembled as bytes with array operations, then cut
into one Python string per cell. Working memory is bounded by the block size, not by the matrix.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy import sparse

_ROW_BITS = 14  # rows per packed sort
_GENE_BITS = 18  # up to 262,144 genes with the packed-key sort
_MAX_ROWS = 1 << _ROW_BITS
_MAX_GENES = 1 << _GENE_BITS
_BLOCK_NNZ = 1 << 20  # stored values per sort: keeps the temporaries (~8 bytes each) small and cache-friendly
_JOIN_BYTES = 1 << 22  # bytes gathered at once when spelling sentences out (small allocations are reused)


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
    if n_cols > _MAX_GENES:
        genes, counts = _rank_lexsort(X, n_genes)
        indptr_out[1:] = np.cumsum(counts)
        return indptr_out, genes.astype(np.int32, copy=False)
    parts = []
    for start, stop in _row_blocks(X.indptr):
        lo, hi = X.indptr[start], X.indptr[stop]
        genes, counts = _rank_packed(X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo, n_genes)
        parts.append(genes)
        indptr_out[start + 1 : stop + 1] = counts
    np.cumsum(indptr_out, out=indptr_out)
    genes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return indptr_out, genes


def _row_blocks(indptr: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges holding at most ``_MAX_ROWS`` rows and about ``_BLOCK_NNZ`` stored values."""
    n_rows = len(indptr) - 1
    blocks, start = [], 0
    while start < n_rows:
        by_nnz = int(np.searchsorted(indptr, indptr[start] + _BLOCK_NNZ, side="right")) - 1
        stop = min(start + _MAX_ROWS, n_rows, max(by_nnz, start + 1))
        blocks.append((start, stop))
        start = stop
    return blocks


def _top_n(genes: np.ndarray, counts: np.ndarray, n_genes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``n_genes`` entries of each row of a ragged array given by per-row ``counts``."""
    if n_genes is None or len(counts) == 0 or counts.max() <= n_genes:
        return genes, counts
    kept = np.minimum(counts, n_genes)
    starts_in = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts_in[1:])
    starts_out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(kept[:-1], out=starts_out[1:])
    idx = np.arange(int(kept.sum()), dtype=np.int64)
    idx += np.repeat(starts_in - starts_out, kept)
    return genes[idx], kept


def _rank_packed(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_genes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank one block of CSR rows with one ``np.sort`` of uint64 keys ``row | inverted float32 bits | column``."""
    values = data.astype(np.float32, copy=False)
    counts = np.diff(indptr)
    nz = values != 0  # also catches -0.0, whose bits would otherwise sort first
    if not nz.all():
        cum = np.zeros(len(nz) + 1, dtype=np.int64)
        np.cumsum(nz, out=cum[1:])
        counts = cum[indptr[1:]] - cum[indptr[:-1]]
        values, indices = values[nz], indices[nz]
    n_rows = len(counts)
    # Row ids go in the top bits, so rows stay where they are and sorted keys need no decoding of rows.
    keys = np.repeat(np.arange(n_rows, dtype=np.uint64) << np.uint64(32 + _GENE_BITS), counts)
    # For non-negative float32, the bit pattern as uint32 is monotone in the value; invert it for descending.
    inv = np.invert(values.view(np.uint32)).astype(np.uint64)
    inv <<= np.uint64(_GENE_BITS)
    keys |= inv
    del inv
    keys |= indices.astype(np.uint64)
    keys.sort()
    keys &= np.uint64(_MAX_GENES - 1)
    return _top_n(keys.astype(np.int32), counts, n_genes)


def _rank_lexsort(block: sparse.csr_matrix, n_genes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Fallback for very wide matrices: a lexsort on (row, -value, column)."""
    values = block.data.astype(np.float32, copy=False)
    nz = values != 0
    rows = np.repeat(np.arange(block.shape[0], dtype=np.int64), np.diff(block.indptr))[nz]
    cols = block.indices[nz]
    values = values[nz]
    order = np.lexsort((cols, -values, rows))
    counts = np.bincount(rows, minlength=block.shape[0])
    return _top_n(cols[order].astype(np.int32), counts, n_genes)


class SentenceJoiner:
    """Spell ranked gene indices out as sentences, fast: build once per vocabulary, call once per chunk.

    Each name (UTF-8) followed by the separator is stored in a fixed-width, NUL-padded byte table; a
    chunk's words are gathered from it in one ``take``, the padding is removed in one pass, and the bytes
    are cut into one string per cell.

    Parameters
    ----------
    names
        Gene name of each column.
    sep
        Separator placed between words.
    """

    def __init__(self, names: np.ndarray, sep: str = " "):
        self.sep = sep
        self._sep_len = len(sep.encode())
        encoded = [(str(n) + sep).encode() for n in np.asarray(names, dtype=object).tolist()]
        if any(b"\0" in e for e in encoded):
            msg = "Gene names and the separator must not contain NUL characters."
            raise ValueError(msg)
        self.lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        width = int(self.lengths.max()) if len(encoded) else 1
        self.table = np.array(encoded, dtype=f"S{width}") if encoded else np.zeros(0, dtype="S1")

    def __call__(self, indptr: np.ndarray, genes: np.ndarray) -> list[str]:
        """Sentences of the rows of the ragged array ``(indptr, genes)``."""
        indptr = np.asarray(indptr, dtype=np.int64)
        out: list[str] = []
        step_words = max(_JOIN_BYTES // self.table.dtype.itemsize, 1)
        row, n_rows = 0, len(indptr) - 1
        while row < n_rows:
            # as many rows as fit in one gather (at least one)
            stop = int(np.searchsorted(indptr, indptr[row] + step_words, side="right")) - 1
            stop = min(max(stop, row + 1), n_rows)
            out.extend(self._join_rows(indptr[row : stop + 1], genes))
            row = stop
        return out

    def _join_rows(self, indptr: np.ndarray, genes: np.ndarray) -> list[str]:
        first, last = int(indptr[0]), int(indptr[-1])
        g = genes[first:last]
        buf = self.table.take(g).tobytes().replace(b"\0", b"")
        ends = np.zeros(len(g) + 1, dtype=np.int64)
        np.cumsum(self.lengths.take(g), out=ends[1:])
        bounds = ends[indptr - first].tolist()
        cut = self._sep_len
        return [buf[a : b - cut].decode() if b > a else "" for a, b in pairwise(bounds)]
