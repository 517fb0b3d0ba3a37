"""sl.tl.embed(cache_dir=...): the in-memory API through a resumable shard store."""

from collections import Counter

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.core.shards import ShardStore


@pytest.fixture
def adata(_pbmc):
    adata = _pbmc[:90].copy()
    sl.pp.cell_sentences(adata, n_genes=20)
    return adata


def test_cache_dir_matches_uncached_and_resumes(adata, tiny_bert_dir, tmp_path):
    kwargs = {"model": str(tiny_bert_dir), "batch_size": 8, "progress": False}
    plain = sl.tl.embed(adata, key_added="X_plain", copy=True, **kwargs)
    cached = sl.tl.embed(adata, cache_dir=tmp_path, shard_size=40, copy=True, **kwargs)
    key = "X_" + tiny_bert_dir.name.lower()
    np.testing.assert_allclose(cached.obsm[key], plain.obsm["X_plain"], atol=1e-5)
    params = cached.uns[key[2:]]["params"]
    assert params["shard_size"] == 40 and params["n_truncated"] == plain.uns["plain"]["params"]["n_truncated"]
    store = ShardStore(params["cache"])
    assert store.n_shards == 3 and store.manifest["complete"]

    (store.path / "shards" / "0000001.json").unlink()  # as if the first call had been killed before shard 1
    again = sl.tl.embed(adata, cache_dir=tmp_path, shard_size=40, copy=True, **kwargs)
    np.testing.assert_array_equal(again.obsm[key], cached.obsm[key])
    commits = Counter(e["shard"] for e in store.events() if e["event"] == "commit")
    assert commits == {0: 1, 1: 2, 2: 1}  # only the missing shard was computed again


def test_a_different_job_gets_its_own_store(adata, tiny_bert_dir, tmp_path):
    kwargs = {"model": str(tiny_bert_dir), "batch_size": 8, "progress": False, "cache_dir": tmp_path, "copy": True}
    a = sl.tl.embed(adata, shard_size=50, **kwargs)
    b = sl.tl.embed(adata, shard_size=50, max_length=12, **kwargs)
    other = adata[:60].copy()
    c = sl.tl.embed(other, shard_size=50, **kwargs)
    key = tiny_bert_dir.name.lower()
    stores = {x.uns[key]["params"]["cache"] for x in (a, b, c)}
    assert len(stores) == 3 and len(list(tmp_path.glob("embed-*"))) == 3
    assert not np.allclose(a.obsm["X_" + key], b.obsm["X_" + key])


def test_cache_dir_options_are_checked(adata, tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="shard_size"):
        sl.tl.embed(adata, model=str(tiny_bert_dir), cache_dir=tmp_path, shard_size=0)
    assert "X_" + tiny_bert_dir.name.lower() not in adata.obsm


def test_scgpt_cache_dir_equals_uncached_and_resumes(make_scgpt, _pbmc, tmp_path):
    ckpt = make_scgpt("ckpt", n_layers=1)
    adata = _pbmc[:80].copy()
    kwargs = {"model": str(ckpt), "max_length": 64, "batch_size": 16, "progress": False, "copy": True}
    plain = sl.tl.embed(adata, **kwargs)
    assert plain.uns["scgpt"]["params"]["n_subsampled"] > 0  # random subsampling happens
    cached = sl.tl.embed(adata, cache_dir=tmp_path, shard_size=30, **kwargs)  # 3 shards (30, 30, 20 cells)
    np.testing.assert_allclose(cached.obsm["X_scgpt"], plain.obsm["X_scgpt"], atol=1e-6)
    p, q = cached.uns["scgpt"]["params"], plain.uns["scgpt"]["params"]
    assert (p["n_subsampled"], p["n_empty"]) == (q["n_subsampled"], q["n_empty"]) and p["shard_size"] == 30
    store = ShardStore(p["cache"])
    again = sl.tl.embed(adata, cache_dir=tmp_path, shard_size=30, **kwargs)
    np.testing.assert_array_equal(again.obsm["X_scgpt"], cached.obsm["X_scgpt"])
    assert Counter(e["shard"] for e in store.events() if e["event"] == "commit") == {0: 1, 1: 1, 2: 1}
