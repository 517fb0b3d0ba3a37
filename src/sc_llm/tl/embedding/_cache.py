"""``sl.tl.embed(cache_dir=…)``: in-memory embeddings computed through a resumable shard store."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def embed_text_cached(
    sentences: Sequence[str],
    obs_names: Sequence[str],
    *,
    cache_dir: str | os.PathLike,
    model: str,
    shard_size: int,
    batch_size: int,
    progress: bool,
    encoder_kwargs: dict[str, Any],
    token_budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Embed ``sentences`` shard by shard into ``cache_dir/embed-<job hash>``; reuse the shards already there.

    Returns ``(embeddings, truncated, params)``; ``params`` are the encoder's plus ``cache`` (the store folder)
    and ``shard_size``.
    """
    from ...core.base.identity import hash_strings
    from ...core.shards import ListSentences
    from ...core.text.encoder import as_text_encoder
    from ...jobs._embed_runs import run_text_job
    from ...jobs._run import EngineOptions

    options = EngineOptions(engine="local", num_workers=1, progress=progress).check(shard_size)
    sentences = list(sentences)
    enc = as_text_encoder(model, **encoder_kwargs)
    model = enc.model_id
    input_identity = {
        "n_obs": len(sentences),
        "obs_names_sha256": hash_strings(obs_names),
        "sentences_sha256": hash_strings(sentences),
    }
    store = run_text_job(
        ListSentences(sentences),
        cache_dir=cache_dir,
        n_cells=len(sentences),
        input_identity=input_identity,
        model=model,
        batch_size=batch_size,
        token_budget=token_budget,
        shard_size=shard_size,
        encoder_kwargs=encoder_kwargs,
        options=options,
        encoder=enc,
    )
    params = {**enc.params(), "cache": str(store.path), "shard_size": shard_size}
    return store.read("embedding"), store.read("truncated"), params


def embed_scgpt_cached(
    X,
    gene_names,
    obs_names,
    *,
    model,
    device,
    dtype,
    cache_dir,
    shard_size,
    source,
    batch_size,
    max_length,
    n_bins,
    seed,
    progress,
):
    """Embed an in-memory matrix with scGPT through ``cache_dir/embed-<job hash>``: ``(emb, stats, store path)``.

    The input is identified by its cell names, gene names, matrix source and a SHA-256 of its values.
    """
    from scipy import sparse

    from ...core.base.identity import hash_strings
    from ...core.scgpt.inference import EmbeddingStats
    from ...core.shards import MatrixRows
    from ...jobs._embed_runs import run_scgpt_job
    from ...jobs._run import EngineOptions

    options = EngineOptions(engine="local", num_workers=1, progress=progress).check(shard_size)
    data = X.tocsr() if sparse.issparse(X) else sparse.csr_matrix(np.asarray(X))
    values = hashlib.sha256()
    for part in (data.indptr, data.indices, data.data):
        values.update(np.ascontiguousarray(part).tobytes())
    input_identity = {
        "n_obs": data.shape[0],
        "obs_names_sha256": hash_strings(obs_names),
        "genes_sha256": hash_strings(gene_names),
        "matrix": source,
        "values_sha256": values.hexdigest(),
    }
    store, _ = run_scgpt_job(
        MatrixRows(data),
        gene_names,
        obs_names,
        input_identity=input_identity,
        model=model,
        cache_dir=cache_dir,
        batch_size=batch_size,
        max_length=max_length,
        n_bins=n_bins,
        seed=seed,
        device=device,
        dtype=dtype,
        shard_size=shard_size,
        options=options,
    )
    n_genes = store.read("n_genes")
    stats = EmbeddingStats(n_subsampled=int((n_genes > max_length - 1).sum()), n_empty=int((n_genes == 0).sum()))
    return store.read("embedding"), stats, str(store.path)
