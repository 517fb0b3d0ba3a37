from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl

FAST = {"max_epochs": 30, "patience": 6, "lr": 1e-2, "progress": False}
SCORES = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def two_bit_adata(n: int = 200, seed: int = 0) -> ad.AnnData:
    """X_a carries bit 1 and X_b bit 2 of a 4-class label; only their fusion tells all four apart."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    a = rng.normal(size=(n, 8)).astype(np.float32)
    b = rng.normal(size=(n, 6)).astype(np.float32)
    a[:, 0] += 4 * (codes % 2)
    b[:, 0] += 4 * (codes // 2)
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.array(["t0", "t1", "t2", "t3"])[codes])})
    obs.index = [f"cell{i}" for i in range(n)]
    adata = ad.AnnData(np.zeros((n, 2), dtype=np.float32), obs=obs)
    adata.obsm["X_a"], adata.obsm["X_b"] = a, b
    return adata


def test_comparison_table_rows_scores_and_ranking(tmp_path):
    adata = two_bit_adata()
    sl.tl.compare_annotators(adata, label_key="cell_type", use_reps=["X_a", "X_b"], seeds=[0, 1], **FAST)
    res = adata.uns["scmpt_comparison"]
    table, per_seed = res["table"], res["per_seed"]
    assert list(table.index) == ["scMPT (X_a + X_b)", "MLP (X_a)", "MLP (X_b)", "kNN (X_a)", "kNN (X_b)"]
    for s in SCORES:
        assert ((table[f"{s}_mean"] >= 0) & (table[f"{s}_mean"] <= 1)).all()
        assert (table[f"{s}_sd"] >= 0).all()
    assert table["n_test"].nunique() == 1 and 36 <= table["n_test"].iloc[0] <= 44  # 20% of every class, rounded
    assert len(per_seed) == 10 and set(per_seed["seed"]) == {0, 1}
    # the table is the mean and sample sd of the per-seed scores
    fusion = per_seed[per_seed["method"] == "scMPT (X_a + X_b)"]
    assert table.loc["scMPT (X_a + X_b)", "f1_macro_mean"] == pytest.approx(fusion["f1_macro"].mean())
    assert table.loc["scMPT (X_a + X_b)", "f1_macro_sd"] == pytest.approx(fusion["f1_macro"].std(ddof=1))
    # only the fusion sees both bits
    assert table.loc["scMPT (X_a + X_b)", "accuracy_mean"] > 0.85
    assert table["accuracy_mean"].drop("scMPT (X_a + X_b)").max() < 0.65
    assert res["params"]["seeds"] == [0, 1] and res["params"]["k"] == 10
    assert res["params"]["class_weight"] == "none"

    printed = res["summary"]
    assert list(printed.columns) == ["accuracy", "f1_macro", "ece"]
    m, sd = table.loc["MLP (X_a)", ["accuracy_mean", "accuracy_sd"]]
    assert printed.loc["MLP (X_a)", "accuracy"] == f"{m:.3f} ± {sd:.3f}"

    adata.write_h5ad(tmp_path / "cmp.h5ad")
    back = ad.read_h5ad(tmp_path / "cmp.h5ad").uns["scmpt_comparison"]["table"]
    np.testing.assert_allclose(back["f1_macro_mean"].to_numpy(), table["f1_macro_mean"].to_numpy())


def test_single_representation_and_copy(pbmc):
    out = sl.tl.compare_annotators(
        pbmc, label_key="bulk_labels", use_reps=["X_pca"], seeds=[3], key_added="cmp", copy=True, **FAST
    )
    assert "cmp" not in pbmc.uns
    table = out.uns["cmp"]["table"]
    assert list(table.index) == ["scMPT (X_pca)", "kNN (X_pca)"]
    assert (table["accuracy_sd"] == 0).all()
    assert table.loc["kNN (X_pca)", "accuracy_mean"] > 0.6  # pbmc68k's 10-NN accuracy on PCA is ~0.8
    assert table.loc["scMPT (X_pca)", "accuracy_mean"] > 0.6


def test_knn_rows_match_knn_annotate():
    adata = two_bit_adata(100)
    sl.tl.compare_annotators(adata, label_key="cell_type", use_reps=["X_a"], seeds=[0], k=5, **FAST)
    from sc_llm.core.base.splits import stratified_split

    tr, te = stratified_split(adata.obs["cell_type"].cat.codes.to_numpy(), 0.2, 0)
    query = adata[te].copy()
    sl.tl.knn_annotate(query, adata[tr].copy(), use_rep="X_a", label_key="cell_type", k=5)
    expected = query.uns["knn_label"]["metrics"]["accuracy"]
    assert adata.uns["scmpt_comparison"]["table"].loc["kNN (X_a)", "accuracy_mean"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": 1}, TypeError, "seeds"),
        ({"epochs": 3}, TypeError, "Unexpected training arguments"),
        ({"seeds": []}, ValueError, "at least one seed"),
        ({"seeds": [1, 1]}, ValueError, "without repeats"),
        ({"test_size": 0}, ValueError, "test_size"),
        ({"k": 0}, ValueError, "`k`"),
        ({"use_reps": ["X_a", "X_nope"]}, KeyError, "X_nope"),
        ({"label_key": "nope"}, KeyError, "nope"),
    ],
)
def test_bad_arguments_write_nothing(kwargs, error, match):
    adata = two_bit_adata(60)
    with pytest.raises(error, match=match):
        sl.tl.compare_annotators(adata, **{"label_key": "cell_type", "use_reps": ["X_a", "X_b"], **FAST, **kwargs})
    assert "scmpt_comparison" not in adata.uns


def test_too_small_class_is_a_clear_error():
    adata = two_bit_adata(60)
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.add_categories("rare")
    adata.obs.loc[adata.obs_names[:2], "cell_type"] = "rare"
    with pytest.raises(ValueError, match=r"fewer than 3.*'rare': 2"):
        sl.tl.compare_annotators(adata, label_key="cell_type", use_reps=["X_a"], **FAST)


def test_several_fusions_ece_and_a_phenotype_label():
    """fusion=[...] adds one row per fusion; ECE matches an independent computation; any .obs column is a label."""
    from sc_llm.core.base.splits import stratified_split
    from sc_llm.core.knn import knn_vote
    from sc_llm.metrics import expected_calibration_error

    adata = two_bit_adata(160)
    adata.obs["condition"] = pd.Categorical(np.where(adata.obs["cell_type"].isin(["t1", "t3"]), "stim", "ctrl"))
    sl.tl.compare_annotators(
        adata, label_key="condition", use_reps=["X_a", "X_b"], seeds=[0], k=5, fusion=["stacked", "concat"], **FAST
    )
    res = adata.uns["scmpt_comparison"]
    assert list(res["table"].index)[:2] == ["scMPT (X_a + X_b)", "scMPT[concat] (X_a + X_b)"]
    assert res["params"]["fusion"] == ["stacked", "concat"]
    assert ((res["table"]["ece_mean"] >= 0) & (res["table"]["ece_mean"] <= 1)).all()
    assert res["table"].loc["scMPT (X_a + X_b)", "accuracy_mean"] > 0.85  # the phenotype sits in X_a's bit
    # the kNN row's ECE is the vote fraction's calibration error on the test cells
    codes = np.asarray(adata.obs["condition"].cat.codes)
    tr, te = stratified_split(codes, 0.2, 0)
    top, frac = knn_vote(adata.obsm["X_b"][tr], codes[tr], adata.obsm["X_b"][te], 5, 2)
    cats = np.asarray(adata.obs["condition"].cat.categories)
    expected = expected_calibration_error(cats[codes[te]], cats[top[:, 0]], frac[:, 0])
    assert res["table"].loc["kNN (X_b)", "ece_mean"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="`fusion` must be one of"):
        sl.tl.compare_annotators(adata, label_key="condition", use_reps=["X_a", "X_b"], fusion=["concat", "concat"])


def test_ensemble_controls_separate_fusion_from_ensembling():
    """'ensemble (a)' is the same fusion on copies of one representation: it cannot see the other bit."""
    adata = two_bit_adata(200)
    sl.tl.compare_annotators(
        adata, label_key="cell_type", use_reps=["X_a", "X_b"], seeds=[0, 1], ensemble_controls=True, **FAST
    )
    res = adata.uns["scmpt_comparison"]
    table = res["table"]
    assert list(table.index)[:3] == ["scMPT (X_a + X_b)", "ensemble (X_a)", "ensemble (X_b)"]
    assert res["params"]["ensemble_controls"] == ["X_a", "X_b"]
    acc = table["accuracy_mean"]
    # each representation holds half the label: fusion wins by a clear margin over its same-budget ensembles
    assert acc["scMPT (X_a + X_b)"] > 0.85
    assert max(acc["ensemble (X_a)"], acc["ensemble (X_b)"]) < 0.65
    assert acc["scMPT (X_a + X_b)"] - max(acc["ensemble (X_a)"], acc["ensemble (X_b)"]) > 0.2

    # the label in X_a alone, X_b pure noise: the control on X_a does as well as the fusion (nothing to fuse)
    adata.obs["bit"] = pd.Categorical(np.where(adata.obs["cell_type"].isin(["t1", "t3"]), "one", "zero"))
    adata.obsm["X_b"] = np.random.default_rng(1).normal(size=adata.obsm["X_b"].shape).astype(np.float32)
    sl.tl.compare_annotators(
        adata, label_key="bit", use_reps=["X_a", "X_b"], seeds=[0], ensemble_controls=["X_a"], **FAST
    )
    acc = adata.uns["scmpt_comparison"]["table"]["accuracy_mean"]
    assert "ensemble (X_b)" not in acc.index and acc["ensemble (X_a)"] > 0.85
    assert abs(acc["scMPT (X_a + X_b)"] - acc["ensemble (X_a)"]) <= 0.05
    with pytest.raises(ValueError, match="`ensemble_controls` must be"):
        sl.tl.compare_annotators(adata, label_key="bit", use_reps=["X_a", "X_b"], ensemble_controls=["X_c"])
