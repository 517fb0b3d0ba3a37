"""Scores of a predicted perturbation response from the 2025 debate on perturbation benchmarks: arrays in, floats out.

Next to :mod:`sc_llm.core.distances` (distribution distances and scGen/GEARS agreement), these kernels weight
genes by how differentially expressed they are, compare rankings instead of values, test whether a prediction
can be told apart from other groups' responses, and calibrate any score between a negative and a positive
control. Every function takes per-gene vectors (or cells × genes arrays where said) and returns a float.
"""

from __future__ import annotations

import numpy as np

from .distances import pearson


def deg_weights(z: np.ndarray) -> np.ndarray:
    r"""Per-gene weights from DEG scores: :math:`w_g = \big((|z_g| - \min|z|) / (\max|z| - \min|z|)\big)^2`.

    ``z`` are DEG test statistics of real perturbed vs control cells (e.g. :func:`~sc_llm.core.distances.wilcoxon_z`).
    Min–max scaled absolute scores, squared to make the weighting stronger, as in Mejia, G. et al. "Diversity by
    design: addressing mode collapse improves scRNA-seq perturbation modeling on well-calibrated metrics",
    arXiv:2506.22641 (2025). All-equal scores give equal weights (all zero scores: all ones).
    """
    a = np.abs(np.asarray(z, dtype=np.float64).ravel())
    a = np.nan_to_num(a, nan=0.0)
    span = a.max(initial=0.0) - a.min(initial=0.0)
    if span == 0:
        return np.ones_like(a)
    return ((a - a.min()) / span) ** 2


def weighted_mse(pred_mean: np.ndarray, real_mean: np.ndarray, weights: np.ndarray) -> float:
    r"""DEG-weighted mean squared error of per-gene means: :math:`\sum_g w_g (\hat\mu_g - \mu_g)^2 / \sum_g w_g`.

    With ``weights`` from :func:`deg_weights` this is the WMSE of Mejia et al. (2025): the error on the genes the
    perturbation changes, where a prediction of the control or of the average state cannot hide. Lower is better.
    """
    p, r, w = (np.asarray(v, dtype=np.float64).ravel() for v in (pred_mean, real_mean, weights))
    if not (p.shape == r.shape == w.shape):
        msg = f"Vectors of different lengths: {p.shape}, {r.shape}, {w.shape}."
        raise ValueError(msg)
    if w.sum() <= 0:
        return float("nan")
    return float(np.sum(w * (p - r) ** 2) / w.sum())


def weighted_r2_delta(
    pred_mean: np.ndarray, real_mean: np.ndarray, reference_mean: np.ndarray, weights: np.ndarray
) -> float:
    r"""Weighted coefficient of determination of mean deltas (predicted − reference vs real − reference).

    .. math::
        R^2_w(\Delta) = 1 - \frac{\sum_g w_g (\hat\delta_g - \delta_g)^2}{\sum_g w_g (\delta_g - \bar\delta_w)^2},
        \quad \bar\delta_w = \sum_g w_g \delta_g / \sum_g w_g

    (scikit-learn's ``r2_score`` with ``sample_weight``), Mejia et al. (2025)'s :math:`R^2_w(\Delta)`. Unlike a
    correlation it punishes a delta of the wrong size; a prediction with no delta scores
    :math:`1 - \sum w \delta^2 / \sum w (\delta - \bar\delta_w)^2 \le 0`. ``nan`` when the weighted real deltas
    are constant.
    """
    ref = np.asarray(reference_mean, dtype=np.float64).ravel()
    d_hat = np.asarray(pred_mean, dtype=np.float64).ravel() - ref
    d = np.asarray(real_mean, dtype=np.float64).ravel() - ref
    w = np.asarray(weights, dtype=np.float64).ravel()
    if not (d_hat.shape == d.shape == w.shape):
        msg = f"Vectors of different lengths: {d_hat.shape}, {d.shape}, {w.shape}."
        raise ValueError(msg)
    if w.sum() <= 0:
        return float("nan")
    centre = np.sum(w * d) / w.sum()
    ss_tot = np.sum(w * (d - centre) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum(w * (d_hat - d) ** 2) / ss_tot)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson r of the ranks (ties averaged); ``nan`` for a constant input.

    Reference: Spearman, C. "The proof and measurement of association between two things", Am. J. Psychol. 15,
    72–101 (1904). PerturBench (Wu et al., arXiv:2408.10609) argues for rank metrics beside RMSE.
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        msg = f"Vectors of different lengths: {a.shape} and {b.shape}."
        raise ValueError(msg)
    return pearson(stats.rankdata(a), stats.rankdata(b))


