"""``sl.pl.perturbation`` (scGen's regression plot) and ``sl.pl.perturbation_comparison`` (the benchmark table)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._utils._anndata import get_modality
from .._utils._docs import doc_params
from ..core.distances import r2_means, top_de_genes
from ..metrics._generative import MIN_DE_CELLS, _matrix
from ..metrics._perturbation_scores import HIGHER_IS_BETTER, SCORE_NAMES
from ._base import finish_figure, plot_docs, style_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SCORE_LABELS = {
    "r2_mean_all": "R² of means, all genes",
    "r2_mean_de": "R² of means, DEGs",
    "pearson_delta_all": "Pearson r of deltas, all genes",
    "pearson_delta_de": "Pearson r of deltas, DEGs",
    "kendall_tau_de": "Kendall τ of deltas, DEGs",
    "energy_distance": "energy distance",
    "mmd2": "MMD²",
    "wasserstein": "Wasserstein-2",
    "frechet": "Fréchet distance",
}


def _named_predictions(predictions: Any) -> dict[str, AnnData]:
    if hasattr(predictions, "obs_names"):
        predictions = [predictions]
    if isinstance(predictions, Mapping):
        named = dict(predictions)
    else:
        named = {}
        for i, p in enumerate(predictions):
            method = p.obs["method"].iloc[0] if "method" in p.obs and p.n_obs else f"prediction {i + 1}"
            named[str(method)] = p
    if not named:
        msg = "Pass at least one prediction (an AnnData from `sl.tl.perturb`)."
        raise ValueError(msg)
    return named


def _real_cells(adata, *, condition_key, control, perturbation, cell_type_key, cell_type):
    from ..tl.perturbation._inputs import condition_masks

    is_ctrl, is_pert = condition_masks(adata, condition_key, control, perturbation)
    if cell_type is not None:
        if cell_type_key is None or cell_type_key not in adata.obs:
            msg = "Pass `cell_type_key=` (an `.obs` column) together with `cell_type=`."
            raise KeyError(msg)
        in_type = (adata.obs[cell_type_key].astype(str) == str(cell_type)).to_numpy()
        is_ctrl, is_pert = is_ctrl & in_type, is_pert & in_type
    if is_ctrl.sum() < MIN_DE_CELLS or is_pert.sum() < MIN_DE_CELLS:
        counts = f"{int(is_pert.sum())} perturbed and {int(is_ctrl.sum())} control"
        msg = f"Too few cells for DEGs: {counts} (need ≥ {MIN_DE_CELLS} of each)."
        raise ValueError(msg)
    return is_ctrl, is_pert


@doc_params(**plot_docs("perturbation"))
def perturbation(
    adata: AnnData,
    *,
    predictions: AnnData | Sequence[AnnData] | Mapping[str, AnnData],
    condition_key: str,
    control: str,
    perturbation: str,
    cell_type_key: str | None = None,
    cell_type: str | None = None,
    layer: str | None = None,
    n_de: int = 100,
    n_labels: int = 10,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """ScGen's regression plot: per-gene means of predicted vs real perturbed cells, one panel per prediction.

    Every gene is a point (x: mean over the real perturbed cells, y: mean over the predicted cells); the top
    ``n_de`` DEGs (Wilcoxon, real perturbed vs control) are drawn in red and the strongest ``n_labels``
    named. Each title gives the R² (squared Pearson r) over all genes and over the DEGs.

    Parameters
    ----------
    adata
        Real cells holding the control and perturbed cells of the cell type predicted.
    predictions
        Predicted cells (from :func:`sc_llm.tl.perturb`) over ``adata``'s genes: one AnnData, a list (named
        by their ``.obs['method']``) or a ``{name: AnnData}`` mapping.
    condition_key
        ``.obs`` column of conditions in ``adata``.
    control
        Value of ``condition_key`` for control cells.
    perturbation
        Value of ``condition_key`` for perturbed cells.
    cell_type_key
        ``.obs`` column of cell types, to pick ``cell_type``.
    cell_type
        Restrict ``adata``'s real cells to this cell type.
    layer
        Layer holding expression (in ``adata`` and the predictions), instead of ``.X``.
    n_de
        Number of DEGs highlighted and scored.
    n_labels
        Number of DEGs named.
    {mod}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    adata = get_modality(adata, mod)
    named = _named_predictions(predictions)
    is_ctrl, is_pert = _real_cells(
        adata,
        condition_key=condition_key,
        control=control,
        perturbation=perturbation,
        cell_type_key=cell_type_key,
        cell_type=cell_type,
    )
    X = _matrix(adata, layer=layer, what="real cells")
    real, ctrl = X[is_pert], X[is_ctrl]
    de = top_de_genes(real, ctrl, n_de)
    real_mean = real.mean(0)
    genes = np.asarray(adata.var_names)
    fig, axes = plt.subplots(1, len(named), figsize=(4.2 * len(named), 4.0), squeeze=False)
    axes = list(axes[0])
    for ax, (name, pred) in zip(axes, named.items(), strict=True):
        if not np.array_equal(np.asarray(pred.var_names), genes):
            msg = f"The prediction {name!r} has other genes than `adata`; predict over `adata.var_names`."
            raise ValueError(msg)
        pm = _matrix(pred, layer=layer, what=f"cells of {name!r}").mean(0)
        ax.scatter(real_mean, pm, s=4, c="0.6", alpha=0.6, linewidths=0, label="genes")
        ax.scatter(real_mean[de], pm[de], s=8, c="tab:red", linewidths=0, label=f"top {len(de)} DEGs")
        for g in de[:n_labels]:
            ax.annotate(genes[g], (real_mean[g], pm[g]), fontsize=6, xytext=(2, 2), textcoords="offset points")
        hi = float(max(real_mean.max(), pm.max())) * 1.05
        ax.plot([0, hi], [0, hi], color="black", linewidth=0.6, linestyle="--")
        ax.set_title(
            f"{name}\nR² all {r2_means(pm, real_mean):.3f}, DEGs {r2_means(pm[de], real_mean[de]):.3f}",
            fontsize="medium",
        )
        ax.set_xlabel(f"real {perturbation}: mean expression")
        style_axes(ax)
    axes[0].set_ylabel("predicted: mean expression")
    axes[0].legend(loc="upper left", frameon=False, fontsize="small", markerscale=2)
    fig.tight_layout()
    return finish_figure(fig, axes, "perturbation", show=show, save=save, return_fig=return_fig)


