"""``sl.jobs.embed``: embed the cells of an ``.h5ad``/``.zarr`` file in resumable shards, locally or on Ray."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ._embed_runs import run_scgpt_job, run_text_job
from ._run import DEFAULT_SHARD_SIZE, EngineOptions


def embed(
    input: str | os.PathLike,
    store: str | os.PathLike,
    *,
    model: str = "llmrails/ember-v1",
    sentence_key: str = "cell_sentence",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    n_genes: int | None = None,
    batch_size: int = 32,
    token_budget: int | None = None,
    max_length: int | None = None,
    device: str | None = None,
    revision: str | None = None,
    prefix: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    n_bins: int | None = None,
    seed: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    engine: Literal["local", "ray"] = "local",
    num_workers: int = 2,
    num_gpus_per_worker: float = 0,
    max_retries: int = 3,
    host_cpus: int = 0,
    overwrite: bool = False,
    progress: bool = True,
):
    """Embed every cell of an ``.h5ad`` or ``.zarr`` file with a text encoder or scGPT, in resumable shards.

    The file is read with ``backed`` access, ``shard_size`` cells at a time. Cell sentences come from
    ``.obs[sentence_key]`` when the file has that column, else they are ranked on the fly from the expression
    (as :func:`sc_llm.pp.cell_sentences` does, from ``layer``, ``.raw`` or ``.X``). Each finished shard is
    written atomically into the zarr store ``store`` with its SHA-256, next to a manifest of the model
    (commit, or a fingerprint of a local folder), every parameter that changes results, the input and the
    shard plan. Running the same call again computes only the missing shards, so a job killed at any point
    resumes where it stopped and ends with the same numbers as an uninterrupted run; a store of a different
    job is refused (``overwrite=True`` discards it).

    With an scGPT checkpoint folder as ``model``, expression is read from ``layer``, ``.raw`` or ``.X`` and
    embedded as ``sl.tl.embed`` does (``max_length`` defaults to 1,200, ``n_bins`` to the checkpoint's,
    ``seed``); the store's outputs are ``embedding`` and ``n_genes`` (matched expressed genes per cell). Its
    numbers equal one unsharded run for any ``shard_size`` (each cell's random subsampling derives from
    ``seed`` and its obs name).

    Parameters
    ----------
    input
        An ``.h5ad`` file or an AnnData ``.zarr`` folder.
    store
        Folder of the result store (created if absent).
    model
        Text encoder: Hugging Face hub id or local folder.
    sentence_key
        ``.obs`` column of cell sentences; when absent, sentences are ranked from the expression.
    layer, use_raw, gene_symbols, n_genes
        Expression to rank sentences from and how (see :func:`sc_llm.pp.cell_sentences`).
    batch_size, token_budget, max_length, device, revision, prefix, dtype, trust_remote_code
        As in :func:`sc_llm.tl.embed` (``token_budget``: text encoders only).
    n_bins, seed
        scGPT only: expression bins (default: the checkpoint's) and the seed of its random steps.
    shard_size
        Cells per shard: the unit of work, of resumption and of the results' bit-for-bit reproducibility.
    engine
        ``'local'`` (this process) or ``'ray'`` (one model per Ray actor; ``pip install 'sc-llm[scale]'``).
    num_workers, num_gpus_per_worker, max_retries
        Ray actors, GPUs each (``0``: one CPU each), restarts of a dead actor with its shard retried.
    host_cpus
        Ray and text encoders only: one-CPU actors that read, rank and tokenise the next shards while the model
        workers compute (the host work that otherwise keeps a GPU waiting); results are the same.
    overwrite
        Discard a store holding a different job instead of refusing it.
    progress
        Show a progress bar.

    Returns
    -------
    The :class:`~sc_llm.jobs.ShardStore`; ``store.read('embedding')`` gives the ``n_obs`` × dim float32
    embeddings in cell order, ``store.read('truncated')`` which sentences did not fit, ``store.manifest`` the
    job and ``store.last_run`` the :class:`~sc_llm.core.shards.runners.RunSummary` of this call.
    """
    from .._utils._cell_files import CellFile
    from ..core.base.identity import hash_strings
    from ..core.checkpoints import checkpoint_kind
    from ._inputs import FileSentences

    is_scgpt = checkpoint_kind(model) == "scgpt"
    if host_cpus and is_scgpt:
        msg = "`host_cpus` runs on Ray for text encoders only: pass engine='ray' with a text encoder, or host_cpus=0."
        raise ValueError(msg)
    options = EngineOptions(engine, num_workers, num_gpus_per_worker, max_retries, host_cpus, overwrite, progress)
    options.check(shard_size)
    cells = CellFile(input, layer=layer, use_raw=use_raw)
    obs_names = cells.obs_names
    input_identity = {"name": Path(input).name, "n_obs": len(obs_names), "obs_names_sha256": hash_strings(obs_names)}
    run = {"store": store, "batch_size": batch_size, "shard_size": shard_size, "options": options}
    if is_scgpt:
        scgpt = {"max_length": max_length, "n_bins": n_bins, "seed": seed, "device": device, "dtype": dtype}
        return _embed_file_scgpt(
            cells, input_identity, model=model, gene_symbols=gene_symbols, token_budget=token_budget, **scgpt, **run
        )
    reader = FileSentences(cells, sentence_key=sentence_key, gene_symbols=gene_symbols, n_genes=n_genes)
    genes = hash_strings(cells.gene_names(gene_symbols)) if not reader.from_obs else None
    input_identity |= {"genes_sha256": genes, **reader.params()}
    encoder_kwargs = {"revision": revision, "device": device, "max_length": max_length, "dtype": dtype}
    encoder_kwargs |= {"prefix": prefix, "trust_remote_code": trust_remote_code}
    return run_text_job(
        reader,
        n_cells=len(obs_names),
        input_identity=input_identity,
        model=model,
        token_budget=token_budget,
        encoder_kwargs=encoder_kwargs,
        **run,
    )


def _embed_file_scgpt(cells, input_identity: dict, *, model, gene_symbols, token_budget, **kwargs):
    from .._utils._validation import check_batching
    from ..core.base.identity import hash_strings

    check_batching(kwargs["batch_size"], token_budget, scgpt=True)
    names = cells.gene_names(gene_symbols)
    input_identity |= {"genes_sha256": hash_strings(names), "matrix": cells.source, "gene_symbols": gene_symbols}
    shards, _ = run_scgpt_job(cells, names, cells.obs_names, input_identity=input_identity, model=model, **kwargs)
    return shards
