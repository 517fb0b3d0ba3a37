"""``sl.jobs.embed``: embed the cells of an ``.h5ad``/``.zarr`` file in resumable shards, locally or on Ray."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._utils._logging import logg

DEFAULT_SHARD_SIZE = 10_000
_CALIBRATION_CELLS = 8
ENGINES = ("local", "ray")


def _version() -> str:
    from .. import __version__

    return __version__


def text_model_identity(model: str, revision: str | None, trust_remote_code: bool) -> tuple[dict[str, Any], int]:
    """``({'id', 'revision', 'fingerprint'}, hidden size)`` without loading the weights."""
    from transformers import AutoConfig

    from ..core.hf_loading import is_local, offline_hint
    from ..core.shards import fingerprint_folder

    local = is_local(model)
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as e:
        if local:
            raise
        raise OSError(offline_hint(model)) from e
    ident = {
        "id": str(Path(model).expanduser().resolve()) if local else str(model),
        "revision": getattr(config, "_commit_hash", None) or revision,
        "fingerprint": fingerprint_folder(model) if local else None,
    }
    return ident, int(config.hidden_size)


def job_store_path(store, cache_dir, identity: Mapping[str, Any], shard_size: int) -> Path:
    """``store`` itself, or ``cache_dir/embed-<hash of the job>`` (so that a different job gets its own store)."""
    from ..core.shards import hash_strings

    if (store is None) == (cache_dir is None):
        msg = "Pass exactly one of `store` and `cache_dir`."
        raise ValueError(msg)
    if store is not None:
        return Path(store)
    key = hash_strings([json.dumps({**identity, "shard_size": shard_size}, sort_keys=True, default=str)])
    return Path(cache_dir).expanduser() / f"embed-{key[:16]}"


def check_engine(engine: str, num_workers: int, shard_size: int) -> None:
    """Validate the engine options before anything is loaded."""
    if engine not in ENGINES:
        msg = f"`engine` must be one of {ENGINES}, got {engine!r}."
        raise ValueError(msg)
    if num_workers < 1:
        msg = f"`num_workers` must be positive, got {num_workers}."
        raise ValueError(msg)
    if shard_size < 1:
        msg = f"`shard_size` must be positive, got {shard_size}."
        raise ValueError(msg)


def check_host_cpus(host_cpus: int, engine: str, *, scgpt: bool = False) -> None:
    """Validate ``host_cpus`` (Ray, text encoders only) before anything is loaded."""
    if isinstance(host_cpus, bool) or not isinstance(host_cpus, int) or host_cpus < 0:
        msg = f"`host_cpus` must be a non-negative integer, got {host_cpus!r}."
        raise ValueError(msg)
    if host_cpus and (engine != "ray" or scgpt):
        msg = "`host_cpus` runs on Ray for text encoders only: pass engine='ray' with a text encoder, or host_cpus=0."
        raise ValueError(msg)


def check_batching(batch_size: int, token_budget: int | None, *, scgpt: bool) -> None:
    """Validate ``batch_size`` and ``token_budget`` (text encoders only) before anything is loaded."""
    if batch_size < 1 or (token_budget is not None and token_budget < 1):
        msg = f"`batch_size` and `token_budget` must be positive, got {batch_size} and {token_budget}."
        raise ValueError(msg)
    if scgpt and token_budget is not None:
        msg = "`token_budget` batches text encoders; scGPT batches by `batch_size` cells."
        raise ValueError(msg)


def run_text_job(
    reader,
    *,
    store: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_cells: int,
    input_identity: Mapping[str, Any],
    model: str,
    batch_size: int = 32,
    token_budget: int | None = None,
    max_length: int | None = None,
    device: str | None = None,
    revision: str | None = None,
    prefix: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    engine: str = "local",
    num_workers: int = 2,
    num_gpus_per_worker: float = 0,
    max_retries: int = 3,
    host_cpus: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    encoder=None,
):
    """Open (or resume) the store of a text-encoder embedding job and run its pending shards.

    Shared by :func:`sc_llm.jobs.embed` (files: ``store`` is the folder, a different job is refused) and
    ``sl.tl.embed(cache_dir=…)`` (in memory: the store is ``cache_dir/embed-<hash of the job>``, so a different
    job gets its own store). ``encoder``, an already loaded encoder, is used by the local engine.
    Returns ``(store, summary)``.
    """
    from ..core.device import resolve_device
    from ..core.shards import ShardStore, TextEmbedTask

    check_engine(engine, num_workers, shard_size)
    check_batching(batch_size, token_budget, scgpt=False)
    check_host_cpus(host_cpus, engine)
    if engine == "ray":
        dev = device or ("cuda" if num_gpus_per_worker > 0 else "cpu")
    else:
        dev = resolve_device(device).type
    model_ident, dim = text_model_identity(model, revision, trust_remote_code)
    params = {
        "batch_size": batch_size,
        "max_length": max_length,
        "device": str(dev),
        "dtype": dtype,
        "prefix": prefix,
        "trust_remote_code": trust_remote_code,
    }
    if token_budget is not None:  # recorded only when used, so stores written without it stay valid
        params["token_budget"] = int(token_budget)
    identity = {
        "job": "embed/text",
        "model": model_ident,
        "params": params,
        "input": dict(input_identity),
        "sc_llm_version": _version(),
    }
    outputs = {"embedding": ((dim,), "float32"), "truncated": ((), "bool")}
    store = job_store_path(store, cache_dir, identity, shard_size)
    shard_store = ShardStore.open_or_create(
        store, identity, n_cells=n_cells, shard_size=shard_size, outputs=outputs, overwrite=overwrite
    )
    calibration = [s for s in reader.read(0, min(n_cells, 4 * _CALIBRATION_CELLS)) if s][:_CALIBRATION_CELLS]
    encoder_kwargs = {
        "revision": revision,
        "device": dev,
        "max_length": max_length,
        "dtype": dtype,
        "prefix": prefix,
        "trust_remote_code": trust_remote_code,
    }
    task = TextEmbedTask(
        model,
        reader,
        calibration,
        batch_size=batch_size,
        token_budget=token_budget,
        encoder_kwargs=encoder_kwargs,
        encoder=encoder,
    )
    start = logg.info(
        f"embedding {n_cells} cells with {model!r} into {str(store)!r}: {len(shard_store.pending())} of "
        f"{shard_store.n_shards} shards to compute ({engine} engine)"
    )
    summary = run_engine(
        task, shard_store, engine, num_workers, num_gpus_per_worker, max_retries, progress, host_cpus=host_cpus
    )
    logg.info(f"    {summary.line()}", time=start)
    return shard_store, summary


def run_engine(
    task,
    shard_store,
    engine: str,
    num_workers: int,
    num_gpus: float,
    max_retries: int,
    progress: bool,
    *,
    host_cpus: int = 0,
):
    """Run the pending shards of ``shard_store`` in this process or on Ray actors; return the run's summary."""
    from ..core.shards import run_local, run_ray

    if engine == "ray":
        kw = {"num_workers": num_workers, "num_gpus": num_gpus, "max_retries": max_retries, "host_cpus": host_cpus}
        return run_ray(task, shard_store, progress=progress, **kw)
    return run_local(task, shard_store, progress=progress)


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
    from .._utils._cell_files import CellFile, FileSentences
    from ..core.shards import hash_strings

    folder = Path(str(model)).expanduser()
    is_scgpt = (folder / "args.json").is_file() and (folder / "vocab.json").is_file()  # scGPT's checkpoint layout
    check_host_cpus(host_cpus, engine, scgpt=is_scgpt)
    cells = CellFile(input, layer=layer, use_raw=use_raw)
    run = {"batch_size": batch_size, "max_length": max_length, "device": device, "dtype": dtype}
    run |= {"shard_size": shard_size, "engine": engine, "num_workers": num_workers, "max_retries": max_retries}
    run |= {"num_gpus_per_worker": num_gpus_per_worker, "overwrite": overwrite, "progress": progress}
    if is_scgpt:
        return _embed_file_scgpt(
            cells,
            store,
            model=model,
            token_budget=token_budget,
            gene_symbols=gene_symbols,
            n_bins=n_bins,
            seed=seed,
            **run,
        )
    reader = FileSentences(cells, sentence_key=sentence_key, gene_symbols=gene_symbols, n_genes=n_genes)
    obs_names = cells.obs_names
    genes = hash_strings(cells.gene_names(gene_symbols)) if not reader.from_obs else None
    input_identity = {
        "name": Path(input).name,
        "n_obs": len(obs_names),
        "obs_names_sha256": hash_strings(obs_names),
        "genes_sha256": genes,
        **reader.params(),
    }
    shard_store, summary = run_text_job(
        reader,
        store=store,
        n_cells=len(obs_names),
        input_identity=input_identity,
        model=model,
        token_budget=token_budget,
        revision=revision,
        prefix=prefix,
        trust_remote_code=trust_remote_code,
        host_cpus=host_cpus,
        **run,
    )
    shard_store.last_run = summary
    return shard_store


def _embed_file_scgpt(cells, store, *, model: str, gene_symbols: str | None, token_budget: int | None, **kwargs):
    check_batching(kwargs.get("batch_size", 64), token_budget, scgpt=True)
    from ..core.shards import hash_strings
    from ._embed_scgpt import run_scgpt_job

    names = cells.gene_names(gene_symbols)
    obs_names = cells.obs_names
    input_identity = {
        "name": cells.path.name,
        "n_obs": len(obs_names),
        "obs_names_sha256": hash_strings(obs_names),
        "genes_sha256": hash_strings(names),
        "matrix": cells.source,
        "gene_symbols": gene_symbols,
    }
    shard_store, summary, _, _ = run_scgpt_job(
        cells, names, obs_names, input_identity=input_identity, model=model, store=store, **kwargs
    )
    shard_store.last_run = summary
    return shard_store
