"""``sl.metrics.perturbation_scores``: every generative score of predicted vs real perturbed cells at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._utils._validation import check_count
from ..core import distances as D
from ._generative import _gene_index, _matrices, _matrix, check_de_cells

SCORE_NAMES = (
    "r2_mean_all",
    "r2_mean_de",
    "pearson_delta_all",
    "pearson_delta_de",
    "kendall_tau_de",
    "energy_distance",
    "mmd2",
    "wasserstein",
    "frechet",
)
"""Numeric keys of :func:`perturbation_scores`' result, in table order."""

HIGHER_IS_BETTER = {name: name.startswith(("r2", "pearson", "kendall")) for name in SCORE_NAMES}


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
    - ``kendall_tau_de``: Kendall's τ_b of the mean deltas over the DEGs, the gene program.

    Distribution distances between the predicted and real cells (lower is better): ``energy_distance``,
    ``mmd2`` (unbiased, RBF at 0.5, 1, 2 × the median distance), ``wasserstein`` (W2; exact optimal
    transport with POT when the sizes allow, sliced otherwise: ``wasserstein_method`` in the result says
    which) and ``frechet`` (Fréchet distance of fitted Gaussians; scFID on scGPT embeddings). They are
    computed in ``.obsm[use_rep]`` when given (e.g. ``'X_scgpt'``), else in the first ``n_comps``
    principal components of the real and control cells (the predicted cells projected into them), or on
    all genes with ``n_comps=None``. Definitions and references: :mod:`sc_llm.core.distances`.

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
    wasserstein_method
        ``'auto'``, ``'exact'`` or ``'sliced'``.
    seed
        Seed of the PCA and of sliced Wasserstein projections.

    Returns
    -------
    A dict with the scores above, ``'wasserstein_method'``, ``'space'`` (``'pca50'``, ``'genes'`` or the
    ``use_rep`` key) and the cell and DEG counts ``'n_pred'``, ``'n_real'``, ``'n_control'``, ``'n_de'``.
    """
    n_de = check_count(n_de, "n_de")
    n_comps = check_count(n_comps, "n_comps", allow_none=True)
    whats = ["predicted cells", "real cells", "control cells"]
    (P, R, C), names = _matrices(pred, real, control, layer=layer, use_raw=use_raw, whats=whats)
    if len(P) < 2:
        msg = f"Need at least 2 predicted cells to compare distributions; got {len(P)}."
        raise ValueError(msg)
    if de_genes is None:
        check_de_cells(len(R), len(C))
        de = D.top_de_genes(R, C, n_de)
    else:
        de = _gene_index(de_genes, names, P.shape[1])
    Ps, Rs, space = _space(pred, real, P, R, C, use_rep=use_rep, n_comps=n_comps, seed=seed)
    return score_arrays(P, R, C, de, Ps, Rs, space=space, wasserstein_method=wasserstein_method, seed=seed)


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
) -> dict[str, Any]:
    """:func:`perturbation_scores` on resolved arrays.

    ``P, R, C``: expression of predicted, real and control cells; ``de``: DEG column indices; ``Ps, Rs``: the
    predicted and real cells in the space of the distances (named ``space``).
    """
    mp, mr, mc = P.mean(0), R.mean(0), C.mean(0)
    out: dict[str, Any] = {
        "r2_mean_all": D.r2_means(mp, mr),
        "r2_mean_de": D.r2_means(mp[de], mr[de]),
        "pearson_delta_all": D.pearson_delta(mp, mr, mc),
        "pearson_delta_de": D.pearson_delta(mp[de], mr[de], mc[de]),
        "kendall_tau_de": D.kendall_tau(mp[de] - mc[de], mr[de] - mc[de]),
    }
    w, used = D.wasserstein(Ps, Rs, method=wasserstein_method, seed=seed)
    out |= {
        "energy_distance": D.energy_distance(Ps, Rs),
        "mmd2": D.mmd2(Ps, Rs),
        "wasserstein": w,
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
