"""Distances between two sets of cells and agreement scores between per-gene summaries: arrays in, floats out.

Every function takes dense ``(n_cells, n_features)`` float arrays (cells in rows) and returns a float.
They are the kernels behind :mod:`sc_llm.metrics`' generative scores; the definitions and references are in
each docstring. Heavy imports (POT) happen inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

EXACT_OT_MAX_PAIRS = 4_000_000
"""Exact optimal transport (POT's network simplex) up to this many cell pairs; sliced beyond."""


def _check_pair(X: np.ndarray, Y: np.ndarray, min_cells: int = 1) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        msg = f"Both sets need the same features (columns); got shapes {X.shape} and {Y.shape}."
        raise ValueError(msg)
    if len(X) < min_cells or len(Y) < min_cells:
        msg = f"Need at least {min_cells} cell(s) in each set; got {len(X)} and {len(Y)}."
        raise ValueError(msg)
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        msg = "The cells contain NaN or infinite values."
        raise ValueError(msg)
    return X, Y


def energy_distance(X: np.ndarray, Y: np.ndarray, *, unbiased: bool = False) -> float:
    r"""Energy distance between the samples ``X`` and ``Y`` (Székely & Rizzo).

    .. math::
        E(X, Y) = 2\,\overline{\lVert x - y\rVert} - \overline{\lVert x - x'\rVert}
        - \overline{\lVert y - y'\rVert}

    with Euclidean norms. ``unbiased=False`` averages over all pairs (V-statistics, so :math:`E(X, X) = 0`; the
    square of :func:`scipy.stats.energy_distance` in one dimension, non-negative). Its within-set means count
    each cell's zero distance to itself, so for two samples of one distribution it is about
    :math:`\overline{\lVert x - x'\rVert} / m + \overline{\lVert y - y'\rVert} / n` rather than 0: a bias that
    grows as the samples shrink. ``unbiased=True`` leaves the self-pairs out of the within-set means
    (U-statistics): an unbiased estimate of the population energy distance, comparable between samples of
    different sizes (it can be slightly negative), which is what comparisons of predicted populations of
    different sizes need (e.g. with a split-half positive control).

    Reference: Székely, G. J. & Rizzo, M. L. "Energy statistics: a class of statistics based on distances",
    J. Stat. Plan. Inference 143, 1249–1272 (2013). (pertpy's E-distance uses squared norms instead.)
    """
    X, Y = _check_pair(X, Y, min_cells=2 if unbiased else 1)
    xy = cdist(X, Y).mean()
    if not unbiased:
        return float(max(2.0 * xy - cdist(X, X).mean() - cdist(Y, Y).mean(), 0.0))
    m, n = len(X), len(Y)
    xx = cdist(X, X).sum() / (m * (m - 1))
    yy = cdist(Y, Y).sum() / (n * (n - 1))
    return float(2.0 * xy - xx - yy)


def median_bandwidth(X: np.ndarray, Y: np.ndarray) -> float:
    """Median heuristic: the median pairwise Euclidean distance over the pooled, distinct cells of ``X`` and ``Y``."""
    Z = np.vstack([X, Y])
    d = cdist(Z, Z)
    d = d[np.triu_indices(len(Z), k=1)]
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def mmd2(X: np.ndarray, Y: np.ndarray, *, scales: Sequence[float] = (0.5, 1.0, 2.0), unbiased: bool = True) -> float:
    r"""Squared maximum mean discrepancy with a sum of RBF kernels (Gretton et al. 2012).

    .. math::
        \mathrm{MMD}^2_u = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i, x_j) + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i, y_j)
        - \frac{2}{mn}\sum_{i,j} k(x_i, y_j)

    with :math:`k(a, b) = \sum_s \exp(-\lVert a - b\rVert^2 / (2 (s\,\sigma)^2))`, :math:`\sigma` the median
    pairwise distance of the pooled cells (median heuristic) and :math:`s` in ``scales``. ``unbiased=True``
    is Gretton's unbiased estimator (it can be slightly negative, and is only 0 in expectation for equal
    distributions); ``unbiased=False`` keeps the diagonal terms (the V-statistic, exactly 0 for ``X`` vs ``X``).

    Reference: Gretton, A. et al. "A kernel two-sample test", JMLR 13, 723–773 (2012).
    """
    X, Y = _check_pair(X, Y, min_cells=2 if unbiased else 1)
    sigma = median_bandwidth(X, Y)
    dxx, dyy, dxy = (cdist(A, B, "sqeuclidean") for A, B in ((X, X), (Y, Y), (X, Y)))

    def k(d):
        return sum(np.exp(-d / (2.0 * (s * sigma) ** 2)) for s in scales)

    kxx, kyy, kxy = k(dxx), k(dyy), k(dxy)
    m, n = len(X), len(Y)
    if unbiased:
        term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    else:
        term_x, term_y = kxx.mean(), kyy.mean()
    return float(term_x + term_y - 2.0 * kxy.mean())


def wasserstein(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    p: int = 2,
    method: str = "auto",
    n_projections: int = 200,
    seed: int = 0,
) -> tuple[float, str]:
    r"""``p``-Wasserstein distance between the empirical distributions of ``X`` and ``Y`` (uniform weights).

    .. math:: W_p(X, Y) = \Big(\min_{\gamma \in \Pi(X, Y)} \sum_{ij} \gamma_{ij} \lVert x_i - y_j\rVert^p\Big)^{1/p}

    ``method='exact'`` solves the transport problem with POT's network simplex (``ot.emd2``);
    ``'sliced'`` averages one-dimensional distances over ``n_projections`` random directions
    (``ot.sliced_wasserstein_distance``, seeded), an approximation that is a lower bound of the exact value
    for ``p=2``; ``'auto'`` is exact up to :data:`EXACT_OT_MAX_PAIRS` cell pairs and sliced beyond.

    References: Villani, C. *Optimal transport: old and new* (2009); Flamary, R. et al. "POT: Python Optimal
    Transport", JMLR 22, 1–8 (2021); Bonneel, N. et al. "Sliced and Radon Wasserstein barycenters of
    measures", J. Math. Imaging Vis. 51, 22–45 (2015).

    Returns
    -------
    ``(distance, method used)`` with the method ``'exact'`` or ``'sliced'``.
    """
    from .base.deps import import_optional

    ot = import_optional("ot", "perturb", package="POT")
    X, Y = _check_pair(X, Y)
    if p < 1:
        msg = f"`p` must be ≥ 1, got {p}."
        raise ValueError(msg)
    if method == "auto":
        method = "exact" if len(X) * len(Y) <= EXACT_OT_MAX_PAIRS else "sliced"
    if method == "exact":
        M = cdist(X, Y) ** p
        a = np.full(len(X), 1.0 / len(X))
        b = np.full(len(Y), 1.0 / len(Y))
        cost = float(ot.emd2(a, b, M, numItermax=10_000_000))
        return max(cost, 0.0) ** (1.0 / p), "exact"
    if method == "sliced":
        value = ot.sliced_wasserstein_distance(X, Y, n_projections=n_projections, p=p, seed=seed)
        return float(value), "sliced"
    msg = f"`method` must be 'auto', 'exact' or 'sliced', got {method!r}."
    raise ValueError(msg)


def frechet_from_moments(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    r"""Fréchet distance between the Gaussians :math:`N(\mu_1, \Sigma_1)` and :math:`N(\mu_2, \Sigma_2)`.

    .. math::
        d^2 = \lVert\mu_1 - \mu_2\rVert^2
        + \operatorname{tr}\big(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2}\big)

    (the squared 2-Wasserstein distance between the Gaussians; the quantity FID reports).
    Reference: Dowson, D. C. & Landau, B. V. J. Multivar. Anal. 12, 450–455 (1982).
    """
    from scipy import linalg

    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    cov1 = np.atleast_2d(np.asarray(cov1, dtype=np.float64))
    cov2 = np.atleast_2d(np.asarray(cov2, dtype=np.float64))
    root = linalg.sqrtm(cov1 @ cov2)
    if not np.all(np.isfinite(root)):  # singular product: regularise as FID implementations do
        eps = 1e-6 * np.eye(len(cov1))
        root = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    root = np.real(root)
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root)
    return float(max(value, 0.0))


def frechet_distance(X: np.ndarray, Y: np.ndarray) -> float:
    r"""Fréchet distance between Gaussians fitted to ``X`` and ``Y`` (sample means, covariances with ``n - 1``).

    On a foundation model's embeddings of real and generated cells this is C2S-Scale's scFID (scGPT
    embeddings), after the FID of Heusel, M. et al. "GANs trained by a two time-scale update rule converge
    to a local Nash equilibrium", NeurIPS (2017). See :func:`frechet_from_moments` for the formula.
    """
    X, Y = _check_pair(X, Y, min_cells=2)
    return frechet_from_moments(X.mean(0), np.cov(X, rowvar=False), Y.mean(0), np.cov(Y, rowvar=False))


def r2_means(pred_mean: np.ndarray, real_mean: np.ndarray) -> float:
    r"""Squared Pearson correlation of per-gene means: scGen's "R²" of predicted vs real cells.

    :math:`r^2` with :math:`r = \operatorname{corr}(\bar x^{\text{pred}}_g, \bar x^{\text{real}}_g)` over genes
    :math:`g`. Reference: Lotfollahi, M., Wolf, F. A. & Theis, F. J. "scGen predicts single-cell perturbation
    responses", Nat. Methods 16, 715–721 (2019). Constant inputs give ``nan``.
    """
    r = pearson(pred_mean, real_mean)
    return r * r


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors (``nan`` when either is constant or has fewer than two entries)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        msg = f"Vectors of different lengths: {a.shape} and {b.shape}."
        raise ValueError(msg)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def pearson_delta(pred_mean: np.ndarray, real_mean: np.ndarray, control_mean: np.ndarray) -> float:
    r"""Pearson r of mean deltas: predicted − control vs real − control, per gene.

    .. math::
        r = \operatorname{corr}(\bar x^{\text{pred}} - \bar x^{\text{ctrl}},
        \bar x^{\text{real}} - \bar x^{\text{ctrl}})

    The convention of GEARS (Roohani et al., Nat. Biotechnol. 2024) and scGPT (Cui et al., Nat. Methods 2024)
    for perturbation prediction: it ignores the part of expression shared with control, so predicting the
    control cells scores ``nan`` (no delta) rather than a flattering value.
    """
    control_mean = np.asarray(control_mean, dtype=np.float64)
    return pearson(np.asarray(pred_mean) - control_mean, np.asarray(real_mean) - control_mean)


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    r"""Kendall's :math:`\tau_b` between two per-gene vectors (e.g. the mean deltas of a gene program).

    :math:`\tau_b = (n_c - n_d) / \sqrt{(n_0 - n_1)(n_0 - n_2)}` over gene pairs (concordant :math:`n_c`,
    discordant :math:`n_d`, ties in either vector :math:`n_1, n_2`). C2S-Scale scores gene programs this way.
    Reference: Kendall, M. G. "The treatment of ties in ranking problems", Biometrika 33, 239–251 (1945).
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        msg = f"Vectors of different lengths: {a.shape} and {b.shape}."
        raise ValueError(msg)
    if len(a) < 2:
        return float("nan")
    return float(stats.kendalltau(a, b, variant="b").statistic)


def wilcoxon_z(X1: np.ndarray, X0: np.ndarray) -> np.ndarray:
    """Per-gene Wilcoxon rank-sum z-scores of group 1 (``X1``) vs group 0 (``X0``), scanpy's ``'wilcoxon'`` scores.

    Ranks with ties averaged, no tie correction of the variance (scanpy's default): ``z = (R1 - n1 (n + 1) / 2)
    / sqrt(n1 n0 (n + 1) / 12)``, positive where group 1 is higher. Reference: Wilcoxon, F. Biometrics
    Bulletin 1, 80–83 (1945); Mann, H. B. & Whitney, D. R. Ann. Math. Stat. 18, 50–60 (1947).
    """
    from scipy import stats

    X1, X0 = _check_pair(X1, X0)
    n1, n0 = len(X1), len(X0)
    ranks = stats.rankdata(np.vstack([X1, X0]), axis=0)
    r1 = ranks[:n1].sum(0)
    n = n1 + n0
    return (r1 - n1 * (n + 1) / 2.0) / np.sqrt(n1 * n0 * (n + 1) / 12.0)


def top_de_genes(X1: np.ndarray, X0: np.ndarray, n_de: int) -> np.ndarray:
    """Indices of the ``n_de`` genes with the largest absolute Wilcoxon z-score (:func:`wilcoxon_z`), strongest first.

    Ties keep the column order. Both directions count (scGen's tutorial takes the top of scanpy's ranking,
    i.e. the up-regulated genes; for IFN-β the strongest changes are up-regulations either way).
    """
    z = wilcoxon_z(X1, X0)
    order = np.argsort(-np.abs(z), kind="stable")
    return order[: min(n_de, len(order))]
