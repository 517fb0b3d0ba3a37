"""``sl.jobs.generate_cells``: new cells from a saved cell LM, in resumable shards, locally or on Ray.

The store holds generated sentences as gene indices; :func:`~sc_llm.jobs.read_cells` turns a finished store
into the AnnData that ``sl.tl.generate_cells`` returns for the same cells and seed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ._run import DEFAULT_SHARD_SIZE, EngineOptions, cell_lm_identity, job_identity, run_job, sampling_options

if TYPE_CHECKING:
    from ..core.shards import ShardStore

GENERATION_OUTPUTS = ("gene_ids", "n_words", "cell_type")


def generation_outputs(n_genes: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """The outputs of a cell-LM generation store: gene indices per sentence, words written, cell-type code."""
    return {"gene_ids": ((n_genes,), "int32"), "n_words": ((), "int32"), "cell_type": ((), "int32")}


def codes_hash(codes: np.ndarray) -> str:
    """SHA-256 of the cell-type codes of a generation job's input (part of its identity)."""
    from ..core.base.identity import checksum

    return checksum(np.asarray(codes, dtype=np.int32))


def generate_cells(
    model: str | os.PathLike,
    store: str | os.PathLike,
    *,
    cell_type: str | list[str],
    n_cells: int = 100,
    n_genes: int = 100,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    device: str | None = None,
    dtype: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    engine: Literal["local", "ray"] = "local",
    num_workers: int = 2,
    num_gpus_per_worker: float = 0,
    max_retries: int = 3,
    overwrite: bool = False,
    progress: bool = True,
) -> ShardStore:
    """Generate cells of given types with a saved cell LM, in resumable shards (batch :func:`sc_llm.tl.generate_cells`).

    Cell ``i`` is sampled from its own random stream (``seed``, ``i``), so the cells equal those of
    ``sl.tl.generate_cells(model, cell_type=..., n_cells=..., seed=...)`` for any ``shard_size``, engine or
    number of restarts; :func:`read_cells` turns the store into that AnnData.

    Parameters
    ----------
    model
        A folder written by :meth:`sc_llm.tl.CellLM.save` (fitted with ``task='conditional_generation'``).
    store
        Folder of the result store (created if absent; a store of a different job is refused).
    cell_type, n_cells, n_genes, do_sample, temperature, top_k, top_p, seed, batch_size
        As in :func:`sc_llm.tl.generate_cells`.
    device
        Device of each worker's model (``None``: CUDA, then MPS, then CPU locally; CUDA on Ray GPU workers).
    dtype
        Compute precision of each worker's model (``None``: the device's, see :func:`sc_llm.tl.embed`); resolved
        once and recorded, so a resumed job computes as it started.
    shard_size, engine, num_workers, num_gpus_per_worker, max_retries, overwrite, progress
        As in :func:`sc_llm.jobs.embed`.

    Returns
    -------
    The :class:`~sc_llm.jobs.ShardStore` with outputs ``gene_ids`` (indices into the model's genes, ``-1`` after
    each sentence), ``n_words`` and ``cell_type`` (index into ``manifest['input']['cell_types']``);
    ``store.last_run`` summarises this call.
    """
    from .._utils._validation import requested_cell_types
    from ..core.shards.generation_tasks import SentenceGenerationTask

    types = requested_cell_types(cell_type, n_cells)
    options = EngineOptions(engine, num_workers, num_gpus_per_worker, max_retries, 0, overwrite, progress)
    options.check(shard_size)
    codes, names = pd.factorize(pd.Series(types), sort=True)
    folder, model_ident = cell_lm_identity(model, "conditional_generation", list(names))
    sampling = sampling_options(n_genes, do_sample, temperature, top_k, top_p, seed, batch_size)
    inputs = {"n_cells": len(types), "cell_types": list(names), "codes_sha256": codes_hash(codes)}
    dtype = options.dtype(options.device(device), dtype)
    identity = job_identity("generate/cells", model_ident, {**sampling, "device": device, "dtype": dtype}, inputs)
    keys = np.arange(len(types), dtype=np.uint64)
    task = SentenceGenerationTask(
        folder,
        "conditional_generation",
        codes.astype(np.int32),
        list(names),
        keys,
        device=device,
        dtype=dtype,
        **sampling,
    )
    outputs = generation_outputs(sampling["n_genes"])
    what = f"generating with the cell LM {folder!r}"
    return run_job(
        task, identity, store, n_cells=len(types), shard_size=shard_size, outputs=outputs, options=options, what=what
    )
