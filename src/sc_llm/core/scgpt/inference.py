"""Stream cells through a loaded :class:`~.model.ScGPTCellEncoder`: CSR chunks in, L2-normalised ``<cls>`` out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..base.batch_pipeline import prefetched
from ..base.device import autocast
from .preprocessing import iter_batches, tokenize_chunk


@dataclass
class EmbeddingStats:
    """What happened to the cells on the way in."""

    n_subsampled: int = 0  # cells with more than max_length - 1 matched genes
    n_empty: int = 0  # cells without a matched, non-zero gene: embedded from <cls> alone


def embed_cells(
    model,
    chunks: Iterable[tuple[int, int, sparse.csr_matrix]],
    column_ids: np.ndarray,
    n_cells: int,
    *,
    cell_keys: np.ndarray | None = None,
    cls_id: int,
    pad_id: int,
    pad_value: float,
    batch_size: int = 64,
    max_length: int = 1200,
    n_bins: int = 51,
    seed: int = 0,
    device=None,
    dtype=None,
    progress: bool = True,
) -> tuple[np.ndarray, EmbeddingStats]:
    """Embed cells given as row chunks of a CSR matrix.

    Parameters
    ----------
    model
        A loaded encoder (already on ``device``).
    chunks
        ``(start, stop, csr_block)`` over the rows, e.g. from ``iter_row_chunks(X, CHUNK_CELLS)``.
    column_ids
        Vocabulary id per column of the matrix, ``-1`` for genes to ignore.
    n_cells
        Total rows.
    cell_keys
        One uint64 identity per row (e.g. :func:`~sc_llm.core.base.cell_keys.obs_name_keys`): with ``seed``, the
        source of the cell's random numbers, so its embedding does not depend on the other cells or their order.
        ``None``: the row index (then a cell's position is its identity).
    cls_id, pad_id, pad_value
        Token ids of ``<cls>`` and padding; the value placed at ``<cls>`` and padding positions.
    batch_size, max_length, n_bins, seed
        Cells per forward pass; tokens per cell including ``<cls>``; bins; random seed.
    device, dtype
        Device of ``model``; autocast dtype (CUDA only, ``None`` for fp32).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    The ``(n_cells, d_model)`` float32 embeddings, each of unit L2 norm, and statistics.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    cell_keys = np.arange(n_cells, dtype=np.uint64) if cell_keys is None else np.asarray(cell_keys, dtype=np.uint64)
    out = np.empty((n_cells, model.d_model), dtype=np.float32)
    stats = EmbeddingStats()
    done = np.zeros(n_cells, dtype=bool)
    settings = {"batch_size": batch_size, "max_length": max_length, "n_bins": n_bins}
    settings.update(cls_id=cls_id, pad_id=pad_id, pad_value=pad_value)
    batches = _batches(chunks, cell_keys, column_ids, seed, settings, stats)
    if (
        device is not None and torch.device(device).type == "cuda"
    ):  # binning and padding of the next batches overlap the GPU's work
        batches = prefetched(batches, transform=_pinned)
    with torch.inference_mode(), tqdm(total=n_cells, desc="scGPT cells", unit="cell", disable=not progress) as bar:
        for rows, genes, values, padding, n_sub in batches:
            with autocast(device, dtype):
                emb = model(*(t.to(device, non_blocking=True) for t in (genes, values, padding)))
            out[rows] = F.normalize(emb.float(), dim=1).cpu().numpy()
            done[rows] = True
            stats.n_subsampled += n_sub
            bar.update(len(rows))
    if not done.all():
        msg = f"Internal error: {int((~done).sum())} cells were not embedded; the row chunks did not cover the matrix."
        raise RuntimeError(msg)
    return out, stats


def _batches(chunks, cell_keys: np.ndarray, column_ids: np.ndarray, seed: int, settings: dict, stats: EmbeddingStats):
    """``(rows, genes, values, padding, n_subsampled)`` over all chunks, ``rows`` indexing the whole matrix."""
    for start, stop, chunk in chunks:
        cells = tokenize_chunk(chunk, column_ids, cell_keys[start:stop], seed)
        stats.n_empty += int((cells.lengths == 0).sum())
        for rows, genes, values, padding, n_sub in iter_batches(cells, **settings):
            yield start + rows, genes, values, padding, n_sub


def _pinned(batch: tuple) -> tuple:
    rows, genes, values, padding, n_sub = batch
    return rows, genes.pin_memory(), values.pin_memory(), padding.pin_memory(), n_sub
