"""``sl.tl.embed(cache_dir=…)``: in-memory embeddings computed through a resumable shard store."""

from __future__ import annotations

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
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Embed ``sentences`` shard by shard into ``cache_dir/embed-<job hash>``; reuse the shards already there.

    Returns ``(embeddings, truncated, params)``; ``params`` are the encoder's plus ``cache`` (the store folder)
    and ``shard_size``.
    """
    from ..core.shards import ListSentences, hash_strings
    from ..core.text_encoder import TextEncoder
    from ..jobs._embed import check_engine, run_text_job

    check_engine("local", 1, shard_size)
    sentences = list(sentences)
    enc = TextEncoder(model, **encoder_kwargs)
    input_identity = {
        "n_obs": len(sentences), "obs_names_sha256": hash_strings(obs_names),
        "sentences_sha256": hash_strings(sentences),
    }  # fmt: skip
    store, _ = run_text_job(
        ListSentences(sentences), cache_dir=cache_dir, n_cells=len(sentences), input_identity=input_identity,
        model=model, batch_size=batch_size, shard_size=shard_size, progress=progress, encoder=enc, **encoder_kwargs,
    )  # fmt: skip
    params = {**enc.params(), "cache": str(store.path), "shard_size": shard_size}
    return store.read("embedding"), store.read("truncated"), params
