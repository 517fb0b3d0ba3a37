"""``sl.pl.cells_with_real``: predicted or generated cells embedded together with real ones."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._utils._anndata import get_matrix, get_modality
from .._utils._docs import doc_params
from ._base import category_colors, default_palette, finish_figure, plot_docs

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REAL_COLOR = "#bdc3c7"


def _dense(X: Any) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float32)


def aligned_matrices(
    cells: AnnData, real: AnnData, *, layer: str | None, use_raw: bool | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(cells' expression, real expression, what was read of real)`` over the same genes in the same order."""
    Xr, var, source = get_matrix(real, layer=layer, use_raw=use_raw)
    genes, mine = pd.Index(var.index.astype(str)), pd.Index(cells.var_names.astype(str))
    if not (genes.is_unique and mine.is_unique and genes.sort_values().equals(mine.sort_values())):
        missing, extra = genes.difference(mine), mine.difference(genes)
        msg = (
            f"The cells and the real cells' `{source}` have different genes ({len(missing)} of the real genes "
            f"missing, e.g. {list(missing[:3])}; {len(extra)} others, e.g. {list(extra[:3])}). Embed them over the "
            "same genes: subset both to their common genes (`cells[:, genes]`, `real[:, genes]`), or predict over "
            "the real cells' genes."
        )
        raise ValueError(msg)
    if cells.X is None:
        msg = "The cells have no `.X`; pass the AnnData `sl.tl.perturb` or `sl.tl.generate_cells` returned."
        raise ValueError(msg)
    Xc = _dense(cells.X)[:, mine.get_indexer(genes)]
    return Xc, _dense(Xr), source


