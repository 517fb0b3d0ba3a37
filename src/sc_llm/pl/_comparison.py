"""``sl.pl.compare_annotators``: the comparison table of :func:`sc_llm.tl.compare_annotators`, seed by seed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._utils._docs import doc_params
from ._base import finish_figure, plot_docs, result_data, style_axes, uns_result

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SCORE_LABELS = {
    "f1_macro": "macro F1",
    "accuracy": "accuracy",
    "precision_macro": "macro precision",
    "recall_macro": "macro recall",
    "ece": "ECE (15 bins)",
}
LOWER_IS_BETTER = {"ece"}
# (label in the legend, face colour, hatch) of each kind of row, told apart by the row name's prefix
KINDS = {
    "scMPT": ("scMPT fusion", "#c0392b", ""),
    "ensemble": ("ensemble control (same budget)", "#f5cba7", "///"),
    "MLP": ("MLP", "#5dade2", ""),
    "kNN": ("kNN", "#bfc9ca", ""),
}
EDGE = {"scMPT": "#922b21", "ensemble": "#c0392b", "MLP": "#1f618d", "kNN": "#707b7c"}


def method_kind(name: str) -> str:
    """``'scMPT'``, ``'ensemble'``, ``'MLP'`` or ``'kNN'``: the kind of a row of the comparison table."""
    for kind in ("ensemble", "scMPT", "MLP", "kNN"):
        if name.startswith(kind):
            return kind
    return "MLP"


def _checked(
    adata: AnnData, key: str, metrics: Sequence[str] | None, methods: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    result = uns_result(
        adata,
        key,
        ("table", "per_seed"),
        what="annotator comparison",
        run="sl.tl.compare_annotators(adata, label_key=...)",
    )
    table, per_seed = result["table"], result["per_seed"]
    have = [m for m in SCORE_LABELS if m in per_seed.columns and np.isfinite(per_seed[m].to_numpy(float)).any()]
    metrics = [m for m in ("f1_macro", "accuracy", "ece") if m in have] if metrics is None else list(metrics)
    bad = [m for m in metrics if m not in have]
    if bad or not metrics:
        msg = f"Scores {bad or metrics} are not in the comparison; choose from {have}."
        raise ValueError(msg)
    available = [str(m) for m in table.index]
    methods = available if methods is None else [str(m) for m in methods]
    missing = [m for m in methods if m not in available]
    if missing or not methods:
        msg = f"Methods {missing or methods} not in the comparison (available: {available})."
        raise ValueError(msg)
    return table, per_seed, metrics, methods


def _draw_score(ax: Axes, table: pd.DataFrame, per_seed: pd.DataFrame, metric: str, methods: list[str]) -> None:
    """One panel: per method a bar of the mean, the sd as an error bar, each seed a dot, the value written."""
    y = np.arange(len(methods))[::-1].astype(float)
    rng = np.random.default_rng(0)
    reach = 0.0
    for yi, method in zip(y, methods, strict=True):
        kind = method_kind(method)
        _, face, hatch = KINDS[kind]
        mean, sd = float(table.loc[method, f"{metric}_mean"]), float(table.loc[method, f"{metric}_sd"])
        seeds = per_seed.loc[per_seed["method"] == method, metric].to_numpy(dtype=float)
        ax.barh(yi, mean, height=0.7, color=face, edgecolor=EDGE[kind], hatch=hatch, linewidth=0.8)
        ax.errorbar(mean, yi, xerr=sd, color="black", capsize=2.5, linewidth=0.9)
        jitter = rng.uniform(-0.17, 0.17, len(seeds))
        ax.scatter(seeds, yi + jitter, s=10, color="black", zorder=3, linewidths=0)
        top = max(mean + sd, float(np.nanmax(seeds)) if len(seeds) else mean)
        ax.text(top, yi, f"  {mean:.3f} ± {sd:.3f}", va="center", fontsize=7)
        reach = max(reach, top)
    lower = metric in LOWER_IS_BETTER
    ax.set_xlim(0, (reach if lower else max(reach, 1.0)) * 1.32 or 1.0)
    if not lower:
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_title(f"{SCORE_LABELS[metric]} {'↓' if lower else '↑'}", fontsize="medium")
    ax.set_xlabel(f"{SCORE_LABELS[metric]}, mean ± sd over seeds", fontsize="small")
    ax.set_ylim(-0.6, len(methods) - 0.4)
    style_axes(ax)


@doc_params(**plot_docs("compare_annotators"))
def compare_annotators(
    adata: AnnData,
    *,
    key: str = "scmpt_comparison",
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot :func:`sc_llm.tl.compare_annotators`: each score per method, mean ± sd over seeds, every seed a dot.

    One panel per score, methods top to bottom in the comparison's order, each bar's mean and sd written next
    to it. The kind of annotator sets the bar's look: scMPT fusions red, the same-budget ensemble controls
    (``ensemble_controls=``: the fusion trained on copies of one representation) hatched, single-representation
    MLPs blue and kNN grey, so ``scMPT − ensemble`` (the gain from combining representations) reads at a glance.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]`` from :func:`sc_llm.tl.compare_annotators`.
    key
        ``.uns`` key of the comparison.
    metrics
        Scores to draw, one panel each: ``'f1_macro'``, ``'accuracy'``, ``'precision_macro'``,
        ``'recall_macro'``, ``'ece'``; default macro F1, accuracy and ECE (those present).
    methods
        Rows to show, top to bottom; default all, in the comparison's order.
    mod
        On a MuData: the modality holding the comparison (``None``: the MuData itself when it holds one, else
        ``'rna'``).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    adata = result_data(adata, mod, lambda d: key in d.uns)
    table, per_seed, metrics, methods = _checked(adata, key, metrics, methods)
    width = max(len(m) for m in methods) * 0.07 + 3.3 * len(metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 0.42 * len(methods) + 1.9), squeeze=False, sharey=True)
    axes = list(axes[0])
    for ax, metric in zip(axes, metrics, strict=True):
        _draw_score(ax, table, per_seed, metric, methods)
    axes[0].set_yticks(np.arange(len(methods))[::-1], methods)
    for label, method in zip(axes[0].get_yticklabels(), methods, strict=True):
        if method_kind(method) == "ensemble":
            label.set_fontstyle("italic")
    kinds = list(dict.fromkeys(method_kind(m) for m in methods))
    handles = [Patch(facecolor=KINDS[k][1], edgecolor=EDGE[k], hatch=KINDS[k][2], label=KINDS[k][0]) for k in kinds]
    handles.append(plt.Line2D([], [], marker="o", color="black", linestyle="", markersize=3, label="one seed"))
    n_seeds = per_seed["seed"].nunique()
    ncol = len(handles) if sum(len(h.get_label()) for h in handles) * 0.075 + 0.5 * len(handles) < width else 3
    rows = int(np.ceil(len(handles) / ncol))
    fig.legend(handles=handles, loc="upper center", ncol=ncol, frameon=False, fontsize="small")
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    fig.text(
        0.5,
        0.0,
        f"{seeds}; {int(table['n_test'].iloc[0])} test cells per seed",
        ha="center",
        va="bottom",
        fontsize="small",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1 - (0.22 * rows + 0.05) / fig.get_figheight()))
    return finish_figure(fig, axes, "compare_annotators", show=show, save=save, return_fig=return_fig)
