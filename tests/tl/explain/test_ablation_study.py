from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl.explain._ablation_study import PAPER_ABLATIONS


@pytest.fixture(scope="module")
def _sentences(_pbmc):
    a = _pbmc[:240].copy()
    sl.pp.cell_sentences(a)
    return a


@pytest.fixture
def adata(_sentences):
    return _sentences.copy()


@pytest.mark.filterwarnings("ignore:Number of distinct clusters:sklearn.exceptions.ConvergenceWarning")
def test_paper_suite_results(adata, tiny_bert_dir, tmp_path):
    sl.tl.ablation_study(
        adata, model=str(tiny_bert_dir), label_key="bulk_labels", max_length=32, progress=False, cache_dir=tmp_path
    )
    res = adata.uns["ablation_study"]["results"]
    assert list(res.index) == list(PAPER_ABLATIONS)
    assert list(res.columns) == [
        "mode",
        "fraction",
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "ari",
        "mean_in_context",
    ]
    metrics = res[["accuracy", "precision_macro", "recall_macro", "f1_macro"]].to_numpy()
    assert np.all((metrics >= 0) & (metrics <= 1)) and np.all(np.abs(res["ari"]) <= 1)
    # one token per gene, 30 tokens of room: 30 genes in context, shortening keeps 3/6/15 of them
    assert res.loc["baseline", "mean_in_context"] == pytest.approx(30, abs=0.5)
    assert res.loc["shorten_10", "mean_in_context"] == pytest.approx(3, abs=0.1)
    assert res.loc["shorten_50", "mean_in_context"] == pytest.approx(15, abs=0.1)
    params = adata.uns["ablation_study"]["params"]
    assert params["n_reference"] + params["n_test"] == adata.n_obs and params["k"] == 10
    assert params["encoder"]["max_length"] == 32
    assert len(list(tmp_path.glob("emb_*.npy"))) == len(PAPER_ABLATIONS)
    import anndata as ad

    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad").uns["ablation_study"]["results"]
    pd.testing.assert_frame_equal(back, res, check_dtype=False)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters:sklearn.exceptions.ConvergenceWarning")
def test_hashes_erase_structure_for_word_level_vocabulary(adata, tiny_bert_dir):
    # the tiny model's word-level vocabulary maps every hash to [UNK]: all cells then look alike, so k-means
    # finds no structure, while the real gene names give clusters that agree with the labels
    out = sl.tl.ablation_study(
        adata,
        model=str(tiny_bert_dir),
        label_key="bulk_labels",
        max_length=32,
        ablations=["baseline", "random_hash", "hash"],
        progress=False,
        copy=True,
    )
    res = out.uns["ablation_study"]["results"]
    assert res.loc["baseline", "ari"] > 0.1
    assert res.loc["random_hash", "ari"] == pytest.approx(0, abs=1e-9)
    assert res.loc["hash", "ari"] == pytest.approx(0, abs=1e-9)
    assert "ablation_study" not in adata.uns


def test_existing_columns_and_split_key(adata, tiny_bert_dir):
    a = adata.copy()
    sl.pp.ablate_sentences(a, mode="shuffle_all", seed=0)
    a.obs["split"] = np.where(np.arange(a.n_obs) % 4 == 0, "test", "train")
    sl.tl.ablation_study(
        a,
        model=str(tiny_bert_dir),
        label_key="bulk_labels",
        max_length=32,
        split_key="split",
        ablations={
            "orig": {"mode": None},
            "shuf": {"sentence_key": "cell_sentence_shuffle_all"},
            "shuf_again": {"mode": "shuffle_all"},
        },
        progress=False,
    )
    res = a.uns["ablation_study"]["results"]
    assert list(res.index) == ["orig", "shuf", "shuf_again"]
    # the runner's in-memory ablation equals `sl.pp.ablate_sentences` with the same seed
    cols = ["accuracy", "f1_macro", "ari"]
    pd.testing.assert_series_equal(res.loc["shuf", cols], res.loc["shuf_again", cols], check_names=False)
    assert a.uns["ablation_study"]["params"]["n_test"] == int((a.obs["split"] == "test").sum())


def test_bad_ablations_raise_before_writing(adata, tiny_bert_dir):
    with pytest.raises(ValueError, match="neither"):
        sl.tl.ablation_study(adata, model=str(tiny_bert_dir), label_key="bulk_labels", ablations=["reverse"])
    with pytest.raises(TypeError, match="not a string"):
        sl.tl.ablation_study(adata, model=str(tiny_bert_dir), label_key="bulk_labels", ablations="hash")
    with pytest.raises(ValueError, match="unknown mode"):
        sl.tl.ablation_study(adata, model=str(tiny_bert_dir), label_key="bulk_labels", ablations={"x": {"mode": "up"}})
    with pytest.raises(KeyError, match="nope"):
        sl.tl.ablation_study(adata, model=str(tiny_bert_dir), label_key="nope")
    with pytest.raises(ValueError, match="single cell"):
        sl.tl.ablation_study(adata[:150], model=str(tiny_bert_dir), label_key="bulk_labels")
    assert "ablation_study" not in adata.uns


@pytest.mark.filterwarnings("ignore:Number of distinct clusters:sklearn.exceptions.ConvergenceWarning")
def test_mod_reads_and_writes_one_modality(adata, tiny_bert_dir):
    mudata = pytest.importorskip("mudata", reason="mudata is a test dependency")
    mdata = mudata.MuData({"rna": adata.copy()})
    kwargs = {"model": str(tiny_bert_dir), "label_key": "bulk_labels", "ablations": ["baseline", "hash"]}
    sl.tl.ablation_study(mdata, mod="rna", max_length=32, progress=False, **kwargs)
    sl.tl.ablation_study(adata, max_length=32, progress=False, **kwargs)
    assert "ablation_study" not in mdata.uns
    pd.testing.assert_frame_equal(
        mdata.mod["rna"].uns["ablation_study"]["results"], adata.uns["ablation_study"]["results"]
    )
    fig = sl.pl.ablation_study(mdata, mod="rna", return_fig=True, show=False)
    assert fig is not None
