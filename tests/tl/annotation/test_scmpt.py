from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl import ScMPT

FAST = {"max_epochs": 40, "patience": 8, "lr": 1e-2, "progress": False}


def two_bit_adata(n: int = 240, seed: int = 0) -> ad.AnnData:
    """X_a carries bit 1 and X_b bit 2 of a 4-class label: each alone tells at most 2 classes apart."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    a = rng.normal(size=(n, 8)).astype(np.float32)
    b = rng.normal(size=(n, 6)).astype(np.float32) * 5 + 10
    a[:, 0] += 4 * (codes % 2)
    b[:, 0] += 20 * (codes // 2)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(np.array(["t0", "t1", "t2", "t3"])[codes])}, index=[f"cell{i}" for i in range(n)]
    )
    adata = ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=obs)
    adata.obsm["X_a"], adata.obsm["X_b"] = a, b
    return adata


def snapshot(adata: ad.AnnData) -> tuple:
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


@pytest.mark.parametrize(("key_added", "fusion"), [("scmpt", "concat"), ("fused", "pretrained")])
def test_annotate_writes_documented_fields(key_added, fusion):
    adata = two_bit_adata()
    adata.obs.loc[adata.obs_names[:40], "cell_type"] = np.nan  # unlabelled cells get predicted too
    sl.tl.scmpt_annotate(
        adata, label_key="cell_type", use_reps=["X_a", "X_b"], key_added=key_added, fusion=fusion, **FAST
    )
    pred = adata.obs[key_added]
    assert isinstance(pred.dtype, pd.CategoricalDtype)
    assert pred.notna().all()
    uns = adata.uns[key_added]
    assert uns["classes"] == ["t0", "t1", "t2", "t3"]
    assert list(pred.cat.categories) == uns["classes"]
    proba = adata.obsm[f"{key_added}_proba"]
    assert proba.shape == (adata.n_obs, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(adata.obs[f"{key_added}_confidence"], proba.max(1))
    np.testing.assert_array_equal(pred.cat.codes, proba.argmax(1))
    params = uns["params"]
    assert params["use_reps"] == ["X_a", "X_b"] and params["rep_dims"] == [8, 6]
    assert params["label_key"] == "cell_type" and params["reference"] == "adata"
    assert params["n_train"] + params["n_validation"] == 200
    assert params["class_weight"] == "none" and params["device"] == "cpu"
    assert set(uns["history"]) >= {"n_epochs", "best_epoch", "stopped_early", "best_val_loss", "best_val_accuracy"}
    assert uns["metrics_on"] == "validation"
    assert uns["metrics"]["n"] == params["n_validation"]
    assert uns["metrics"]["accuracy"] > 0.85  # the classes need both representations
    assert 0 <= uns["metrics"]["ece"] <= 1 and params["fusion"] == fusion == uns["history"]["fusion"]
    assert uns["history"]["temperature"] > 0


def test_stacked_default_phenotype_label_and_calibrated_confidence(tmp_path):
    """The default fusion trains on every labelled cell (no validation metrics), saves, loads and predicts the same."""
    adata = two_bit_adata()
    adata.obs["condition"] = pd.Categorical(np.where(adata.obs["cell_type"].isin(["t2", "t3"]), "stim", "ctrl"))
    sl.tl.scmpt_annotate(
        adata, label_key="condition", use_reps=["X_a", "X_b"], n_folds=3, save_model=tmp_path / "m", **FAST
    )
    uns = adata.uns["scmpt"]
    assert uns["params"]["fusion"] == "stacked" and uns["params"]["n_folds"] == 3
    assert uns["params"]["n_train"] == 240 and uns["params"]["n_validation"] == 0 and "metrics" not in uns
    assert uns["history"]["oof_accuracy"] > 0.9 and len(uns["history"]["weights"]) == 2
    assert uns["history"]["weights"][1] > uns["history"]["weights"][0]  # the phenotype is X_b's bit
    assert (adata.obs["scmpt"] == adata.obs["condition"]).mean() > 0.9
    model = ScMPT.load(tmp_path / "m")
    np.testing.assert_allclose(model.predict_proba(adata), adata.obsm["scmpt_proba"], rtol=1e-5, atol=1e-6)


def test_fusion_beats_each_single_representation():
    adata = two_bit_adata(400)
    ref, query = adata[:300].copy(), adata[300:].copy()
    acc = {}
    for reps in (["X_a", "X_b"], ["X_a"], ["X_b"]):
        sl.tl.scmpt_annotate(query, ref, label_key="cell_type", use_reps=reps, **FAST)
        assert query.uns["scmpt"]["metrics_on"] == "query"
        acc[len(reps), reps[0]] = query.uns["scmpt"]["metrics"]["accuracy"]
    assert acc[2, "X_a"] > 0.85
    assert acc[1, "X_a"] < 0.6 and acc[1, "X_b"] < 0.6


def test_reference_without_truth_in_query_and_copy():
    adata = two_bit_adata(200)
    ref = adata[:150].copy()
    query = adata[150:].copy()
    del query.obs["cell_type"]
    before = snapshot(query)
    out = sl.tl.scmpt_annotate(query, ref, label_key="cell_type", use_reps=["X_a", "X_b"], copy=True, **FAST)
    assert snapshot(query) == before
    assert "metrics" not in out.uns["scmpt"]
    assert out.uns["scmpt"]["params"]["reference"] == "external"
    assert out.obs["scmpt"].notna().all()


def test_seeded_runs_are_identical_and_seeds_differ():
    adata = two_bit_adata(160)
    runs = [
        sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a", "X_b"], seed=s, copy=True, **FAST)
        for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(runs[0].obsm["scmpt_proba"], runs[1].obsm["scmpt_proba"])
    assert not np.array_equal(runs[0].obsm["scmpt_proba"], runs[2].obsm["scmpt_proba"])


def test_a_single_key_string_is_one_representation():
    adata = two_bit_adata(120)
    sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps="X_b", **FAST)
    assert adata.uns["scmpt"]["params"]["use_reps"] == ["X_b"]
    assert ScMPT.fit(adata, label_key="cell_type", use_reps="X_b", **FAST).use_reps == ["X_b"]


def test_class_weight_options():
    adata = two_bit_adata(160)
    out = sl.tl.scmpt_annotate(
        adata, label_key="cell_type", use_reps=["X_a"], class_weight="balanced", copy=True, **FAST
    )
    assert out.uns["scmpt"]["params"]["class_weight"] == "balanced"
    weights = {"t0": 1.0, "t1": 2.0, "t2": 1.0, "t3": 1.0}
    out = sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a"], class_weight=weights, copy=True, **FAST)
    assert out.uns["scmpt"]["params"]["class_weight"] == weights
    with pytest.raises(ValueError, match="no weight for classes"):
        sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a"], class_weight={"t0": 1.0}, **FAST)
    with pytest.raises(ValueError, match="'balanced'"):
        sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a"], class_weight="auto", **FAST)


def test_pbmc_pca_single_rep_and_h5ad_round_trip(pbmc, tmp_path):
    sl.tl.scmpt_annotate(pbmc, label_key="bulk_labels", use_reps=["X_pca"], progress=False)
    assert pbmc.uns["scmpt"]["metrics"]["accuracy"] > 0.6
    pbmc.write_h5ad(tmp_path / "out.h5ad")
    back = ad.read_h5ad(tmp_path / "out.h5ad")
    assert list(back.uns["scmpt"]["classes"]) == pbmc.uns["scmpt"]["classes"]
    np.testing.assert_array_equal(back.obsm["scmpt_proba"], pbmc.obsm["scmpt_proba"])


def test_model_fit_predict_save_load(tmp_path):
    adata = two_bit_adata(200)
    model = ScMPT.fit(adata[:150], label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    assert model.classes == ["t0", "t1", "t2", "t3"]
    assert model.use_reps == ["X_a", "X_b"] and model.rep_dims == [8, 6] and model.label_key == "cell_type"
    assert not model.module.training
    assert "X_a (8)" in repr(model)
    query = adata[150:].copy()
    proba = model.predict_proba(query)
    labels = model.predict(query)
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert list(labels.index) == list(query.obs_names)
    assert (labels.to_numpy() == query.obs["cell_type"].to_numpy()).mean() > 0.85

    folder = model.save(tmp_path / "model")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.pt"}
    loaded = ScMPT.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(query), proba, rtol=1e-6)
    assert loaded.classes == model.classes and loaded.rep_dims == model.rep_dims
    assert loaded.history["n_epochs"] == model.history["n_epochs"]
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(folder)
    model.save(folder, overwrite=True)
    with pytest.raises(FileNotFoundError, match="not a saved ScMPT"):
        ScMPT.load(tmp_path)


def test_model_rejects_mismatched_dimensions():
    adata = two_bit_adata(120)
    model = ScMPT.fit(adata, label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    other = adata.copy()
    other.obsm["X_b"] = np.ones((other.n_obs, 7), dtype=np.float32)
    with pytest.raises(ValueError, match="has 7 dimensions but the model was trained on 6"):
        model.predict_proba(other)
    with pytest.raises(KeyError, match="X_a"):
        model.predict(ad.AnnData(np.zeros((3, 2))))


def test_save_model_from_annotate(tmp_path):
    adata = two_bit_adata(160)
    sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a", "X_b"], save_model=tmp_path / "m", **FAST)
    model = ScMPT.load(tmp_path / "m")
    np.testing.assert_allclose(model.predict_proba(adata), adata.obsm["scmpt_proba"], rtol=1e-6)
    assert model.params["n_train"] == adata.uns["scmpt"]["params"]["n_train"]
    before = snapshot(adata)
    with pytest.raises(FileExistsError, match="already holds a model"):
        sl.tl.scmpt_annotate(
            adata, label_key="cell_type", use_reps=["X_a"], key_added="again", save_model=tmp_path / "m"
        )
    assert snapshot(adata) == before


def bad_inputs():
    def nan_rep(a):
        a.obsm["X_b"][3, 2] = np.nan

    def rare_class(a):
        a.obs["cell_type"] = a.obs["cell_type"].cat.add_categories("rare")
        a.obs.loc[a.obs_names[0], "cell_type"] = "rare"

    def no_labels(a):
        a.obs["cell_type"] = pd.Categorical([np.nan] * a.n_obs)

    return [
        ({}, nan_rep, ValueError, "NaN"),
        ({"use_reps": ["X_a", "X_missing"]}, None, KeyError, "X_missing"),
        ({"label_key": "nope"}, None, KeyError, "nope"),
        ({}, rare_class, ValueError, r"'rare': 1"),
        ({}, no_labels, ValueError, "no labelled cell"),
        ({"use_reps": []}, None, ValueError, "at least one"),
        ({"use_reps": ["X_a", "X_a"]}, None, ValueError, "twice"),
        ({"validation_fraction": 1.0}, None, ValueError, "validation_fraction"),
    ]


@pytest.mark.parametrize(("kwargs", "mutate", "error", "match"), bad_inputs())
def test_bad_input_raises_and_writes_nothing(kwargs, mutate, error, match):
    adata = two_bit_adata(80)
    if mutate is not None:
        mutate(adata)
    before = snapshot(adata)
    args = {"label_key": "cell_type", "use_reps": ["X_a", "X_b"], **FAST, **kwargs}
    with pytest.raises(error, match=match):
        sl.tl.scmpt_annotate(adata, **args)
    assert snapshot(adata) == before


def test_reference_dimension_mismatch():
    adata = two_bit_adata(80)
    ref = adata.copy()
    ref.obsm["X_a"] = ref.obsm["X_a"][:, :5]
    with pytest.raises(ValueError, match="5 in the reference"):
        sl.tl.scmpt_annotate(adata, ref, label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    assert "scmpt" not in adata.obs


def test_rare_class_is_fine_without_validation():
    adata = two_bit_adata(80)
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.add_categories("rare")
    adata.obs.loc[adata.obs_names[0], "cell_type"] = "rare"
    sl.tl.scmpt_annotate(
        adata, label_key="cell_type", use_reps=["X_a"], validation_fraction=0, **{**FAST, "max_epochs": 5}
    )
    assert "rare" in adata.uns["scmpt"]["classes"]
    assert "metrics" not in adata.uns["scmpt"]
    assert adata.uns["scmpt"]["history"]["n_epochs"] == 5


def make_mudata(adata: ad.AnnData):
    mudata = pytest.importorskip("mudata", reason="mudata is a test dependency")
    rna = ad.AnnData(np.zeros((adata.n_obs, 2), dtype=np.float32), obs=pd.DataFrame(index=adata.obs_names))
    rna.obsm["X_scgpt"] = adata.obsm["X_a"]
    text = ad.AnnData(np.zeros((adata.n_obs, 1), dtype=np.float32), obs=pd.DataFrame(index=adata.obs_names[::-1]))
    text.obsm["X_ember"] = adata.obsm["X_b"][::-1]  # stored in another cell order
    mdata = mudata.MuData({"rna": rna, "text": text})
    mdata.obs["cell_type"] = adata.obs["cell_type"].reindex(mdata.obs_names)
    return mdata


def test_mudata_with_modality_qualified_keys(tmp_path):
    adata = two_bit_adata(200)
    mdata = make_mudata(adata)
    sl.tl.scmpt_annotate(
        mdata, label_key="cell_type", use_reps=["rna:X_scgpt", "text:X_ember"], fusion="pretrained", **FAST
    )
    assert mdata.uns["scmpt"]["metrics"]["accuracy"] > 0.85
    assert mdata.obsm["scmpt_proba"].shape == (200, 4)
    # same result as the equivalent AnnData: the text modality's rows were aligned to the MuData's cells
    sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a", "X_b"], fusion="pretrained", **FAST)
    np.testing.assert_allclose(mdata.obsm["scmpt_proba"], adata[mdata.obs_names].obsm["scmpt_proba"], rtol=1e-5)
    model = ScMPT.fit(mdata, label_key="cell_type", use_reps=["rna:X_scgpt", "text:X_ember"], **FAST)
    assert model.predict(mdata).notna().all()


def test_mudata_errors():
    adata = two_bit_adata(60)
    mdata = make_mudata(adata)
    with pytest.raises(KeyError, match="rna:X_scgpt"):
        sl.tl.scmpt_annotate(mdata, label_key="cell_type", use_reps=["X_scgpt"], **FAST)
    mdata.mod["text"] = mdata.mod["text"][:50].copy()
    mdata.update()
    with pytest.raises(ValueError, match="missing from modality 'text'"):
        sl.tl.scmpt_annotate(mdata, label_key="cell_type", use_reps=["rna:X_scgpt", "text:X_ember"], **FAST)
    assert "scmpt" not in mdata.obs


def test_predict_from_arrays_equals_predict_from_anndata():
    adata = two_bit_adata(160)
    model = ScMPT.fit(adata[:120], label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    query = adata[120:].copy()
    arrays = [query.obsm["X_a"], query.obsm["X_b"]]
    np.testing.assert_array_equal(model.predict_proba(arrays), model.predict_proba(query))
    from_arrays = model.predict(arrays)
    assert list(from_arrays) == list(model.predict(query)) and list(from_arrays.index) == list(range(40))
    with pytest.raises(ValueError, match="one 2-d array per representation"):
        model.predict([query.obsm["X_a"]])
    with pytest.raises(ValueError, match="has 5 dimensions but the model was trained on 6"):
        model.predict_proba([query.obsm["X_a"], query.obsm["X_b"][:, :5]])


def test_mod_selects_one_modality_of_a_mudata():
    adata = two_bit_adata(200)
    mdata = make_mudata(adata)
    rna = mdata.mod["rna"]
    rna.obsm["X_b"] = adata.obsm["X_b"]
    rna.obs["cell_type"] = adata.obs["cell_type"].to_numpy()
    sl.tl.scmpt_annotate(mdata, label_key="cell_type", use_reps=["X_scgpt", "X_b"], mod="rna", **FAST)
    assert "scmpt" in rna.obs and "scmpt" in rna.uns and "scmpt" not in mdata.uns
    sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    np.testing.assert_allclose(rna.obsm["scmpt_proba"], adata.obsm["scmpt_proba"], rtol=1e-6)
