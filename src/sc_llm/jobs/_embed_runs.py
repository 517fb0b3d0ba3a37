"""Embedding jobs over any cells: a text encoder over sentences, or scGPT over expression, in a shard store.

Shared by :func:`sc_llm.jobs.embed` (files; ``store`` is the folder, a different job is refused) and
``sl.tl.embed(cache_dir=...)`` (in memory; the store is ``cache_dir/embed-<hash of the job>``, so a different
job gets its own store). Each returns the store; its manifest holds the job's identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._utils._validation import check_batching
from ._run import DEFAULT_SHARD_SIZE, EngineOptions, job_identity, run_job, store_path

_CALIBRATION_CELLS = 8


def text_model_identity(model: str, revision: str | None, trust_remote_code: bool) -> tuple[dict[str, Any], int]:
    """``({'id', 'revision', 'fingerprint'}, hidden size)`` of a text encoder, without loading the weights."""
    from transformers import AutoConfig

    from ..core.base.identity import model_identity
    from ..core.text.hf_loading import is_local, offline_hint

    local = is_local(model)
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as e:
        if local:
            raise
        raise OSError(offline_hint(model)) from e
    ident = model_identity(model, revision=getattr(config, "_commit_hash", None) or revision)
    return ident, int(config.hidden_size)


def run_text_job(
    reader,
    *,
    n_cells: int,
    input_identity: Mapping[str, Any],
    model: str,
    store: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    token_budget: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    encoder_kwargs: Mapping[str, Any] | None = None,
    options: EngineOptions | None = None,
    encoder=None,
):
    """Open (or resume) the store of a text-encoder embedding job over ``reader``'s sentences and run it.

    ``encoder_kwargs`` are :class:`~sc_llm.core.text.encoder.TextEncoder` options (``revision``, ``device``,
    ``max_length``, ``dtype``, ``prefix``, ``trust_remote_code``); ``encoder``, an already loaded encoder, is
    used by the local engine. Returns the store.
    """
    from ..core.shards import TextEmbedTask

    options = (options or EngineOptions()).check(shard_size)
    check_batching(batch_size, token_budget, scgpt=False)
    kw = {"revision": None, "device": None, "max_length": None, "dtype": None, "prefix": None}
    kw |= {"trust_remote_code": False, **(encoder_kwargs or {})}
    kw["device"] = options.device(kw["device"])
    kw["dtype"] = options.dtype(kw["device"], kw["dtype"])
    model_ident, dim = text_model_identity(model, kw["revision"], kw["trust_remote_code"])
    params = {"batch_size": batch_size, **{k: kw[k] for k in ("max_length", "device", "dtype", "prefix")}}
    params["trust_remote_code"] = kw["trust_remote_code"]
    if token_budget is not None:  # recorded only when used, so stores written without it stay valid
        params["token_budget"] = int(token_budget)
    identity = job_identity("embed/text", model_ident, params, input_identity)
    path = store_path(store, cache_dir, identity, shard_size)
    calibration = [s for s in reader.read(0, min(n_cells, 4 * _CALIBRATION_CELLS)) if s][:_CALIBRATION_CELLS]
    task = TextEmbedTask(
        model, reader, calibration, batch_size=batch_size, token_budget=token_budget, encoder_kwargs=kw, encoder=encoder
    )
    outputs = {"embedding": ((dim,), "float32"), "truncated": ((), "bool")}
    what = f"embedding with {model!r}"
    return run_job(
        task, identity, path, n_cells=n_cells, shard_size=shard_size, outputs=outputs, options=options, what=what
    )


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
    options: EngineOptions | None = None,
):
    """Open (or resume) the store of an scGPT embedding job and run its pending shards.

    ``matrix`` returns CSR rows (``rows(start, stop)``) of the cells named ``obs_names`` (their names seed each
    cell's random numbers, so any shard size gives the unsharded numbers); genes are matched to the vocabulary
    before any weights load. Returns ``(store, gene_match)``.
    """
    from ..core.base.cell_keys import obs_name_keys
    from ..core.base.identity import model_identity
    from ..core.scgpt.encoder import DEFAULT_MAX_LENGTH, ScGPTEncoder
    from ..core.shards import ScGPTEmbedTask

    options = (options or EngineOptions()).check(shard_size)
    max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
    if batch_size < 1 or max_length < 2 or seed < 0:
        msg = f"Need batch_size >= 1, max_length >= 2 and seed >= 0; got {batch_size}, {max_length}, {seed}."
        raise ValueError(msg)
    dev = options.device(device)
    dtype = options.dtype(dev, dtype)
    enc = ScGPTEncoder(model, device="cpu", dtype="float32")  # reads args.json and vocab.json only
    genes = enc.match_genes(list(gene_names))
    n_bins = enc.config.n_bins if n_bins is None else n_bins
    params = {"batch_size": batch_size, "max_length": max_length, "n_bins": n_bins, "seed": seed}
    params |= {"cell_seeds": "obs_name", "device": dev, "dtype": dtype}  # cell randomness from (seed, obs name)
    identity = job_identity("embed/scgpt", model_identity(enc.folder), params, input_identity)
    path = store_path(store, cache_dir, identity, shard_size)
    settings = {"batch_size": batch_size, "max_length": max_length, "n_bins": n_bins, "seed": seed}
    settings |= {"device": dev, "dtype": dtype}
    task = ScGPTEmbedTask(str(enc.folder), matrix, genes.column_ids, obs_name_keys(obs_names), **settings)
    outputs = {"embedding": ((enc.config.d_model,), "float32"), "n_genes": ((), "int32")}
    what = f"embedding with scGPT from {str(enc.folder)!r} (matched {genes.n_matched}/{genes.n_genes} genes)"
    n = len(obs_names)
    shards = run_job(
        task, identity, path, n_cells=n, shard_size=shard_size, outputs=outputs, options=options, what=what
    )
    return shards, genes
