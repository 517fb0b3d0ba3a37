"""``sl.jobs.generate_cells`` and ``sl.jobs.perturb``: cell-LM generation in resumable shards, locally or on Ray.

Both write generated sentences (as gene indices) into a :class:`~sc_llm.jobs.ShardStore`;
:func:`read_cells` turns a finished store into the AnnData that ``sl.tl.generate_cells`` or
``CellLM.predict_perturbation`` returns for the same cells and seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._utils._logging import logg
from ._embed import DEFAULT_SHARD_SIZE, _version, check_engine, run_engine

if TYPE_CHECKING:
    from ..core.shards import ShardStore


def _model_identity(model: str | os.PathLike) -> tuple[str, dict[str, Any], int]:
    """``(folder, identity, number of genes)`` of a saved cell LM folder; refuses anything else."""
    from ..core.llm.cell_lm import read_saved
    from ..core.shards import fingerprint_folder

    folder = Path(model).expanduser().resolve()
    _, vocab, decoder = read_saved(folder)  # a clear error for anything but a folder of CellLM.save
    if decoder is None:
        logg.warning("the cell LM has no fitted sentence decoder: `read_cells` will give all-zero `.X`.")
    return str(folder), {"id": str(folder), "fingerprint": fingerprint_folder(folder)}, len(vocab.genes)


def _run(task, identity: dict, store, *, n_cells: int, shard_size: int, run: dict, what: str) -> ShardStore:
    from ..core.shards import ShardStore

    check_engine(run["engine"], run["num_workers"], shard_size)
    outputs = {"gene_ids": ((task.n_genes,), "int32"), "n_words": ((), "int32"), "cell_type": ((), "int32")}
    shard_store = ShardStore.open_or_create(
        store, identity, n_cells=n_cells, shard_size=shard_size, outputs=outputs, overwrite=run["overwrite"]
    )
    start = logg.info(
        f"{what} {n_cells} cells into {str(store)!r}: {len(shard_store.pending())} of {shard_store.n_shards} "
        f"shards to compute ({run['engine']} engine)"
    )
    summary = run_engine(
        task,
        shard_store,
        run["engine"],
        run["num_workers"],
        run["num_gpus_per_worker"],
        run["max_retries"],
        run["progress"],
    )
    logg.info(f"    {summary.line()}", time=start)
    shard_store.last_run = summary
    return shard_store


def _sampling(n_genes, do_sample, temperature, top_k, top_p, seed, batch_size) -> dict[str, Any]:
    if n_genes < 1 or batch_size < 1 or seed < 0:
        msg = f"Need n_genes >= 1, batch_size >= 1 and seed >= 0; got {n_genes}, {batch_size}, {seed}."
        raise ValueError(msg)
    return {
        "n_genes": int(n_genes),
        "do_sample": bool(do_sample),
        "temperature": float(temperature),
        "top_k": top_k,
        "top_p": top_p,
        "seed": int(seed),
        "batch_size": int(batch_size),
    }


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
    shard_size, engine, num_workers, num_gpus_per_worker, max_retries, overwrite, progress
        As in :func:`sc_llm.jobs.embed`.

    Returns
    -------
    The :class:`~sc_llm.jobs.ShardStore` with outputs ``gene_ids`` (indices into the model's genes, ``-1`` after
    each sentence), ``n_words`` and ``cell_type`` (index into ``manifest['input']['cell_types']``);
    ``store.last_run`` summarises this call.
    """
    from ..core.shards.generation_tasks import SentenceGenerationTask

    types = [cell_type] * int(n_cells) if isinstance(cell_type, str) else [str(c) for c in cell_type]
    if not types:
        msg = "Nothing to generate: pass `n_cells` ≥ 1 (or a non-empty list of cell types)."
        raise ValueError(msg)
    folder, model_ident, _ = _model_identity(model)
    codes, names = pd.factorize(pd.Series(types), sort=True)
    sampling = _sampling(n_genes, do_sample, temperature, top_k, top_p, seed, batch_size)
    identity = {
        "job": "generate/cells",
        "model": model_ident,
        "params": {**sampling, "device": device},
        "input": {"n_cells": len(types), "cell_types": list(names), "codes_sha256": _codes_hash(codes)},
        "sc_llm_version": _version(),
    }
    task = SentenceGenerationTask(
        folder,
        "conditional_generation",
        codes.astype(np.int32),
        list(names),
        np.arange(len(types), dtype=np.uint64),
        device=device,
        **sampling,
    )
    run = _run_options(engine, num_workers, num_gpus_per_worker, max_retries, overwrite, progress)
    return _run(task, identity, store, n_cells=len(types), shard_size=shard_size, run=run, what="generating")


def _codes_hash(codes: np.ndarray) -> str:
    from ..core.shards import checksum

    return checksum(np.asarray(codes, dtype=np.int32))


def _run_options(engine, num_workers, num_gpus_per_worker, max_retries, overwrite, progress) -> dict[str, Any]:
    return {
        "engine": engine,
        "num_workers": num_workers,
        "num_gpus_per_worker": num_gpus_per_worker,
        "max_retries": max_retries,
        "overwrite": overwrite,
        "progress": progress,
    }
