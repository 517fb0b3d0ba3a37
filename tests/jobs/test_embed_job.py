"""sl.jobs.embed: files in, a resumable shard store out; identical to the in-memory encoder shard by shard."""

import json

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.core.text.encoder import TextEncoder


@pytest.fixture(scope="module")
def pbmc_file(tmp_path_factory, _pbmc):
    """pbmc68k_reduced's first 120 cells written as .h5ad and .zarr (expression only, no sentences)."""
    folder = tmp_path_factory.mktemp("pbmc_files")
    adata = _pbmc[:120].copy()
    adata.write_h5ad(folder / "pbmc.h5ad")
    adata.write_zarr(folder / "pbmc.zarr")
    return folder


def reference(model, adata, n_genes, shard_size):
    """What each shard must hold: the in-memory encoder on that shard's sentences."""
    sl.pp.cell_sentences(adata, n_genes=n_genes)
    sentences = adata.obs["cell_sentence"].tolist()
    enc = TextEncoder(str(model), device="cpu")
    enc.genes.calibrate(sentences[:8])
    parts = [
        enc.encode(sentences[s : s + shard_size], batch_size=8, progress=False)
        for s in range(0, len(sentences), shard_size)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("suffix", ["h5ad", "zarr"])
def test_embed_file_matches_the_encoder_and_resumes(pbmc_file, tiny_bert_dir, _pbmc, tmp_path, suffix):
    kwargs = {"model": str(tiny_bert_dir), "n_genes": 20, "batch_size": 8, "shard_size": 50, "progress": False}
    store = sl.jobs.embed(pbmc_file / f"pbmc.{suffix}", tmp_path / "store", **kwargs)
    assert (store.last_run.n_computed, store.n_shards) == (3, 3)
    emb, truncated = reference(tiny_bert_dir, _pbmc[:120].copy(), 20, 50)
    np.testing.assert_array_equal(store.read("embedding"), emb)
    np.testing.assert_array_equal(store.read("truncated"), truncated)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] and manifest["params"]["batch_size"] == 8
    assert manifest["input"]["sentences"] == "ranked from raw.X" and manifest["input"]["n_genes"] == 20
    assert manifest["sc_llm_version"] == sl.__version__ and manifest["complete"]

    again = sl.jobs.embed(pbmc_file / f"pbmc.{suffix}", tmp_path / "store", **kwargs)
    assert (again.last_run.n_computed, again.last_run.n_skipped) == (0, 3)


def test_sentences_from_obs_equal_sentences_ranked_from_the_file(pbmc_file, tiny_bert_dir, _pbmc, tmp_path):
    adata = _pbmc[:120].copy()
    sl.pp.cell_sentences(adata, n_genes=20)
    adata.write_h5ad(tmp_path / "with_sentences.h5ad")
    kwargs = {"model": str(tiny_bert_dir), "batch_size": 8, "shard_size": 50, "progress": False}
    a = sl.jobs.embed(tmp_path / "with_sentences.h5ad", tmp_path / "a", **kwargs)
    b = sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "b", n_genes=20, **kwargs)
    assert a.manifest["input"]["sentences"] == "obs['cell_sentence']"
    np.testing.assert_array_equal(a.read("embedding"), b.read("embedding"))


def test_changed_parameter_or_model_is_refused(pbmc_file, tiny_bert_dir, tiny_st_dir, tmp_path):
    kwargs = {"n_genes": 20, "batch_size": 8, "shard_size": 60, "progress": False}
    sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), **kwargs)
    with pytest.raises(sl.jobs.StoreMismatchError, match=r"params\.max_length: None in the store, 16 now"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), max_length=16, **kwargs)
    with pytest.raises(sl.jobs.StoreMismatchError, match=r"model\.fingerprint.*overwrite=True"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_st_dir), **kwargs)
    with pytest.raises(sl.jobs.StoreMismatchError, match=r"input\.n_genes"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), **{**kwargs, "n_genes": 10})
    store = sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_st_dir), overwrite=True, **kwargs)
    assert store.read("embedding").shape == (120, 32)


def test_bad_inputs_fail_before_any_store_is_written(pbmc_file, tiny_bert_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sl.jobs.embed(tmp_path / "missing.h5ad", tmp_path / "s", model=str(tiny_bert_dir))
    with pytest.raises(ValueError, match="engine"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), engine="dask")
    with pytest.raises(KeyError, match="Layer 'counts'"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), layer="counts")
    with pytest.raises(ValueError, match="host_cpus` runs on Ray"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), host_cpus=2)
    with pytest.raises(ValueError, match="non-negative integer"):
        sl.jobs.embed(pbmc_file / "pbmc.h5ad", tmp_path / "s", model=str(tiny_bert_dir), engine="ray", host_cpus=-1)
    assert not (tmp_path / "s").exists()
