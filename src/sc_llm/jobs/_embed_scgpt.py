"""Sharded, resumable scGPT embedding jobs (files through ``sl.jobs.embed``, memory through ``cache_dir=``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._utils._logging import logg
from ._embed import DEFAULT_SHARD_SIZE, _version, check_engine, job_store_path, run_engine


def run_scgpt_job(
    matrix,
    gene_names: Sequence[str],
    obs_names: Sequence[str],
    *,
    input_identity: Mapping[str, Any],
    model: str,
    store: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    n_bins: int | None = None,
    seed: int = 0,
    device: str | None = None,
    dtype: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    engine: str = "local",
    num_workers: int = 2,
    num_gpus_per_worker: float = 0,
    max_retries: int = 3,
    overwrite: bool = False,
    progress: bool = True,
):
    """Open (or resume) the store of an scGPT embedding job and run its pending shards.

    ``matrix`` returns CSR rows (``rows(start, stop)``) of the cells named ``obs_names`` (their names seed each
    cell's random numbers, so any shard size gives the unsharded numbers); genes are matched to the vocabulary
    before any weights load. Returns ``(store, summary, encoder, gene_match)``; the encoder's weights are not
    loaded here.
    """
    from ..core.cell_keys import obs_name_keys
    from ..core.device import resolve_device
    from ..core.scgpt.encoder import DEFAULT_MAX_LENGTH, ScGPTEncoder
    from ..core.shards import ScGPTEmbedTask, ShardStore, fingerprint_folder

    check_engine(engine, num_workers, shard_size)
    n_cells = len(obs_names)
    max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
    if batch_size < 1 or max_length < 2 or seed < 0:
        msg = f"Need batch_size >= 1, max_length >= 2 and seed >= 0; got {batch_size}, {max_length}, {seed}."
        raise ValueError(msg)
    dev = (device or ("cuda" if num_gpus_per_worker > 0 else "cpu")) if engine == "ray" else resolve_device(device)
    enc = ScGPTEncoder(model, device="cpu", dtype=dtype)  # reads args.json and vocab.json only
    genes = enc.match_genes(list(gene_names))
    n_bins = enc.config.n_bins if n_bins is None else n_bins
    identity = {
        "job": "embed/scgpt",
        "model": {
            "id": str(Path(enc.folder).resolve()),
            "revision": None,
            "fingerprint": fingerprint_folder(enc.folder),
        },
        "params": {
            "batch_size": batch_size,
            "max_length": max_length,
            "n_bins": n_bins,
            "seed": seed,
            "cell_seeds": "obs_name",  # each cell's random numbers derive from (seed, its obs name)
            "device": str(getattr(dev, "type", dev)),
            "dtype": dtype,
        },
        "input": dict(input_identity),
        "sc_llm_version": _version(),
    }
    outputs = {"embedding": ((enc.config.d_model,), "float32"), "n_genes": ((), "int32")}
    path = job_store_path(store, cache_dir, identity, shard_size)
    shard_store = ShardStore.open_or_create(
        path, identity, n_cells=n_cells, shard_size=shard_size, outputs=outputs, overwrite=overwrite
    )
    task = ScGPTEmbedTask(
        str(enc.folder),
        matrix,
        genes.column_ids,
        obs_name_keys(obs_names),
        batch_size=batch_size,
        max_length=max_length,
        n_bins=n_bins,
        seed=seed,
        device=str(getattr(dev, "type", dev)),
        dtype=dtype,
    )
    start = logg.info(
        f"embedding {n_cells} cells with scGPT from {str(enc.folder)!r} into {str(path)!r}: matched "
        f"{genes.n_matched}/{genes.n_genes} genes; {len(shard_store.pending())} of {shard_store.n_shards} shards "
        f"to compute ({engine} engine)"
    )
    summary = run_engine(task, shard_store, engine, num_workers, num_gpus_per_worker, max_retries, progress)
    logg.info(f"    {summary.line()}", time=start)
    return shard_store, summary, enc, genes
