"""``sl.pl.ablation_study``: the ablation table of :func:`sc_llm.tl.ablation_study` as grouped bars."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._utils._anndata import get_modality
from .._utils._docs import doc_params
from ._base import finish_figure, new_axes, plot_docs, style_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

METRIC_LABELS = {
    "accuracy": "accuracy",
    "precision_macro": "macro precision",
    "recall_macro": "macro recall",
    "f1_macro": "macro F1",
    "ari": "k-means ARI",
}


@doc_params(**plot_docs("ablation_study"))
def ablation_study(
    adata: AnnData,
    *,
    key: str = "ablation_study",
    metrics: Sequence[str] = ("accuracy", "f1_macro", "ari"),
    ablations: Sequence[str] | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
    mod: str | None = None,
) -> Figure | list[Axes] | None:
    """Plot each ablation's scores as grouped horizontal bars, with the baseline's scores as dashed lines.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]`` from :func:`sc_llm.tl.ablation_study`.
    key
        ``.uns`` key of the study.
    metrics
        Columns of the results to draw: ``'accuracy'``, ``'precision_macro'``, ``'recall_macro'``,
        ``'f1_macro'``, ``'ari'``.
    ablations
        Ablations to show, top to bottom; default all, in the study's order.
    {ax}
    {show}
    {save}
    {return_fig}
    mod
        Modality holding the results when ``adata`` is a MuData (default ``'rna'``).

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    adata = get_modality(adata, mod)
    if key not in adata.uns or "results" not in adata.uns[key]:
        msg = f"No ablation study in `adata.uns[{key!r}]`. Run `sl.tl.ablation_study(adata, ...)` first."
        raise KeyError(msg)
    res = adata.uns[key]["results"]
    metrics = list(metrics)
    bad = [m for m in metrics if m not in METRIC_LABELS or m not in res.columns]
    if bad or not metrics:
        msg = f"Unknown metrics {bad or metrics}; choose from {[m for m in METRIC_LABELS if m in res.columns]}."
        raise ValueError(msg)
    names = list(res.index) if ablations is None else list(ablations)
    missing = [n for n in names if n not in res.index]
    if missing or not names:
        msg = f"Ablations {missing or names} not in the study (available: {list(res.index)})."
        raise ValueError(msg)

    fig, ax = new_axes(ax, (6.5, 0.45 * len(names) * max(1, len(metrics) / 2) + 1.2))
    y = np.arange(len(names))[::-1].astype(float)
    height = 0.8 / len(metrics)
    colors = plt.get_cmap("tab10").colors
    for j, metric in enumerate(metrics):
        offset = (len(metrics) - 1) / 2 * height - j * height
        values = res.loc[names, metric].to_numpy(dtype=float)
        ax.barh(y + offset, values, height=height, color=colors[j % 10], label=METRIC_LABELS[metric])
        if "baseline" in res.index:
            ax.axvline(float(res.loc["baseline", metric]), color=colors[j % 10], linestyle="--", linewidth=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("score")
    ax.axvline(0, color="black", linewidth=0.6)
    style_axes(ax)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    ax.set_title("Cell-sentence ablations", fontsize="medium")
    return finish_figure(fig, [ax], "ablation_study", show=show, save=save, return_fig=return_fig)
