"""sl.metrics generative scores: arrays and AnnData agree, use_rep/layer/genes, perturbation_scores, bad input."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

import sc_llm as sl
from sc_llm.core import distances as D


@pytest.fixture
def trio():
    rng = np.random.default_rng(0)
    genes = pd.DataFrame(index=[f"G{i}" for i in range(30)])
    ctrl = rng.poisson(1.0, size=(40, 30)).astype(np.float32)
    real = ctrl[rng.permutation(40)] + 0.0
    real[:, :5] += np.arange(1.0, 6.0) * 2
    pred = ctrl.copy()
    pred[:, :5] += np.arange(1.0, 6.0) * 1.5

    def make(X, tag):
        a = ad.AnnData(
            sparse.csr_matrix(X), var=genes.copy(), obs=pd.DataFrame(index=[f"{tag}{i}" for i in range(len(X))])
        )
        a.layers["dense"] = np.asarray(X)
        a.obsm["X_emb"] = np.asarray(X)[:, :3] * 2
        return a

    return make(pred, "p"), make(real, "r"), make(ctrl, "c")


def test_anndata_and_arrays_agree(trio):
    p, r, c = trio
    P, R, C = (x.layers["dense"] for x in trio)
    assert sl.metrics.r2_mean(p, r) == pytest.approx(stats.pearsonr(P.mean(0), R.mean(0)).statistic ** 2)
    assert sl.metrics.r2_mean(p, r, layer="dense") == pytest.approx(sl.metrics.r2_mean(P, R))
    de = sl.metrics.de_genes(r, c, n_de=5)
    assert set(de) == {f"G{i}" for i in range(5)}
    assert set(sl.metrics.de_genes(R, C, n_de=5)) == set(range(5))
    assert sl.metrics.pearson_delta(p, r, c, genes=de) == pytest.approx(
        sl.metrics.pearson_delta(P, R, C, genes=np.arange(5))
    )
    assert sl.metrics.kendall_tau(p, r, c, genes=de) == pytest.approx(
        D.kendall_tau(P[:, :5].mean(0) - C[:, :5].mean(0), R[:, :5].mean(0) - C[:, :5].mean(0))
    )
    assert sl.metrics.energy_distance(p, r, use_rep="X_emb") == pytest.approx(
        D.energy_distance(P[:, :3] * 2, R[:, :3] * 2)
    )
    assert sl.metrics.frechet_distance(p, r) == pytest.approx(D.frechet_distance(P, R))
    assert sl.metrics.mmd(p, r) == pytest.approx(D.mmd2(P, R))
    w, method = sl.metrics.wasserstein(p, r, return_method=True)
    assert method == "exact" and w == pytest.approx(D.wasserstein(P, R)[0])


def test_perturbation_scores_has_every_score(trio):
    p, r, c = trio
    s = sl.metrics.perturbation_scores(p, r, c, n_de=5, n_comps=5)
    assert s["space"] == "pca5" and s["n_de"] == 5 and s["wasserstein_method"] == "exact"
    assert s["r2_mean_de"] > 0.9 and s["pearson_delta_de"] > 0.9
    same = sl.metrics.perturbation_scores(r, r, c, n_de=5, n_comps=None)
    R = r.layers["dense"].astype(float)
    assert same["space"] == "genes" and same["energy_distance"] <= 0  # the U-statistic of a set against itself
    assert same["energy_distance"] == pytest.approx(D.energy_distance(R, R, unbiased=True))
    assert same["wasserstein"] == pytest.approx(0.0, abs=1e-6) and same["r2_mean_all"] == pytest.approx(1.0)
    emb = sl.metrics.perturbation_scores(p, r, c, use_rep="X_emb", de_genes=["G0", "G1"])
    assert emb["space"] == "X_emb" and emb["n_de"] == 2


def test_bad_input(trio):
    p, r, c = trio
    with pytest.raises(ValueError, match="Too few cells for DEGs"):
        sl.metrics.perturbation_scores(p, r[:2], c)
    with pytest.raises(ValueError, match="Too few cells for DEGs"):
        sl.metrics.de_genes(r, c[:1])
    other = r[:, ::-1].copy()
    with pytest.raises(ValueError, match="different genes"):
        sl.metrics.r2_mean(p, other)
    with pytest.raises(KeyError, match="X_nope"):
        sl.metrics.energy_distance(p, r, use_rep="X_nope")
    with pytest.raises(KeyError, match="Genes not found"):
        sl.metrics.r2_mean(p, r, genes=["G0", "NOPE"])
    with pytest.raises(TypeError, match="integer column indices"):
        sl.metrics.r2_mean(p.X, r.X, genes=["G0"])


def test_perturbation_scores_calibrated_and_rank_scores(trio):
    p, r, c = trio
    C = c.layers["dense"]
    s = sl.metrics.perturbation_scores(p, r, c, n_de=5, n_comps=5)
    for key in ("wmse", "r2w_delta", "de_overlap", "spearman_delta_de"):
        assert np.isfinite(s[key])
    assert s["de_overlap"] == 1.0  # the 5 genes it changes are the 5 DEGs
    assert np.isnan(s["pearson_delta_centroid_de"]) and np.isnan(s["discrimination"])  # no centroid, no groups
    perfect = sl.metrics.perturbation_scores(r, r, c, n_de=5, n_comps=5)
    assert perfect["wmse"] == 0.0 and perfect["r2w_delta"] == pytest.approx(1.0)
    # Systema: against the centroid, the part of the response beyond the average perturbed state
    s = sl.metrics.perturbation_scores(p, r, c, n_de=5, n_comps=5, centroid=C.mean(0))
    assert s["pearson_delta_centroid_de"] == pytest.approx(s["pearson_delta_de"])  # the control as centroid
    s = sl.metrics.perturbation_scores(p, r, c, n_de=5, n_comps=5, centroid=r)
    assert np.isnan(s["pearson_delta_centroid_de"])  # cells: their mean; the real cells leave no real delta
    # discrimination: the predicted response is closer to this group's than to a group without a response
    s = sl.metrics.perturbation_scores(p, r, c, n_de=5, n_comps=5, others={"flat": (c, c)})
    assert s["discrimination"] == 1.0
    ctrl = sl.metrics.perturbation_scores(c, r, c, n_de=5, n_comps=5, others={"flat": (c, c)})
    assert ctrl["discrimination"] == 0.5 and ctrl["de_overlap"] == 0.0
    with pytest.raises(ValueError, match="per-gene values"):
        sl.metrics.perturbation_scores(p, r, c, centroid=np.zeros(3))
    with pytest.raises(TypeError, match="pair"):
        sl.metrics.perturbation_scores(p, r, c, others={"x": c})
    with pytest.raises(ValueError, match="wasserstein_method"):
        sl.metrics.perturbation_scores(p, r, c, wasserstein_method="fast")


def test_energy_distance_unbiased_is_comparable_across_sizes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    small, big = X[:20], X[20:]
    assert sl.metrics.energy_distance(small, big) > 0.05  # the V-statistic's bias at 20 cells
    assert abs(sl.metrics.energy_distance(small, big, unbiased=True)) < 0.05
    Y = X + 1.0
    v, u = sl.metrics.energy_distance(X, Y), sl.metrics.energy_distance(X, Y, unbiased=True)
    assert 0 < u < v and u == pytest.approx(v, rel=0.05)
