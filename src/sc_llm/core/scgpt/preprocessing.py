"""scGPT's input pipeline for cell embeddings, streamed from CSR chunks.

What scGPT's ``embed_data`` does per cell, reproduced here in vectorised form:

1. keep the non-zero values of genes found in the vocabulary (matched by symbol);
2. bin them per cell: ``n_bins - 1`` edges at the quantiles ``linspace(0, 1, n_bins - 1)`` of the cell's
   non-zero values (NumPy's linear method), value → index of the edges at or below it; a value equal to
   several edges gets a uniformly random index among them (scGPT's ``_digitize(side="both")``);
3. prepend ``<cls>`` (value ``pad_value``);
4. cells with more than ``max_length - 1`` genes keep a uniformly random subset of that many genes
   (drawn after binning, as scGPT does);
5. pad with the padding token and ``pad_value``.

Randomness (step 2 ties, step 4) is a counter-based hash of ``(seed, cell key, gene id, step)``: each cell
has its own random numbers, derived from its identity (the caller's ``cell_keys``, e.g. a hash of the
``obs`` name), never from its position. A cell's embedding is therefore the same whatever the other cells,
their order, the chunking or the batch size, and reproducible for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

CHUNK_CELLS = 4096  # cells read at once (results do not depend on it)
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array: a bijective, well-mixed hash (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def cell_draws(seed: int, cell_keys: np.ndarray, gene_ids: np.ndarray, stream: int) -> np.ndarray:
    """Uniform ``[0, 1)`` numbers, one per (cell, gene) entry, a pure function of ``(seed, cell, gene, stream)``."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + np.uint64(stream))
        x = _splitmix64(np.asarray(cell_keys, dtype=np.uint64) ^ base)
        x = _splitmix64(x ^ (np.asarray(gene_ids, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def match_genes(gene_names: Sequence[str], vocab: dict[str, int], exclude: Sequence[str] = ()) -> np.ndarray:
    """Vocabulary id of each gene name (exact, case-sensitive symbol match), ``-1`` when absent.

    Tokens in ``exclude`` (the special tokens) never match a gene.
    """
    skip = set(exclude)
    return np.fromiter(
        (vocab.get(g, -1) if g not in skip else -1 for g in gene_names), dtype=np.int64, count=len(gene_names)
    )


@dataclass
class TokenizedCells:
    """Matched non-zero entries of a block of cells, in CSR layout (``indptr`` over cells)."""

    indptr: np.ndarray
    gene_ids: np.ndarray
    values: np.ndarray  # float32, the raw expression (binned per batch)
    tie_draws: np.ndarray  # uniform [0, 1) per entry: tie-breaking in binning
    keep_draws: np.ndarray  # uniform [0, 1) per entry: priority when subsampling genes

    @property
    def lengths(self) -> np.ndarray:
        """Matched genes per cell."""
        return np.diff(self.indptr)


def tokenize_chunk(
    chunk: sparse.csr_matrix, column_ids: np.ndarray, cell_keys: np.ndarray, seed: int = 0
) -> TokenizedCells:
    """Keep the non-zero entries of matched genes of a CSR block; draw the per-entry random numbers.

    ``cell_keys`` (one uint64 per row) identify the cells: with ``seed`` and the gene id they determine each
    entry's random numbers (see :func:`cell_draws`).

    Raises
    ------
    ValueError
        On NaN, infinite or negative values among the matched entries.
    """
    if not chunk.has_canonical_format:
        chunk = chunk.copy()
        chunk.sum_duplicates()
    ids = column_ids[chunk.indices]
    keep = (ids >= 0) & (chunk.data != 0)
    data = chunk.data[keep]
    if data.size and not (np.all(np.isfinite(data)) and data.min() >= 0):
        msg = (
            "The expression matrix contains NaN, infinite or negative values (is it scaled?). scGPT bins "
            "counts or log-normalised expression: pass `layer=` or `use_raw=True` to select such values."
        )
        raise ValueError(msg)
    kept_before = np.zeros(keep.size + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    indptr = kept_before[chunk.indptr]
    gene_ids = ids[keep]
    entry_cells = np.repeat(np.asarray(cell_keys, dtype=np.uint64), np.diff(indptr))
    return TokenizedCells(
        indptr=indptr,
        gene_ids=gene_ids,
        values=data.astype(np.float32),
        tie_draws=cell_draws(seed, entry_cells, gene_ids, 0),
        keep_draws=cell_draws(seed, entry_cells, gene_ids, 1),
    )


def bin_padded(values, lengths, n_bins: int, tie_draws):
    """Bin each row's first ``lengths[i]`` values like scGPT's ``binning`` (torch, vectorised over rows).

    Parameters
    ----------
    values
        ``(batch, width)`` float32 tensor; entries past a row's length are ignored.
    lengths
        ``(batch,)`` int64 tensor, each at least 1.
    n_bins
        scGPT's ``n_bins`` (51): ``n_bins - 1`` quantile edges, bin indices ``1 … n_bins - 1``.
    tie_draws
        ``(batch, width)`` float64 uniform numbers that break ties between equal edges.

    Returns
    -------
    ``(batch, width)`` int64 bin indices (undefined past each row's length).
    """
    import torch

    n_edges = n_bins - 1
    width = values.shape[1]
    pos = torch.arange(width, device=values.device)
    valid = pos[None, :] < lengths[:, None]
    ordered = torch.sort(values.masked_fill(~valid, float("inf")), dim=1).values
    # NumPy's linear quantile: virtual index (n - 1) * q, lerp between its neighbours in float64
    q = torch.from_numpy(np.linspace(0, 1, n_edges)).to(values.device)
    last = (lengths - 1)[:, None]
    virtual = last.double() * q[None, :]
    lower = virtual.floor()
    gamma = virtual - lower
    lower = lower.long()
    above = virtual >= last
    lower = torch.where(above, last, lower)
    upper = torch.where(above, last, lower + 1)
    a = ordered.gather(1, lower)
    b = ordered.gather(1, upper)
    diff = (b - a).double()  # float32 subtraction, as NumPy does for float32 input
    edges = torch.where(gamma >= 0.5, b.double() - diff * (1 - gamma), a.double() + diff * gamma)
    x = values.double().masked_fill(~valid, 0.0)
    left = torch.searchsorted(edges.contiguous(), x, right=True)  # edges <= x
    right = torch.searchsorted(edges.contiguous(), x, right=False)  # edges < x
    return torch.ceil(tie_draws * (right - left) + left).long()


def iter_batches(
    cells: TokenizedCells,
    *,
    batch_size: int,
    max_length: int,
    n_bins: int,
    cls_id: int,
    pad_id: int,
    pad_value: float,
) -> Iterator[tuple[np.ndarray, object, object, object, int]]:
    """Batches of model inputs, cells sorted by gene count so that little padding is needed.

    Yields
    ------
    rows
        Positions of the batch's cells in ``cells`` (restore order with them).
    genes, values, padding_mask
        ``(batch, seq)`` tensors: ``<cls>`` first, then genes, then padding (``padding_mask`` True).
    n_subsampled
        Cells in the batch that had more than ``max_length - 1`` genes.
    """
    import torch

    lengths = cells.lengths
    order = np.argsort(lengths, kind="stable")
    keep_max = max_length - 1
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        n = torch.from_numpy(lengths[rows])
        width = int(n.max()) if len(rows) else 0
        n_sub = int((n > keep_max).sum())
        if width:
            pos = torch.arange(width)
            valid = pos[None, :] < n[:, None]
            flat = torch.from_numpy(cells.indptr[rows])[:, None] + pos[None, :]
            flat = torch.where(valid, flat, 0)
            genes = torch.from_numpy(cells.gene_ids)[flat]
            raw = torch.from_numpy(cells.values)[flat]
            digits = bin_padded(raw, n.clamp(min=1), n_bins, torch.from_numpy(cells.tie_draws)[flat])
            if width > keep_max:
                keys = torch.from_numpy(cells.keep_draws)[flat].masked_fill(~valid, float("inf"))
                chosen = torch.topk(keys, keep_max, dim=1, largest=False, sorted=True).indices
                genes, digits = genes.gather(1, chosen), digits.gather(1, chosen)
                n, width = n.clamp(max=keep_max), keep_max
                valid = torch.arange(width)[None, :] < n[:, None]
            genes = torch.where(valid, genes, pad_id)
            vals = torch.where(valid, digits.float(), float(pad_value))
        else:
            genes = torch.empty((len(rows), 0), dtype=torch.long)
            vals = torch.empty((len(rows), 0))
            valid = torch.empty((len(rows), 0), dtype=torch.bool)
        b = len(rows)
        genes = torch.cat([torch.full((b, 1), cls_id, dtype=torch.long), genes], dim=1)
        vals = torch.cat([torch.full((b, 1), float(pad_value)), vals], dim=1)
        padding = torch.cat([torch.zeros((b, 1), dtype=torch.bool), ~valid], dim=1)
        yield rows, genes, vals, padding, n_sub
