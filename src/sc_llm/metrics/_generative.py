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
from ..core import distances as D

MIN_DE_CELLS = 3


def _matrix(data: Any, *, use_rep: str | None = None, layer: str | None = None, what: str = "cells") -> np.ndarray:
    """Dense float64 cells × features of an array or an AnnData (``.obsm[use_rep]``, ``.layers[layer]`` or ``.X``)."""
    if hasattr(data, "obs_names"):
        if use_rep is not None and layer is not None:
            msg = "Pass either `use_rep` or `layer`, not both."
            raise ValueError(msg)
        if use_rep is not None:
            if use_rep not in data.obsm:
                msg = f"`{use_rep}` not in `.obsm` of the {what} (available: {list(data.obsm)}); compute it first."
                raise KeyError(msg)
            X = data.obsm[use_rep]
        else:
            X, _, _ = get_matrix(data, layer=layer, use_raw=False)
    else:
        X = data
    X = X.toarray() if sparse.issparse(X) else np.asarray(X)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        msg = f"The {what} must be a 2-D cells × features matrix; got shape {X.shape}."
        raise ValueError(msg)
    if not np.all(np.isfinite(X)):
        msg = f"The {what} contain NaN or infinite values."
        raise ValueError(msg)
    return X


def _same_genes(*datas: Any) -> np.ndarray | None:
    """Gene names shared by all AnnData inputs (checked equal, in order); ``None`` for arrays."""
    names = [np.asarray(d.var_names) for d in datas if hasattr(d, "var_names")]
    for other in names[1:]:
        if len(other) != len(names[0]) or not np.array_equal(other, names[0]):
            msg = "The AnnData inputs have different genes (`var_names`); subset them to the same genes, same order."
            raise ValueError(msg)
    return names[0] if names else None


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


def _means(*datas: Any, layer: str | None, genes: Sequence | None) -> list[np.ndarray]:
    names = _same_genes(*datas)
    mats = [_matrix(d, layer=layer) for d in datas]
    n = mats[0].shape[1]
    if any(m.shape[1] != n for m in mats):
        msg = f"The inputs have different numbers of genes: {[m.shape[1] for m in mats]}."
        raise ValueError(msg)
    if any(len(m) == 0 for m in mats):
        msg = "Every input needs at least one cell."
        raise ValueError(msg)
    idx = _gene_index(genes, names, n)
    return [m[:, idx].mean(0) for m in mats]


def r2_mean(pred: Any, real: Any, *, layer: str | None = None, genes: Sequence | None = None) -> float:
    """ScGen's R²: squared Pearson r between the per-gene means of predicted and real cells.

    ``genes`` restricts it (names for AnnData inputs, column indices for arrays), e.g. to the DEGs of
    :func:`de_genes`. See :func:`sc_llm.core.distances.r2_means` (Lotfollahi et al., Nat. Methods 2019).
    """
    p, r = _means(pred, real, layer=layer, genes=genes)
    return D.r2_means(p, r)


def pearson_delta(
    pred: Any, real: Any, control: Any, *, layer: str | None = None, genes: Sequence | None = None
) -> float:
    """Pearson r of mean deltas, (predicted − control) vs (real − control), per gene (GEARS, scGPT).

    ``nan`` when the prediction has no delta (e.g. the control baseline). See
    :func:`sc_llm.core.distances.pearson_delta`.
    """
    p, r, c = _means(pred, real, control, layer=layer, genes=genes)
    return D.pearson_delta(p, r, c)


def kendall_tau(
    pred: Any, real: Any, control: Any | None = None, *, layer: str | None = None, genes: Sequence | None = None
) -> float:
    """Kendall's τ_b over a gene program (``genes``) between predicted and real per-gene means.

    With ``control`` given, between mean deltas (predicted − control vs real − control), as C2S-Scale scores
    gene programs. See :func:`sc_llm.core.distances.kendall_tau` (Kendall, Biometrika 1945).
    """
    datas = (pred, real) if control is None else (pred, real, control)
    means = _means(*datas, layer=layer, genes=genes)
    if control is None:
        return D.kendall_tau(means[0], means[1])
    return D.kendall_tau(means[0] - means[2], means[1] - means[2])


def de_genes(real: Any, control: Any, *, n_de: int = 100, layer: str | None = None) -> np.ndarray:
    """The ``n_de`` genes most changed between real perturbed and control cells (Wilcoxon, largest ``|z|`` first).

    Returns gene names for AnnData inputs and column indices for arrays. Each group needs at least
    three cells. See :func:`sc_llm.core.distances.wilcoxon_z`.
    """
    names = _same_genes(real, control)
    X1, X0 = _matrix(real, layer=layer, what="real cells"), _matrix(control, layer=layer, what="control cells")
    if len(X1) < MIN_DE_CELLS or len(X0) < MIN_DE_CELLS:
        msg = (
            f"Too few cells for DEGs: {len(X1)} perturbed and {len(X0)} control; the Wilcoxon test needs at least "
            f"{MIN_DE_CELLS} of each."
        )
        raise ValueError(msg)
    if n_de < 1:
        msg = f"`n_de` must be positive, got {n_de}."
        raise ValueError(msg)
    idx = D.top_de_genes(X1, X0, n_de)
    return names[idx] if names is not None else idx


def energy_distance(x: Any, y: Any, *, use_rep: str | None = None, layer: str | None = None) -> float:
    """Energy distance between two sets of cells (Székely & Rizzo 2013).

    See :func:`sc_llm.core.distances.energy_distance`.
    """
    return D.energy_distance(_matrix(x, use_rep=use_rep, layer=layer), _matrix(y, use_rep=use_rep, layer=layer))


def mmd(
    x: Any,
    y: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    unbiased: bool = True,
) -> float:
    """MMD² with RBF kernels at ``scales`` × the median pairwise distance (Gretton et al. 2012).

    See :func:`sc_llm.core.distances.mmd2`.
    """
    X, Y = _matrix(x, use_rep=use_rep, layer=layer), _matrix(y, use_rep=use_rep, layer=layer)
    return D.mmd2(X, Y, scales=scales, unbiased=unbiased)


def wasserstein(
    x: Any,
    y: Any,
    *,
    use_rep: str | None = None,
    layer: str | None = None,
    p: int = 2,
    method: str = "auto",
    n_projections: int = 200,
    seed: int = 0,
    return_method: bool = False,
) -> float | tuple[float, str]:
    """Wasserstein-``p`` distance between two sets of cells: exact (POT) where sizes allow, sliced otherwise.

    ``return_method=True`` also returns ``'exact'`` or ``'sliced'``. See :func:`sc_llm.core.distances.wasserstein`.
    """
    X, Y = _matrix(x, use_rep=use_rep, layer=layer), _matrix(y, use_rep=use_rep, layer=layer)
    value, used = D.wasserstein(X, Y, p=p, method=method, n_projections=n_projections, seed=seed)
    return (value, used) if return_method else value


def frechet_distance(x: Any, y: Any, *, use_rep: str | None = None, layer: str | None = None) -> float:
    """Fréchet distance between Gaussians fitted to two sets of cells; scFID on scGPT embeddings.

    Compute scGPT embeddings with :func:`sc_llm.tl.embed` and pass ``use_rep='X_scgpt'`` for C2S-Scale's
    scFID. See :func:`sc_llm.core.distances.frechet_distance`.
    """
    return D.frechet_distance(_matrix(x, use_rep=use_rep, layer=layer), _matrix(y, use_rep=use_rep, layer=layer))
