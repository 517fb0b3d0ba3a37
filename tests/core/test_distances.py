"""Generative metric kernels against independent computations (scipy, POT, closed forms) and their properties."""

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from sc_llm.core import distances as D


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 4)), rng.normal(0.5, 1.2, size=(25, 4))


def test_energy_distance_is_the_square_of_scipys_in_1d():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=40), rng.exponential(size=33)
    assert D.energy_distance(u, v) == pytest.approx(stats.energy_distance(u, v) ** 2, rel=1e-10)


def test_energy_distance_properties(xy):
    X, Y = xy
    assert D.energy_distance(X, X) == pytest.approx(0.0, abs=1e-12)
    assert D.energy_distance(X, Y) == pytest.approx(D.energy_distance(Y, X))
    assert D.energy_distance(X, Y) > 0
    assert D.energy_distance(X, Y + 3.0) > D.energy_distance(X, Y)


def _mmd_loops(X, Y, sigma, scales, unbiased):
    def k(a, b):
        d2 = float(((a - b) ** 2).sum())
        return sum(np.exp(-d2 / (2 * (s * sigma) ** 2)) for s in scales)

    m, n = len(X), len(Y)
    kxx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if not unbiased or i != j)
    kyy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if not unbiased or i != j)
    kxy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n))
    dx, dy = (m * (m - 1), n * (n - 1)) if unbiased else (m * m, n * n)
    return kxx / dx + kyy / dy - 2 * kxy / (m * n)


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_matches_explicit_sums(xy, unbiased):
    X, Y = xy[0][:12], xy[1][:9]
    Z = np.vstack([X, Y])
    sigma = np.median(cdist(Z, Z)[np.triu_indices(len(Z), 1)])
    expected = _mmd_loops(X, Y, sigma, (0.5, 1.0, 2.0), unbiased)
    assert D.mmd2(X, Y, unbiased=unbiased) == pytest.approx(expected, rel=1e-9)


def test_mmd2_properties(xy):
    X, Y = xy
    assert D.mmd2(X, X, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    assert D.mmd2(X, Y) == pytest.approx(D.mmd2(Y, X))
    rng = np.random.default_rng(5)
    same = D.mmd2(rng.normal(size=(200, 3)), rng.normal(size=(200, 3)))
    far = D.mmd2(rng.normal(size=(200, 3)), rng.normal(2.0, size=(200, 3)))
    assert abs(same) < 0.05 < far


def test_wasserstein_exact_matches_scipy_in_1d():
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=23), rng.normal(1.0, 2.0, size=31)
    value, method = D.wasserstein(u, v, p=1, method="exact")
    assert method == "exact"
    assert value == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-8)


def test_wasserstein_exact_matches_an_assignment_for_equal_sizes(xy):
    # with n = m and uniform weights, optimal transport is an optimal assignment (Birkhoff), solved here by scipy
    X, Y = xy[0][:20], xy[1][:20]
    C = cdist(X, Y, "sqeuclidean")
    rows, cols = linear_sum_assignment(C)
    value, _ = D.wasserstein(X, Y, p=2, method="exact")
    assert value == pytest.approx(np.sqrt(C[rows, cols].mean()), rel=1e-8)


def test_wasserstein_properties_and_sliced(xy):
    X, Y = xy
    assert D.wasserstein(X, X)[0] == pytest.approx(0.0, abs=1e-9)
    assert D.wasserstein(X, Y)[0] == pytest.approx(D.wasserstein(Y, X)[0])
    exact, m1 = D.wasserstein(X, Y, method="auto")
    sliced, m2 = D.wasserstein(X, Y, method="sliced", n_projections=500)
    assert (m1, m2) == ("exact", "sliced")
    assert 0 < sliced <= exact * 1.05  # sliced W2 is a lower bound of W2 (up to Monte Carlo error)
    with pytest.raises(ValueError, match="method"):
        D.wasserstein(X, Y, method="fast")


def test_wasserstein_auto_switches_to_sliced(monkeypatch, xy):
    monkeypatch.setattr(D, "EXACT_OT_MAX_PAIRS", 10)
    assert D.wasserstein(*xy)[1] == "sliced"


def test_frechet_closed_form_for_commuting_covariances():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert D.frechet_from_moments(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_pots_bures_wasserstein(xy):
    import ot.gaussian

    X, Y = xy
    ours = D.frechet_distance(X, Y)
    bw = ot.gaussian.bures_wasserstein_distance(X.mean(0), Y.mean(0), np.cov(X.T), np.cov(Y.T))
    assert ours == pytest.approx(float(bw) ** 2, rel=1e-6)
    assert D.frechet_distance(X, X) == pytest.approx(0.0, abs=1e-8)
    assert D.frechet_distance(X, Y) == pytest.approx(D.frechet_distance(Y, X), rel=1e-8)


def test_kendall_tau_matches_pair_counts():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=15), rng.normal(size=15)
    conc = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(15) for j in range(i + 1, 15))
    assert D.kendall_tau(a, b) == pytest.approx(conc / (15 * 14 / 2))
    assert D.kendall_tau(a, a) == pytest.approx(1.0)
    assert D.kendall_tau(a, -a) == pytest.approx(-1.0)


def test_r2_and_pearson_delta_match_scipy():
    rng = np.random.default_rng(4)
    p, r, c = rng.normal(size=50), rng.normal(size=50), rng.normal(size=50)
    assert D.r2_means(p, r) == pytest.approx(stats.pearsonr(p, r).statistic ** 2)
    assert D.pearson_delta(p, r, c) == pytest.approx(stats.pearsonr(p - c, r - c).statistic)
    assert np.isnan(D.pearson_delta(c, r, c))  # no predicted change: undefined, never flattering
    assert np.isnan(D.r2_means(np.ones(5), np.arange(5.0)))


def test_wilcoxon_z_matches_scanpy():
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    rng = np.random.default_rng(6)
    X1 = rng.poisson(2.0, size=(20, 12)).astype(float)
    X0 = rng.poisson(1.5, size=(25, 12)).astype(float)
    X1[:, 0] += 3
    obs = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 25}, index=[str(i) for i in range(45)])
    a = ad.AnnData(np.vstack([X1, X0]), obs=obs)
    sc.tl.rank_genes_groups(a, "g", groups=["a"], reference="b", method="wilcoxon")
    names = a.uns["rank_genes_groups"]["names"]["a"].astype(str)
    scores = a.uns["rank_genes_groups"]["scores"]["a"].astype(float)
    ref = pd.Series(scores, index=names).reindex(a.var_names).to_numpy()
    np.testing.assert_allclose(D.wilcoxon_z(X1, X0), ref, rtol=1e-5)
    assert D.top_de_genes(X1, X0, 3)[0] == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="same features"):
        D.energy_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        D.mmd2(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        D.frechet_distance(np.zeros((1, 2)), np.zeros((3, 2)))