def de_overlap(pred_mean: np.ndarray, control_mean: np.ndarray, de_genes: np.ndarray) -> float:
    r"""Share of the real DEGs among the genes the prediction changes most (as many as there are DEGs).

    :math:`|\mathrm{top}_k(|\hat\mu - \mu_{ctrl}|) \cap \mathrm{DEG}| / k` with ``de_genes`` the ``k`` real DEGs
    (column indices, e.g. the top genes by Wilcoxon :math:`|z|` of real perturbed vs control cells) and the
    prediction's genes ranked by the size of their mean change; genes the prediction leaves unchanged are never
    among its top genes, so a prediction without a change scores 0. A rank-based score in the spirit of
    cell-eval's DE overlap (Arc Institute, Virtual Cell Challenge 2025) and scPerturBench's common DEGs, ranked
    on mean changes because a prediction's cells need not vary like real ones (a test on a prediction that
    shifts every cell would call every gene significant).
    """
    delta = np.abs(np.asarray(pred_mean, dtype=np.float64) - np.asarray(control_mean, dtype=np.float64)).ravel()
    de = np.unique(np.asarray(de_genes, dtype=np.int64))
    if len(de) == 0 or de.min() < 0 or de.max() >= len(delta):
        msg = f"`de_genes` must be column indices in [0, {len(delta)}), at least one."
        raise ValueError(msg)
    top = np.argsort(-delta, kind="stable")[: len(de)]
    top = top[delta[top] > 0]
    return float(len(np.intersect1d(top, de)) / len(de))


def discrimination_score(pred_effect: np.ndarray, real_effects: np.ndarray, own: int, metric: str = "l1") -> float:
    r"""Perturbation discrimination score: the predicted effect's rank among all groups' real effects.

    Is the prediction closer to its own group's real effect than to the others'?

    ``pred_effect`` is the predicted mean delta of one group (predicted − control mean, per gene), ``real_effects``
    the real mean deltas of all ``N`` groups (rows; row ``own`` is the group predicted). With ``r`` the number of
    groups whose real effect is strictly closer to the prediction than the own group's (``metric``: ``'l1'``,
    cell-eval's default, or ``'l2'``), the score is :math:`1 - r / N`: 1 when the own group is the closest, down to
    :math:`1/N` when it is the farthest. Arc Institute's cell-eval ``discrimination_score`` (Virtual Cell
    Challenge: Roohani, Y. H. et al. "Virtual Cell Challenge: toward a Turing test for the virtual cell",
    Cell (2025)); ties count in the prediction's favour.
    """
    E = np.atleast_2d(np.asarray(real_effects, dtype=np.float64))
    p = np.asarray(pred_effect, dtype=np.float64).ravel()
    if E.shape[1] != p.shape[0] or not 0 <= own < len(E):
        msg = f"`real_effects` must be groups × {p.shape[0]} genes with `own` a row index; got {E.shape}, {own}."
        raise ValueError(msg)
    if metric not in ("l1", "l2"):
        msg = f"`metric` must be 'l1' or 'l2', got {metric!r}."
        raise ValueError(msg)
    diff = E - p
    dist = np.abs(diff).sum(1) if metric == "l1" else np.sqrt((diff**2).sum(1))
    closer = int(np.sum(dist < dist[own]))
    return float(1.0 - closer / len(E))


def split_half(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``n`` cells into two halves (sizes ``n // 2`` and ``n - n // 2``): the positive control.

    One half of the real perturbed cells "predicts" the other: the score of a perfect model, up to sampling noise
    at half the cells (the technical-duplicate baseline of Mejia et al. 2025 and of "Deep learning-based genetic
    perturbation models do outperform uninformative baselines on well-calibrated metrics", bioRxiv
    10.1101/2025.10.20.683304, 2025).
    """
    if n < 4:
        msg = f"A split-half positive control needs at least 4 real perturbed cells; got {n}."
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def calibrate(score: float, negative: float, positive: float) -> float:
    r"""A score placed between a negative (0) and a positive (1) control: :math:`(s - s_-) / (s_+ - s_-)`.

    The same formula serves higher- and lower-is-better scores (the sign of :math:`s_+ - s_-` carries the
    direction): 0 is no better than the negative control, 1 as good as the positive one, below 0 worse than
    doing nothing. ``nan`` when a control is undefined or the two controls score the same.
    """
    s, neg, pos = float(score), float(negative), float(positive)
    if not (np.isfinite(s) and np.isfinite(neg) and np.isfinite(pos)) or pos == neg:
        return float("nan")
    return (s - neg) / (pos - neg)
