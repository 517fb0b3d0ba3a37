"""sl.pl.confusion_matrix and sl.pl.reliability on any annotation column (synthetic labels and a real kNN run)."""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl


def snapshot(adata):
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


@pytest.fixture
def labelled():
    """40 cells: truth in the order c, a, b; predictions with one label that is no true class ('unknown')."""
    rng = np.random.default_rng(0)
    truth = rng.choice(["a", "b", "c"], 40)
    pred = np.where(rng.random(40) < 0.7, truth, rng.choice(["a", "b", "unknown"], 40))
    obs = pd.DataFrame(
        {
            "truth": pd.Categorical(truth, categories=["c", "a", "b"]),
            "pred": pd.Categorical(pred),
            "pred_confidence": np.clip(rng.random(40) * 0.6 + 0.4 * (pred == truth), 0, 1),
        },
        index=[f"cell{i}" for i in range(40)],
    )
    obs.loc["cell0", "truth"] = np.nan  # unlabelled cells are left out
    return ad.AnnData(np.zeros((40, 2), dtype=np.float32), obs=obs)


def test_confusion_counts_rows_and_order(labelled, tmp_path):
    target = tmp_path / "cm.png"
    axes = sl.pl.confusion_matrix(labelled, key="pred", truth_key="truth", normalize=None, show=False, save=target)
    assert target.is_file()
    ax = axes[0]
    has = labelled.obs["truth"].notna()
    expected = pd.crosstab(labelled.obs["truth"][has].astype(str), labelled.obs["pred"][has].astype(str))
    rows, cols = ["c", "a", "b"], ["c", "a", "b", "unknown"]
    np.testing.assert_array_equal(ax.images[0].get_array(), expected.reindex(index=rows, columns=cols, fill_value=0))
    assert [t.get_text() for t in ax.get_xticklabels()] == cols
    assert [t.get_text().split(" (")[0] for t in ax.get_yticklabels()] == rows  # same order: the diagonal is right
    assert [int(t.get_text().split("(")[1][:-1]) for t in ax.get_yticklabels()] == expected.sum(1)[rows].tolist()
    assert ax.get_xlabel() == "predicted (pred)" and ax.get_ylabel().startswith("true (truth)")
    accuracy = (labelled.obs["pred"][has].astype(str) == labelled.obs["truth"][has].astype(str)).mean()
    assert ax.get_title() == f"pred: accuracy {accuracy:.3f}, n = 39"
    assert len(ax.texts) == int((expected.to_numpy() > 0).sum())  # zeros are left blank


def test_confusion_row_normalised_into_given_axes(labelled):
    _, ax = plt.subplots()
    assert sl.pl.confusion_matrix(labelled, key="pred", truth_key="truth", ax=ax, show=False) == [ax]
    np.testing.assert_allclose(ax.images[0].get_array().sum(1), 1.0)
    assert ax.images[0].get_clim() == (0, 1.0)


def test_reliability_bins_and_ece(labelled, tmp_path):
    fig = sl.pl.reliability(labelled, key="pred", truth_key="truth", n_bins=5, return_fig=True, save=tmp_path / "r.pdf")
    assert (tmp_path / "r.pdf").is_file()
    ax = fig.axes[0]
    obs = labelled.obs[labelled.obs["truth"].notna()]
    ece = sl.metrics.expected_calibration_error(obs["truth"], obs["pred"], obs["pred_confidence"], n_bins=5)
    assert ax.get_title() == f"pred: ECE {ece:.3f} (5 bins, n = 39)"
    assert ax.get_xlabel() == "confidence (pred_confidence)" and ax.get_ylabel() == "accuracy"
    bins = np.clip(np.ceil(obs["pred_confidence"] * 5).astype(int) - 1, 0, 4)
    accuracy, gap = ax.containers[0], ax.containers[1]
    assert len(accuracy) == len(gap) == bins.nunique()
    right = (obs["truth"].astype(str) == obs["pred"].astype(str)).to_numpy()
    expected = [right[bins.to_numpy() == b].mean() for b in sorted(bins.unique())]
    np.testing.assert_allclose(
        sorted((p.get_x(), p.get_height()) for p in accuracy),
        list(zip(np.sort(bins.unique()) / 5, expected, strict=True)),
    )
    counts = sum(int(t.get_text()) for t in ax.texts)
    assert counts == 39
    weighted_gap = sum(
        abs(p.get_height()) * n
        for p, n in zip(sorted(gap, key=lambda p: p.get_x()), bins.value_counts().sort_index(), strict=True)
    )
    assert weighted_gap / 39 == pytest.approx(ece)  # the drawn gaps are the ECE's terms


def test_real_knn_run(_pbmc):
    adata = _pbmc.copy()
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")
    cm = sl.pl.confusion_matrix(adata, key="knn_label", truth_key="bulk_labels", return_fig=True)
    assert cm.axes[0].images[0].get_array().shape == (10, 10)
    rel = sl.pl.reliability(adata, key="knn_label", truth_key="bulk_labels", return_fig=True)
    assert rel.axes[0].get_title().startswith("knn_label: ECE ")


def test_errors_name_the_fix_and_change_nothing(labelled):
    before = snapshot(labelled)
    with pytest.raises(KeyError, match=r"sl\.tl\.knn_annotate.*key_added"):
        sl.pl.confusion_matrix(labelled, key="knn_label", truth_key="truth", show=False)
    with pytest.raises(KeyError, match="truth_key="):
        sl.pl.confusion_matrix(labelled, key="pred", truth_key="cell_type", show=False)
    with pytest.raises(ValueError, match="`normalize` must be one of"):
        sl.pl.confusion_matrix(labelled, key="pred", truth_key="truth", normalize="rows", show=False)
    assert snapshot(labelled) == before
    labelled.obs["pred2"] = labelled.obs["pred"]
    before = snapshot(labelled)
    with pytest.raises(KeyError, match=r"`sl\.tl\.knn_annotate` and `sl\.tl\.scmpt_annotate` write it"):
        sl.pl.reliability(labelled, key="pred2", truth_key="truth", show=False)
    with pytest.raises(ValueError, match="n_bins"):
        sl.pl.reliability(labelled, key="pred", truth_key="truth", n_bins=0, show=False)
    assert snapshot(labelled) == before
