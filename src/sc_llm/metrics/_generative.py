"""Scores for generated or predicted cells against real ones: per-gene agreement and distribution distances.

Each function takes arrays (cells × genes or cells × embedding dimensions) or AnnData objects (then
``layer=`` picks the matrix and ``use_rep=`` an ``.obsm`` embedding). The definitions and references are in
:mod:`sc_llm.core.distances`; :func:`perturbation_scores` returns all of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._utils._anndata import get_matrix
from .._utils._expression import check_expression
from .._utils._validation import check_count
from ..core import distances as D

MIN_DE_CELLS = 3


def _expression(data: Any, *, layer: str | None, use_raw: bool | None, what: str) -> tuple[np.ndarray, Any]:
    """``(dense float64 cells × genes, gene names or None)``: an AnnData's matrix by the one rule, or an array."""
    if hasattr(data, "obs_names"):
        X, var, source = get_matrix(data, layer=layer, use_raw=use_raw)
        check_expression(X, f"`{source}` of the {what}", obs_names=data.obs_names, var_names=var.index, counts="ignore")
        names = np.asarray(var.index)
    else:
        if layer is not None or use_raw:
            msg = f"`layer` / `use_raw` select a matrix of an AnnData; the {what} are an array."
            raise TypeError(msg)
        X, names = data, None
    return _dense(X, what), names


def _dense(X: Any, what: str) -> np.ndarray:
    X = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    if X.ndim != 2:
        msg = f"The {what} must be a 2-D cells × features matrix; got shape {X.shape}."
        raise ValueError(msg)
    if not np.all(np.isfinite(X)):
        msg = f"The {what} contain {int((~np.isfinite(X)).sum())} NaN or infinite values; fix or drop those cells."
        raise ValueError(msg)
    return X


def _matrix(
    data: Any, *, use_rep: str | None = None, layer: str | None = None, use_raw: bool | None = None, what="cells"
) -> np.ndarray:
    """Dense float64 cells × features: ``.obsm[use_rep]``, or the expression by :func:`_expression`."""
    if use_rep is None:
        return _expression(data, layer=layer, use_raw=use_raw, what=what)[0]
    if layer is not None or use_raw:
        msg = "Pass either `use_rep` (an embedding) or `layer` / `use_raw` (expression), not both."
        raise ValueError(msg)
    if not hasattr(data, "obsm"):
        msg = f"`use_rep={use_rep!r}` names an `.obsm` key, but the {what} are an array."
        raise TypeError(msg)
    if use_rep not in data.obsm:
        msg = f"`{use_rep}` not in `.obsm` of the {what} (available: {list(data.obsm)}); compute it first."
        raise KeyError(msg)
    return _dense(data.obsm[use_rep], what)


def _matrices(*datas: Any, layer=None, use_raw=None, use_rep=None, whats=None) -> tuple[list[np.ndarray], Any]:
    """The matrices of several inputs, checked to share their genes (names, order) or dimensions."""
    whats = whats or [f"cells of input {i + 1}" for i in range(len(datas))]
    if use_rep is not None:
        mats = [_matrix(d, use_rep=use_rep, what=w) for d, w in zip(datas, whats, strict=True)]
        names = None
    else:
        pairs = [_expression(d, layer=layer, use_raw=use_raw, what=w) for d, w in zip(datas, whats, strict=True)]
        mats, gene_names = [m for m, _ in pairs], [n for _, n in pairs if n is not None]
        for other in gene_names[1:]:
            if len(other) != len(gene_names[0]) or not np.array_equal(other, gene_names[0]):
                msg = (
                    "The AnnData inputs have different genes (`var_names` of the matrices read); subset them to the "
                    "same genes in the same order, e.g. `pred[:, real.var_names]`."
                )
                raise ValueError(msg)
        names = gene_names[0] if gene_names else None
    widths = [m.shape[1] for m in mats]
    if len(set(widths)) > 1:
        msg = f"The inputs have different numbers of {'dimensions' if use_rep else 'genes'}: {widths}."
        raise ValueError(msg)
    return mats, names


