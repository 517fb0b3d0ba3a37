"""Sharded scGPT jobs: a file job equals sl.tl.embed for any shard size (cells are seeded by their names)."""

import numpy as np
import pytest

import sc_llm as sl


@pytest.fixture
def h5ad(tmp_path, _pbmc):
    path = tmp_path / "cells.h5ad"
    _pbmc[:120].copy().write_h5ad(path)
    return path


def test_scgpt_file_job_equals_tl_embed_and_resumes(h5ad, make_scgpt, _pbmc, tmp_path):
    ckpt = make_scgpt("ckpt", n_layers=1)
    adata = _pbmc[:120].copy()
    sl.tl.embed(adata, model=str(ckpt), max_length=64, batch_size=16, progress=False)
    store = sl.jobs.embed(
        h5ad, tmp_path / "s", model=str(ckpt), max_length=64, batch_size=16, shard_size=4096, progress=False
    )
    np.testing.assert_allclose(store.read("embedding"), adata.obsm["X_scgpt"], atol=1e-6)
    n_genes = store.read("n_genes")
    params = adata.uns["scgpt"]["params"]
    assert int((n_genes > 63).sum()) == params["n_subsampled"] and int((n_genes == 0).sum()) == params["n_empty"]
    assert store.manifest["job"] == "embed/scgpt" and store.manifest["params"]["n_bins"] == 51

    # small shards: the same numbers as one unsharded run, reproducible bit for bit
    small = sl.jobs.embed(
        h5ad, tmp_path / "small", model=str(ckpt), max_length=64, batch_size=16, shard_size=50, progress=False
    )
    again = sl.jobs.embed(
        h5ad, tmp_path / "again", model=str(ckpt), max_length=64, batch_size=16, shard_size=50, progress=False
    )
    np.testing.assert_array_equal(small.read("embedding"), again.read("embedding"))
    np.testing.assert_allclose(small.read("embedding"), adata.obsm["X_scgpt"], atol=1e-6)
    np.testing.assert_array_equal(small.read("n_genes"), n_genes)
    rerun = sl.jobs.embed(
        h5ad, tmp_path / "small", model=str(ckpt), max_length=64, batch_size=16, shard_size=50, progress=False
    )
    assert rerun.last_run.n_computed == 0
    with pytest.raises(sl.jobs.StoreMismatchError, match=r"params\.seed"):
        sl.jobs.embed(
            h5ad,
            tmp_path / "small",
            model=str(ckpt),
            max_length=64,
            batch_size=16,
            shard_size=50,
            seed=1,
            progress=False,
        )
