"""``sl.jobs.predict_perturbation``: a saved cell LM writes every control cell's perturbed sentence, in shards."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ._generate import codes_hash, generation_outputs
from ._run import DEFAULT_SHARD_SIZE, EngineOptions, cell_lm_identity, job_identity, run_job, sampling_options

if TYPE_CHECKING:
    from ..core.shards import ShardStore


def predict_perturbation(
    input: str | os.PathLike,
    store: str | os.PathLike,
    *,
    model: str | os.PathLike,
    perturbation: str,
    sentence_key: str = "cell_sentence",
    cell_type_key: str = "cell_type",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    n_genes: int = 100,
    do_sample: bool = False,
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
    """Predict every cell of a file after ``perturbation`` with a saved cell LM, in resumable shards.

    The batch form of :meth:`sc_llm.tl.CellLM.predict_perturbation` (not of :func:`sc_llm.tl.perturb`, which
    trains and compares methods on one AnnData): the file holds control cells; each one's
    sentence (``.obs[sentence_key]``, else ranked from the expression) and cell type prompt the model, which
    writes the perturbed cell's sentence. Sampled sentences derive from ``seed`` and each cell's ``obs`` name,
    so results equal ``predict_perturbation`` on the same cells for any ``shard_size``; a killed job resumes
    from its committed shards. :func:`read_cells` turns the store into the AnnData of predicted cells.

    Parameters
    ----------
    input
        An ``.h5ad`` file or an AnnData ``.zarr`` folder of control cells.
    store
        Folder of the result store (created if absent; a store of a different job is refused).
    model
        A folder written by :meth:`sc_llm.tl.CellLM.save` (fitted with ``task='perturbation'``).
    perturbation
        The perturbation's name, as in training.
    sentence_key, cell_type_key
        ``.obs`` columns of the control sentences (ranked from the expression when absent) and cell types.
    layer, use_raw, gene_symbols
        Expression to rank sentences from when the file has none (see :func:`sc_llm.pp.cell_sentences`).
    n_genes, do_sample, temperature, top_k, top_p, seed, batch_size
        Genes per sentence (prompt and answer) and generation settings (greedy by default).
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
    from .._utils._cell_files import CellFile
    from ..core.base.cell_keys import obs_name_keys
    from ..core.base.identity import hash_strings
    from ..core.shards.generation_tasks import SentenceGenerationTask
    from ._inputs import FileSentences

    if not perturbation:
        msg = "Pass the perturbation's name as in training, e.g. `perturbation='stimulated'`."
        raise ValueError(msg)
    options = EngineOptions(engine, num_workers, num_gpus_per_worker, max_retries, 0, overwrite, progress)
    options.check(shard_size)
    cells = CellFile(input, layer=layer, use_raw=use_raw)
    if not cells.has_obs(cell_type_key):
        msg = f"{str(input)!r} has no `.obs[{cell_type_key!r}]`; pass `cell_type_key=` naming its cell types."
        raise KeyError(msg)
    codes, names = pd.factorize(cells.obs_column(cell_type_key).astype(str), sort=True)
    folder, model_ident = cell_lm_identity(model, "perturbation", list(names), perturbation)
    reader = FileSentences(cells, sentence_key=sentence_key, gene_symbols=gene_symbols, n_genes=n_genes)
    obs_names = cells.obs_names
    sampling = sampling_options(n_genes, do_sample, temperature, top_k, top_p, seed, batch_size)
    inputs = {"name": Path(input).name, "n_obs": len(obs_names), "obs_names_sha256": hash_strings(obs_names)}
    inputs |= {"cell_type_key": cell_type_key, "cell_types": list(names), "codes_sha256": codes_hash(codes)}
    inputs |= {"genes_sha256": None if reader.from_obs else hash_strings(cells.gene_names(gene_symbols))}
    dtype = options.dtype(options.device(device), dtype)
    params = {**sampling, "perturbation": perturbation, "device": device, "dtype": dtype}
    identity = job_identity("generate/perturbation", model_ident, params, {**inputs, **reader.params()})
    task = SentenceGenerationTask(
        folder,
        "perturbation",
        codes.astype(np.int32),
        list(names),
        obs_name_keys(obs_names),
        sentences=reader,
        perturbation=perturbation,
        device=device,
        dtype=dtype,
        **sampling,
    )
    outputs = generation_outputs(sampling["n_genes"])
    what = f"perturbing with the cell LM {folder!r}"
    n = len(obs_names)
    return run_job(task, identity, store, n_cells=n, shard_size=shard_size, outputs=outputs, options=options, what=what)


def perturb(input: str | os.PathLike, store: str | os.PathLike, **kwargs: Any) -> ShardStore:
    """Deprecated name of :func:`predict_perturbation` (the batch form of ``CellLM.predict_perturbation``).

    Parameters
    ----------
    input, store, **kwargs
        As in :func:`predict_perturbation`.

    Returns
    -------
    What :func:`predict_perturbation` returns.
    """
    warnings.warn(
        "`sl.jobs.perturb` is renamed `sl.jobs.predict_perturbation` (it is the batch form of "
        "`CellLM.predict_perturbation`, not of `sl.tl.perturb`); the old name will be removed.",
        FutureWarning,
        stacklevel=2,
    )
    return predict_perturbation(input, store, **kwargs)