def _gene_index(genes: Sequence | None, names: np.ndarray | None, n: int) -> np.ndarray:
    if genes is None:
        return np.arange(n)
    genes = np.asarray(genes)
    if genes.dtype.kind in "iu":
        if genes.size and (genes.min() < 0 or genes.max() >= n):
            msg = f"Gene indices must lie in [0, {n})."
            raise IndexError(msg)
        return genes.astype(np.int64)
    if names is None:
        msg = "Gene names need AnnData inputs; with arrays pass integer column indices."
        raise TypeError(msg)
    idx = np.asarray(pd.Index(names).get_indexer(genes))
    if (idx < 0).any():
        msg = f"Genes not found: {list(genes[idx < 0][:5])}."
        raise KeyError(msg)
    return idx


def _means(*datas: Any, layer: str | None, use_raw: bool | None, genes: Sequence | None) -> list[np.ndarray]:
    mats, names = _matrices(*datas, layer=layer, use_raw=use_raw)
    if any(len(m) == 0 for m in mats):
        msg = "Every input needs at least one cell."
        raise ValueError(msg)
    idx = _gene_index(genes, names, mats[0].shape[1])
    return [m[:, idx].mean(0) for m in mats]


def r2_mean(
    pred: Any, real: Any, *, layer: str | None = None, use_raw: bool | None = None, genes: Sequence | None = None
) -> float:
    """ScGen's R²: squared Pearson r between the per-gene means of predicted and real cells.

    ``genes`` restricts it (names for AnnData inputs, column indices for arrays), e.g. to the DEGs of
    :func:`de_genes`. See :func:`sc_llm.core.distances.r2_means` (Lotfollahi et al., Nat. Methods 2019).
    Inputs are AnnData objects (expression read as every tool reads it: ``layer``, else ``.raw`` when present,
    else ``.X``; ``use_raw=False`` for ``.X``) over the same genes, or cells × genes arrays.
    """
    p, r = _means(pred, real, layer=layer, use_raw=use_raw, genes=genes)
    return D.r2_means(p, r)


def pearson_delta(
    pred: Any,
    real: Any,
    control: Any,
    *,
    layer: str | None = None,
    use_raw: bool | None = None,
    genes: Sequence | None = None,
) -> float:
    """Pearson r of mean deltas, (predicted − control) vs (real − control), per gene (GEARS, scGPT).

    ``nan`` when the prediction has no delta (e.g. the control baseline). Inputs as in :func:`r2_mean`. See
    :func:`sc_llm.core.distances.pearson_delta`.
    """
    p, r, c = _means(pred, real, control, layer=layer, use_raw=use_raw, genes=genes)
    return D.pearson_delta(p, r, c)


def kendall_tau(
    pred: Any,
    real: Any,
    control: Any | None = None,
    *,
    layer: str | None = None,
    use_raw: bool | None = None,
    genes: Sequence | None = None,
) -> float:
    """Kendall's τ_b over a gene program (``genes``) between predicted and real per-gene means.

    With ``control`` given, between mean deltas (predicted − control vs real − control), as C2S-Scale scores
    gene programs. Inputs as in :func:`r2_mean`. See :func:`sc_llm.core.distances.kendall_tau` (Kendall,
    Biometrika 1945).
    """
    datas = (pred, real) if control is None else (pred, real, control)
    means = _means(*datas, layer=layer, use_raw=use_raw, genes=genes)
    if control is None:
        return D.kendall_tau(means[0], means[1])
    return D.kendall_tau(means[0] - means[2], means[1] - means[2])


