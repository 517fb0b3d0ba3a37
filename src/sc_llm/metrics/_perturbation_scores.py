"""``sl.metrics.perturbation_scores``: every generative score of predicted vs real perturbed cells at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._utils._validation import check_count
from ..core import distances as D
from ..core import response_scores as RS
from ._generative import _gene_index, _matrices, _matrix, check_de_cells

SCORE_NAMES = (
    "r2_mean_all",
    "r2_mean_de",
    "pearson_delta_all",
    "pearson_delta_de",
    "pearson_delta_centroid_de",
    "kendall_tau_de",
    "spearman_delta_de",
    "de_overlap",
    "wmse",
    "r2w_delta",
    "discrimination",
    "energy_distance",
    "mmd2",
    "wasserstein",
    "frechet",
)
"""Numeric keys of :func:`perturbation_scores`' result, in table order."""

HIGHER_IS_BETTER = {
    name: name not in ("wmse", "energy_distance", "mmd2", "wasserstein", "frechet") for name in SCORE_NAMES
}

WASSERSTEIN_METHODS = ("auto", "exact", "sliced")


def perturbation_scores(
    pred: Any,
    real: Any,
    control: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    n_de: int = 100,
    de_genes: Sequence | None = None,
    n_comps: int | None = 50,
    centroid: Any = None,
    others: Mapping[str, tuple[Any, Any]] | None = None,
    wasserstein_method: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Score predicted perturbed cells against the real ones, with the control cells as the reference point.

    Per-gene agreement (on expression, ``.X`` or ``layer``):

    - ``r2_mean_all``, ``r2_mean_de``: scGen's R², the squared Pearson r of per-gene means of predicted vs
      real cells, over all genes and over the top ``n_de`` DEGs (Wilcoxon, real perturbed vs control,
      largest ``|z|``);
    - ``pearson_delta_all``, ``pearson_delta_de``: Pearson r of mean deltas (predicted − control vs real −
      control), GEARS' and scGPT's convention (``nan`` for a prediction with no delta);
    - ``pearson_delta_centroid_de``: the same against ``centroid`` instead of control (Systema: what a method
      predicts beyond the average perturbed state; ``nan`` without ``centroid``);
    - ``kendall_tau_de``, ``spearman_delta_de``: Kendall's τ_b and Spearman's ρ of the mean deltas over the
      DEGs (rank scores: the gene program's order);
    - ``de_overlap``: share of the DEGs among the genes whose mean the prediction changes most (as many);
    - ``wmse``, ``r2w_delta``: DEG-weighted mean squared error of the means and weighted R² of the mean deltas
      (weights: squared min–max scaled ``|z|`` of every gene);
    - ``discrimination``: cell-eval's perturbation discrimination score against the real responses of the
      groups in ``others`` (``nan`` without them): 1 when the predicted mean delta is closer (L1) to this
      group's real delta than to any other group's.

    Distribution distances between the predicted and real cells (lower is better): ``energy_distance``
    (unbiased U-statistic, comparable between populations of different sizes), ``mmd2`` (unbiased, RBF at 0.5,
    1, 2 × the median distance), ``wasserstein`` (W2; exact optimal
    transport with POT, or its sliced estimate: ``wasserstein_method`` in the result says which; the two are
    on different scales) and ``frechet`` (Fréchet distance of fitted Gaussians; scFID on scGPT embeddings).
    They are computed in ``.obsm[use_rep]`` when given (e.g. ``'X_scgpt'``), else in the first ``n_comps``
    principal components of the real and control cells (the predicted cells projected into them), or on
    all genes with ``n_comps=None``. Definitions and references: :mod:`sc_llm.core.distances` and
    :mod:`sc_llm.core.response_scores`.

    Parameters
    ----------
    pred, real, control
        Predicted perturbed cells, real perturbed cells and real control cells (of the same cell type):
        AnnData objects over the same genes, or cells × genes arrays.
    use_rep
        ``.obsm`` key of an embedding present in ``pred`` and ``real`` for the distances.
    layer, use_raw
        Which expression matrix of AnnData inputs to score (as every tool reads it: ``layer``, else ``.raw``
        when present, else ``.X``).
    n_de
        Number of DEGs.
    de_genes
        DEGs to use instead of computing them (names for AnnData inputs, column indices for arrays).
    n_comps
        Principal components for the distances when ``use_rep`` is ``None``.
    centroid
        The reference of ``pearson_delta_centroid_de``: a per-gene vector, or cells (AnnData or array) whose mean
        is taken. For one perturbation across cell types, :func:`sc_llm.tl.compare_perturbation` passes the
        control mean plus the training cell types' mean response (the mean of ``'mean_shift'``'s prediction).
    others
        Other groups for ``discrimination``: ``{name: (real perturbed cells, control cells)}``, over the same genes.
    wasserstein_method
        ``'auto'`` (exact up to :data:`sc_llm.core.distances.EXACT_OT_MAX_PAIRS` cell pairs), ``'exact'`` or
        ``'sliced'``. To compare several predictions, use one method for all (``'exact'`` or ``'sliced'``).
    seed
        Seed of the PCA and of sliced Wasserstein projections.

    Returns
    -------
    A dict with the scores above, ``'wasserstein_method'``, ``'space'`` (``'pca50'``, ``'genes'`` or the
    ``use_rep`` key) and the cell and DEG counts ``'n_pred'``, ``'n_real'``, ``'n_control'``, ``'n_de'``.
    """
    n_de = check_count(n_de, "n_de")
    n_comps = check_count(n_comps, "n_comps", allow_none=True)
    check_wasserstein_method(wasserstein_method)
    whats = ["predicted cells", "real cells", "control cells"]
    (P, R, C), names = _matrices(pred, real, control, layer=layer, use_raw=use_raw, whats=whats)
    if len(P) < 2:
        msg = f"Need at least 2 predicted cells to compare distributions; got {len(P)}."
        raise ValueError(msg)
    check_de_cells(len(R), len(C))
    z = D.wilcoxon_z(R, C)
    de = np.argsort(-np.abs(z), kind="stable")[:n_de] if de_genes is None else _gene_index(de_genes, names, P.shape[1])
    ref = _centroid(centroid, P.shape[1], layer=layer, use_raw=use_raw)
    effects = None
    if others:
        effects = [R.mean(0) - C.mean(0)] + [
            _effect(pair, name, layer, use_raw, P.shape[1]) for name, pair in others.items()
        ]
    Ps, Rs, space = _space(pred, real, P, R, C, use_rep=use_rep, n_comps=n_comps, seed=seed)
    extra = {"weights": RS.deg_weights(z), "centroid": ref, "effects": None if effects is None else np.vstack(effects)}
    return score_arrays(P, R, C, de, Ps, Rs, space=space, wasserstein_method=wasserstein_method, seed=seed, **extra)


def check_wasserstein_method(method: str) -> None:
    """Refuse a Wasserstein estimator that is not one of :data:`WASSERSTEIN_METHODS`."""
    if method not in WASSERSTEIN_METHODS:
        msg = f"`wasserstein_method` must be one of {WASSERSTEIN_METHODS}, got {method!r}."
        raise ValueError(msg)


def _centroid(centroid: Any, n_genes: int, *, layer, use_raw) -> np.ndarray | None:
    if centroid is None:
        return None
    if hasattr(centroid, "obs_names") or np.ndim(centroid) == 2:
        centroid = _matrix(centroid, layer=layer, use_raw=use_raw, what="centroid cells").mean(0)
    ref = np.asarray(centroid, dtype=np.float64).ravel()
    if ref.shape != (n_genes,) or not np.all(np.isfinite(ref)):
        msg = f"`centroid` must be {n_genes} finite per-gene values (or cells over the same genes); got {ref.shape}."
        raise ValueError(msg)
    return ref


def _effect(pair: Any, name: str, layer, use_raw, n_genes: int) -> np.ndarray:
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        msg = f"`others[{name!r}]` must be a (real perturbed cells, control cells) pair."
        raise TypeError(msg)
    (R, C), _ = _matrices(*pair, layer=layer, use_raw=use_raw, whats=[f"{name} real cells", f"{name} control cells"])
    if R.shape[1] != n_genes or not len(R) or not len(C):
        msg = f"`others[{name!r}]` must hold cells over the same {n_genes} genes as the prediction."
        raise ValueError(msg)
    return R.mean(0) - C.mean(0)


def score_arrays(
    P: np.ndarray,
    R: np.ndarray,
    C: np.ndarray,
    de: np.ndarray,
    Ps: np.ndarray,
    Rs: np.ndarray,
    *,
    space: str,
    wasserstein_method: str = "auto",
    seed: int = 0,
    weights: np.ndarray | None = None,
    centroid: np.ndarray | None = None,
    effects: np.ndarray | None = None,
) -> dict[str, Any]:
    """:func:`perturbation_scores` on resolved arrays.

    ``P, R, C``: expression of predicted, real and control cells; ``de``: DEG column indices; ``Ps, Rs``: the
    predicted and real cells in the space of the distances (named ``space``); ``weights``: per-gene DEG weights
    (default from the Wilcoxon z of ``R`` vs ``C``); ``centroid``: the reference mean of
    ``pearson_delta_centroid_de``; ``effects``: real mean deltas of the groups of ``discrimination``, this one
    first (row 0).
    """
    mp, mr, mc = P.mean(0), R.mean(0), C.mean(0)
    w = RS.deg_weights(D.wilcoxon_z(R, C)) if weights is None else weights
    out: dict[str, Any] = {
        "r2_mean_all": D.r2_means(mp, mr),
        "r2_mean_de": D.r2_means(mp[de], mr[de]),
        "pearson_delta_all": D.pearson_delta(mp, mr, mc),
        "pearson_delta_de": D.pearson_delta(mp[de], mr[de], mc[de]),
        "pearson_delta_centroid_de": np.nan if centroid is None else D.pearson_delta(mp[de], mr[de], centroid[de]),
        "kendall_tau_de": D.kendall_tau(mp[de] - mc[de], mr[de] - mc[de]),
        "spearman_delta_de": RS.spearman(mp[de] - mc[de], mr[de] - mc[de]),
        "de_overlap": RS.de_overlap(mp, mc, de),
        "wmse": RS.weighted_mse(mp, mr, w),
        "r2w_delta": RS.weighted_r2_delta(mp, mr, mc, w),
        "discrimination": np.nan if effects is None else RS.discrimination_score(mp - mc, effects, 0),
    }
    w2, used = D.wasserstein(Ps, Rs, method=wasserstein_method, seed=seed)
    out |= {
        "energy_distance": D.energy_distance(Ps, Rs, unbiased=True),
        "mmd2": D.mmd2(Ps, Rs),
        "wasserstein": w2,
        "frechet": D.frechet_distance(Ps, Rs),
        "wasserstein_method": used,
        "space": space,
        "n_pred": len(P),
        "n_real": len(R),
        "n_control": len(C),
        "n_de": len(de),
    }
    return out


def pca_space(R: np.ndarray, C: np.ndarray, n_comps: int, seed: int):
    """A PCA fitted on the real perturbed and control cells (the reference space of the distances) and its name."""
    from sklearn.decomposition import PCA

    ref = np.vstack([R, C])
    k = int(min(n_comps, ref.shape[0] - 1, ref.shape[1]))
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(ref), f"pca{k}"


def _space(pred, real, P, R, C, *, use_rep, n_comps, seed) -> tuple[np.ndarray, np.ndarray, str]:
    """The cells in which distances are measured: an embedding, principal components, or the genes."""
    if use_rep is not None:
        return _matrix(pred, use_rep=use_rep, what="predicted cells"), _matrix(real, use_rep=use_rep), use_rep
    if n_comps is None:
        return P, R, "genes"
    pca, space = pca_space(R, C, n_comps, seed)
    return pca.transform(P), pca.transform(R), space