@doc_params(**plot_docs("perturbation_comparison"))
def perturbation_comparison(
    adata: AnnData,
    *,
    key: str = "perturbation_comparison",
    metrics: Sequence[str] = ("r2_mean_de", "pearson_delta_de", "energy_distance", "mmd2"),
    methods: Sequence[str] | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Draw :func:`sc_llm.tl.compare_perturbation`'s table: one panel per score, mean ± sd bars per method.

    Each held-out cell type is a dot on its method's bar; titles say whether higher or lower is better.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]`` from :func:`sc_llm.tl.compare_perturbation`.
    key
        ``.uns`` key of the comparison.
    metrics
        Scores to draw (keys of :func:`sc_llm.metrics.perturbation_scores`).
    methods
        Methods to show, top to bottom; default all, in the comparison's order.
    {mod}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    adata = get_modality(adata, mod)
    if key not in adata.uns or "per_cell_type" not in adata.uns[key]:
        msg = f"No comparison in `adata.uns[{key!r}]`. Run `sl.tl.compare_perturbation(adata, ...)` first."
        raise KeyError(msg)
    per = adata.uns[key]["per_cell_type"]
    metrics = list(metrics)
    bad = [m for m in metrics if m not in SCORE_NAMES]
    if bad or not metrics:
        msg = f"Unknown scores {bad or metrics}; choose from {list(SCORE_NAMES)}."
        raise ValueError(msg)
    available = list(dict.fromkeys(per["method"]))
    methods = available if methods is None else list(methods)
    missing = [m for m in methods if m not in available]
    if missing or not methods:
        msg = f"Methods {missing or methods} not in the comparison (available: {available})."
        raise ValueError(msg)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics) + 1.2, 0.45 * len(methods) + 1.4), squeeze=False, sharey=True
    )
    axes = list(axes[0])
    y = np.arange(len(methods))[::-1].astype(float)
    colors = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes, metrics, strict=True):
        for yi, (j, m) in zip(y, enumerate(methods), strict=True):
            vals = per.loc[per["method"] == m, metric].to_numpy(dtype=float)
            ok = vals[np.isfinite(vals)]
            if ok.size:
                sd = ok.std(ddof=1) if ok.size > 1 else 0.0
                ax.barh(yi, ok.mean(), xerr=sd, height=0.6, color=colors[j % 10], alpha=0.5, capsize=2)
                ax.scatter(ok, np.full(ok.size, yi), s=9, color=colors[j % 10], zorder=3)
            else:
                ax.text(0, yi, "n/a", va="center", fontsize="small")
        arrow = "↑" if HIGHER_IS_BETTER[metric] else "↓"
        ax.set_title(f"{SCORE_LABELS[metric]} {arrow}", fontsize="medium")
        ax.axvline(0, color="black", linewidth=0.6)
        style_axes(ax)
    axes[0].set_yticks(y, methods)
    fig.tight_layout()
    return finish_figure(fig, axes, "perturbation_comparison", show=show, save=save, return_fig=return_fig)
