import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

import sc_llm as sl


@pytest.fixture
def split(pbmc):
    train, test = train_test_split(
        np.arange(pbmc.n_obs), test_size=0.2, stratify=pbmc.obs["bulk_labels"], random_state=0
    )
    return pbmc, train, test


def test_reference_transfer_writes_documented_keys(split):
    adata, train, test = split
    ref, query = adata[train].copy(), adata[test].copy()
    sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="bulk_labels", truth_key="bulk_labels")
    pred = query.obs["knn_label"]
    assert isinstance(pred.dtype, pd.CategoricalDtype)
    assert list(pred.cat.categories) == list(ref.obs["bulk_labels"].cat.categories)
    top = query.obsm["knn_label_top3"]
    assert list(top.columns) == ["label_1", "score_1", "label_2", "score_2", "label_3", "score_3"]
    assert (top["label_1"] == pred).all()
    np.testing.assert_allclose(query.obs["knn_label_confidence"], top["score_1"])
    assert (top["score_1"] >= top["score_2"]).all() and (top["score_2"] >= top["score_3"]).all()
    metrics = query.uns["knn_label"]["metrics"]
    assert metrics["accuracy"] == pytest.approx((pred == query.obs["bulk_labels"]).mean())
    assert metrics["n"] == len(test) and metrics["accuracy"] > 0.7  # pbmc68k PCA separates the main types
    assert query.uns["knn_label"]["params"] == {
        "use_rep": "X_pca",
        "label_key": "bulk_labels",
        "truth_key": "bulk_labels",
        "k": 10,
        "method": "auto",
        "reference": "external",
        "n_reference": len(train),
    }


def test_same_object_reference_equals_explicit_reference(split):
    adata, train, test = split
    ref, query = adata[train].copy(), adata[test].copy()
    sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="bulk_labels", truth_key="bulk_labels")
    adata.obs["train_label"] = adata.obs["bulk_labels"].where(np.isin(np.arange(adata.n_obs), train))
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="train_label", key_added="self_ref")
    assert (adata.obs["self_ref"].iloc[test].astype(str).values == query.obs["knn_label"].astype(str).values).all()
    assert adata.uns["self_ref"]["metrics"]["n"] == len(train)  # leave-one-out on the labelled cells


def test_agrees_with_sklearn_classifier(split):
    from sklearn.neighbors import KNeighborsClassifier

    adata, train, test = split
    X = adata.obsm["X_pca"] / np.linalg.norm(adata.obsm["X_pca"], axis=1, keepdims=True)
    y = adata.obs["bulk_labels"].to_numpy()
    ref = KNeighborsClassifier(10).fit(X[train], y[train]).predict(X[test])
    query = adata[test].copy()
    sl.tl.knn_annotate(query, adata[train].copy(), use_rep="X_pca", label_key="bulk_labels", truth_key="bulk_labels")
    assert (query.obs["knn_label"].astype(str).to_numpy() == ref).mean() > 0.95  # differs only on vote ties


def test_errors_leave_adata_unchanged(split):
    adata, train, test = split
    ref, query = adata[train].copy(), adata[test].copy()
    before = query.obs.copy()
    with pytest.raises(KeyError, match="X_missing"):
        sl.tl.knn_annotate(query, ref, use_rep="X_missing", label_key="bulk_labels", truth_key="bulk_labels")
    ref.obsm["X_d"], query.obsm["X_d"] = ref.obsm["X_pca"][:, :2], query.obsm["X_pca"][:, :3]
    with pytest.raises(ValueError, match="same model"):
        sl.tl.knn_annotate(query, ref, use_rep="X_d", label_key="bulk_labels", truth_key="bulk_labels")
    with pytest.raises(KeyError, match="not_a_label"):
        sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="not_a_label")
    query.obsm["X_nan"] = np.full((query.n_obs, 3), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        sl.tl.knn_annotate(query, use_rep="X_nan", label_key="bulk_labels", truth_key="bulk_labels")
    pd.testing.assert_frame_equal(query.obs, before)
    assert "knn_label" not in query.uns


def test_copy(split):
    adata, train, _ = split
    ref = adata[train].copy()
    del adata.obs["bulk_labels"]
    out = sl.tl.knn_annotate(adata, ref, use_rep="X_pca", label_key="bulk_labels", k=3, copy=True)
    assert "knn_label" in out.obs and "knn_label" not in adata.obs
    assert "metrics" not in out.uns["knn_label"]  # no truth column: nothing scored


def test_truth_key_is_the_query_truth_and_label_key_the_reference_labels(split):
    adata, train, test = split
    query = adata[test].copy()
    query.obs["truth"] = query.obs.pop("bulk_labels")
    sl.tl.knn_annotate(query, adata[train].copy(), use_rep="X_pca", label_key="bulk_labels", truth_key="truth")
    assert query.uns["knn_label"]["params"]["truth_key"] == "truth" and query.uns["knn_label"]["metrics"]["n"] == len(
        test
    )
    with pytest.raises(KeyError, match="nope"):
        sl.tl.knn_annotate(query, adata[train].copy(), use_rep="X_pca", label_key="bulk_labels", truth_key="nope")
    query.obs["bulk_labels"] = query.obs["truth"]  # the pre-0.2 meaning: label_key in the query is its truth
    with pytest.warns(FutureWarning, match="truth_key='bulk_labels'"):
        sl.tl.knn_annotate(query, adata[train].copy(), use_rep="X_pca", label_key="bulk_labels", key_added="old")
    assert query.uns["old"]["metrics"] == query.uns["knn_label"]["metrics"]