def embed_with_real(
    Xc: np.ndarray, Xr: np.ndarray, *, basis: str, n_comps: int, n_neighbors: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """2-d coordinates of the cells and of the real cells, and the axis labels.

    ``'pca'``: PCA fitted on the real cells, the cells projected onto it. ``'umap'``: scanpy's neighbours and
    UMAP on all cells together, in that PCA space.
    """
    from sklearn.decomposition import PCA

    n = min(n_comps, Xr.shape[0] - 1, Xr.shape[1])
    if n < 2:
        msg = f"Too few real cells or genes for a PCA ({Xr.shape[0]} cells × {Xr.shape[1]} genes)."
        raise ValueError(msg)
    pca = PCA(n_components=n, random_state=seed).fit(Xr)
    Zr, Zc = pca.transform(Xr), pca.transform(Xc)
    if basis == "pca":
        share = 100 * pca.explained_variance_ratio_
        return Zc[:, :2], Zr[:, :2], [f"PC{i + 1} ({share[i]:.1f}% of the real cells' variance)" for i in range(2)]
    import anndata as ad
    import scanpy as sc

    joint = ad.AnnData(
        obsm={"X_pca": np.concatenate([Zr, Zc]).astype(np.float32)},
        obs=pd.DataFrame(index=np.arange(len(Zr) + len(Zc)).astype(str)),
    )
    sc.pp.neighbors(joint, use_rep="X_pca", n_neighbors=min(n_neighbors, joint.n_obs - 1), random_state=seed)
    sc.tl.umap(joint, random_state=seed)
    U = joint.obsm["X_umap"]
    return U[len(Zr) :], U[: len(Zr)], ["UMAP1", "UMAP2"]


def _checked_colors(cells: AnnData, real: AnnData, color: str | Sequence[str] | None) -> list[str]:
    colors = [] if color is None else [color] if isinstance(color, str) else list(color)
    for c in colors:
        where = [name for name, a in (("the cells", cells), ("the real cells", real)) if c not in a.obs]
        if where:
            msg = f"`{c}` is not an `.obs` column of {' and '.join(where)}; `color` names columns both have."
            raise KeyError(msg)
    return colors


def _scatter(ax: Axes, Z: np.ndarray, values: np.ndarray, colors: dict[str, str], *, size: float, marker: str, **kw):
    for value, col in colors.items():
        rows = values == value
        if rows.any():
            ax.scatter(Z[rows, 0], Z[rows, 1], s=size, c=col, marker=marker, plotnonfinite=True, **kw)


def _panel(ax, Zc, Zr, cell_values, real_values, colors, *, size, title, axis_labels, markers: str = "") -> None:
    """One scatter panel; ``markers`` names the cells shown in a legend of the two markers (none when empty)."""
    from matplotlib.lines import Line2D

    _scatter(ax, Zr, real_values, colors, size=size, marker="o", alpha=0.6, linewidths=0)
    _scatter(ax, Zc, cell_values, colors, size=size * 1.8, marker="^", edgecolors="#1b2631", linewidths=0.3)
    shown = [v for v in colors if (v == real_values).any() or (v == cell_values).any()]
    handles = [Line2D([], [], marker="s", linestyle="", color=colors[v], label=v, markersize=6) for v in shown]
    if markers:
        handles += [
            Line2D([], [], marker="o", linestyle="", color="#7f8c8d", label="real cells", markersize=4),
            Line2D([], [], marker="^", linestyle="", color="#7f8c8d", markeredgecolor="#1b2631", label=markers),
        ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    ax.set_xlabel(axis_labels[0], fontsize="small")
    ax.set_ylabel(axis_labels[1], fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize="medium")


@doc_params(**plot_docs("cells_with_real"))
def cells_with_real(
    adata: AnnData,
    *,
    real: AnnData,
    basis: str = "pca",
    color: str | Sequence[str] | None = None,
    label: str | None = None,
    layer: str | None = None,
    use_raw: bool | None = None,
    n_comps: int = 30,
    n_neighbors: int = 15,
    size: float | None = None,
    seed: int = 0,
    ax: Axes | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Embed predicted or generated cells together with real cells, coloured by source (and by ``color``).

    For the cells :func:`sc_llm.tl.perturb` predicts or :func:`sc_llm.tl.generate_cells` writes: does each land
    among the real cells it should resemble? ``basis='pca'`` fits a PCA on the real cells only and projects the
    cells onto it (the real cells' axes, undistorted by the cells shown); ``'umap'`` runs scanpy's neighbours
    and UMAP on both together, in that PCA space. The first panel colours by source (real cells grey, the cells
    by ``label``), one more panel per column of ``color`` (e.g. the cell type), with the colours of
    ``real.uns[f'{color}_colors']`` when set. Real cells are dots, the cells shown triangles.

    Parameters
    ----------
    adata
        The predicted or generated cells (expression in ``.X``), e.g. the AnnData of :func:`sc_llm.tl.perturb`.
    real
        The real cells, over the same genes (in any order).
    basis
        ``'pca'`` (fitted on the real cells) or ``'umap'`` (a joint UMAP).
    color
        ``.obs`` column(s) of both objects to colour by in further panels (cell type, condition).
    label
        Name of the cells in the first panel; default their ``.obs['method']`` (as ``sl.tl.perturb`` writes) or
        ``'generated'``.
    layer
        Layer of ``real`` holding expression on the cells' scale.
    use_raw
        Read ``real.raw``; default when it exists and no ``layer`` is given (the rule of :func:`sc_llm.tl.perturb`).
    n_comps
        PCA components (the space of the UMAP).
    n_neighbors
        Neighbours of the UMAP graph.
    size
        Dot size; default from the number of cells, as scanpy's.
    seed
        Seed of the PCA and the UMAP.
    ax
        Axes to draw the source panel into, without ``color`` (a new figure when ``None``).
    mod
        Modality of both objects when they are MuData (default ``'rna'``).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    if basis not in ("pca", "umap"):
        msg = f"`basis` must be 'pca' or 'umap', got {basis!r}."
        raise ValueError(msg)
    cells, real = get_modality(adata, mod), get_modality(real, mod)
    colors = _checked_colors(cells, real, color)
    if ax is not None and colors:
        msg = f"`ax` holds one panel but {1 + len(colors)} were asked for; pass no `color`, or no `ax`."
        raise ValueError(msg)
    Xc, Xr, _ = aligned_matrices(cells, real, layer=layer, use_raw=use_raw)
    Zc, Zr, axis_labels = embed_with_real(Xc, Xr, basis=basis, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
    size = float(np.clip(120000 / (len(Zc) + len(Zr)), 3, 40)) if size is None else size
    if label is not None:
        names = np.full(cells.n_obs, label, dtype=object)
    else:
        names = (
            cells.obs["method"].astype(str).to_numpy()
            if "method" in cells.obs
            else np.full(cells.n_obs, "generated", dtype=object)
        )
    sources = list(dict.fromkeys(names))
    source_colors = {"real": REAL_COLOR, **dict(zip(sources, default_palette(len(sources)), strict=True))}
    if ax is None:
        fig, axes = plt.subplots(1, 1 + len(colors), figsize=(5.6 * (1 + len(colors)), 4.4), squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    where = "PCA fitted on the real cells" if basis == "pca" else "joint UMAP"
    shown = f"{sources[0]} cells" if len(sources) == 1 else "predicted cells"
    kw = {"size": size, "axis_labels": axis_labels}
    _panel(
        axes[0],
        Zc,
        Zr,
        names,
        np.full(len(Zr), "real", dtype=object),
        source_colors,
        title=f"source ({where})",
        markers=False,
        **kw,
    )
    for a, c in zip(axes[1:], colors, strict=True):
        cell_values, real_values = cells.obs[c].astype(str).to_numpy(), real.obs[c].astype(str).to_numpy()
        palette = category_colors(real, c, extra=list(cell_values))
        _panel(a, Zc, Zr, cell_values, real_values, palette, title=c, markers=shown, **kw)
    if ax is None:
        fig.tight_layout()
    return finish_figure(fig, axes, "cells_with_real", show=show, save=save, return_fig=return_fig)