def de_genes(
    real: Any, control: Any, *, n_de: int = 100, layer: str | None = None, use_raw: bool | None = None
) -> np.ndarray:
    """The ``n_de`` genes most changed between real perturbed and control cells (Wilcoxon, largest ``|z|`` first).

    Returns gene names for AnnData inputs and column indices for arrays (inputs as in :func:`r2_mean`). Each
    group needs at least three cells. See :func:`sc_llm.core.distances.wilcoxon_z`.
    """
    n_de = check_count(n_de, "n_de")
    (X1, X0), names = _matrices(real, control, layer=layer, use_raw=use_raw, whats=["real cells", "control cells"])
    check_de_cells(len(X1), len(X0))
    idx = D.top_de_genes(X1, X0, n_de)
    return names[idx] if names is not None else idx


def check_de_cells(n_perturbed: int, n_control: int) -> None:
    """Refuse DEGs from fewer than ``MIN_DE_CELLS`` cells on either side."""
    if n_perturbed < MIN_DE_CELLS or n_control < MIN_DE_CELLS:
        msg = (
            f"Too few cells for DEGs: {n_perturbed} perturbed and {n_control} control; the Wilcoxon test needs at "
            f"least {MIN_DE_CELLS} of each."
        )
        raise ValueError(msg)


def _pair(x, y, *, use_rep, layer, use_raw) -> list[np.ndarray]:
    return _matrices(x, y, use_rep=use_rep, layer=layer, use_raw=use_raw, whats=["first cells", "second cells"])[0]


def energy_distance(
    x: Any,
    y: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    unbiased: bool = False,
) -> float:
    """Energy distance between two sets of cells (Székely & Rizzo 2013).

    On ``.obsm[use_rep]``, or on expression (inputs as in :func:`r2_mean`; AnnData inputs must share their
    genes). ``unbiased=True`` gives the U-statistic (what :func:`perturbation_scores` reports), comparable
    between sets of different sizes. See :func:`sc_llm.core.distances.energy_distance`.
    """
    return D.energy_distance(*_pair(x, y, use_rep=use_rep, layer=layer, use_raw=use_raw), unbiased=unbiased)


def mmd(
    x: Any,
    y: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    unbiased: bool = True,
) -> float:
    """MMD² with RBF kernels at ``scales`` × the median pairwise distance (Gretton et al. 2012).

    Inputs as in :func:`energy_distance`. See :func:`sc_llm.core.distances.mmd2`.
    """
    X, Y = _pair(x, y, use_rep=use_rep, layer=layer, use_raw=use_raw)
    return D.mmd2(X, Y, scales=scales, unbiased=unbiased)


def wasserstein(
    x: Any,
    y: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    p: int = 2,
    method: str = "auto",
    n_projections: int = 200,
    seed: int = 0,
    return_method: bool = False,
) -> float | tuple[float, str]:
    """Wasserstein-``p`` distance between two sets of cells: exact (POT) where sizes allow, sliced otherwise.

    Inputs as in :func:`energy_distance`. ``return_method=True`` also returns ``'exact'`` or ``'sliced'``
    (the two are on different scales: compare values of one method only). See
    :func:`sc_llm.core.distances.wasserstein`.
    """
    X, Y = _pair(x, y, use_rep=use_rep, layer=layer, use_raw=use_raw)
    value, used = D.wasserstein(X, Y, p=p, method=method, n_projections=n_projections, seed=seed)
    return (value, used) if return_method else value


def frechet_distance(
    x: Any, y: Any, *, use_rep: str | None = None, layer: str | None = None, use_raw: bool | None = None
) -> float:
    """Fréchet distance between Gaussians fitted to two sets of cells; scFID on scGPT embeddings.

    Compute scGPT embeddings with :func:`sc_llm.tl.embed` and pass ``use_rep='X_scgpt'`` for C2S-Scale's
    scFID. Inputs as in :func:`energy_distance`. See :func:`sc_llm.core.distances.frechet_distance`.
    """
    return D.frechet_distance(*_pair(x, y, use_rep=use_rep, layer=layer, use_raw=use_raw))
