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
    assert same["space"] == "genes" and same["energy_distance"] == pytest.approx(0.0, abs=1e-9)
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
