"""``sl.pl.attributions``: top attributed genes per group, markers highlighted, methods side by side."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._utils._anndata import get_modality
from .._utils._docs import doc_params
from ._base import finish_figure, plot_docs, style_axes

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MARKER_COLOR = "#c0392b"
OTHER_COLOR = "#95a5a6"
METHOD_LABELS = {"integrated_gradients": "Integrated gradients", "lime": "LIME"}


def _panel(ax: Axes, table, top_n: int, title: str) -> None:
    rows = table.sort_values("rank").head(top_n)
    y = np.arange(len(rows))[::-1]
    colors = [MARKER_COLOR if m else OTHER_COLOR for m in rows["is_marker"]]
    ax.barh(y, rows["score"].to_numpy(), color=colors, height=0.7)
    ax.set_yticks(y, rows["gene"].tolist())
    for label, is_marker in zip(ax.get_yticklabels(), rows["is_marker"], strict=True):
        if is_marker:
            label.set_color(MARKER_COLOR)
            label.set_fontweight("bold")
    ax.set_ylim(-0.6, max(top_n, 1) - 0.4)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("summed attribution", fontsize="small")
    ax.tick_params(axis="x", labelsize="small")
    style_axes(ax)
    if rows.empty:
        ax.text(0.5, 0.5, "no positive attribution", ha="center", va="center", transform=ax.transAxes)


def _panels(
    adata: AnnData, key: str, groups: Sequence[str] | None, methods: Sequence[str] | None, top_n: int, ncols: int
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The stored top-gene table and the groups and methods to draw, checked against what was run."""
    if key not in adata.uns or "top_genes" not in adata.uns[key]:
        msg = f"No attributions in `adata.uns[{key!r}]`. Run `sl.tl.attributions(adata, ...)` first."
        raise KeyError(msg)
    if top_n < 1 or ncols < 1:
        msg = f"`top_n` and `ncols` must be positive, got {top_n} and {ncols}."
        raise ValueError(msg)
    table = adata.uns[key]["top_genes"]
    ran = [m for m in ("integrated_gradients", "lime") if m in set(table["method"])]
    ran += sorted(set(table["method"]) - set(ran))
    methods = ran if methods is None else list(methods)
    present = list(dict.fromkeys(adata.uns[key]["marker_overlap"]["group"].astype(str)))
    groups = present if groups is None else [str(g) for g in groups]
    for what, asked, have in (("methods", methods, ran), ("groups", groups, present)):
        missing = [x for x in asked if x not in have]
        if missing or not asked:
            msg = f"{what.capitalize()} {missing or asked} not in `adata.uns[{key!r}]` (available: {have})."
            raise ValueError(msg)
    return table, groups, methods


@doc_params(**plot_docs("attributions"))
def attributions(
    adata: AnnData,
    *,
    key: str = "attributions",
    groups: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    top_n: int = 10,
    ncols: int = 4,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
    mod: str | None = None,
) -> Figure | list[Axes] | None:
    """Plot the top attributed genes of each group from :func:`sc_llm.tl.attributions`.

    One horizontal bar chart per group and method, genes ranked from the top; marker genes (those flagged by
    the ``markers`` passed to :func:`sc_llm.tl.attributions`) are drawn in red with bold labels. When both
    integrated gradients and LIME were run, each group's panels sit side by side.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]`` from :func:`sc_llm.tl.attributions`.
    key
        ``.uns`` key of the attributions.
    groups
        Groups to show, in this order; default all.
    methods
        Methods to show; default those that were run.
    top_n
        Genes per panel (at most the ``top_n`` of the attribution run).
    ncols
        Groups per row of panels.
    ax
        Axes to draw into; only for a single group and method.
    {show}
    {save}
    {return_fig}
    mod
        Modality holding the attributions when ``adata`` is a MuData (default ``'rna'``).

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    adata = get_modality(adata, mod)
    table, groups, methods = _panels(adata, key, groups, methods, top_n, ncols)
    n_panels = len(groups) * len(methods)
    if ax is not None and n_panels != 1:
        msg = f"`ax` holds one panel but {n_panels} were asked for; pass one group and one method, or no `ax`."
        raise ValueError(msg)

    if ax is not None:
        fig, axes = ax.figure, [ax]
    else:
        per_row = max(1, min(ncols, len(groups)))
        n_rows = int(np.ceil(len(groups) / per_row))
        n_cols = per_row * len(methods)
        height = 0.28 * top_n + 1.2
        fig, grid = plt.subplots(n_rows, n_cols, figsize=(2.9 * n_cols, height * n_rows), squeeze=False)
        axes = []
        for i in range(n_rows * per_row):
            for j in range(len(methods)):
                a = grid[i // per_row, (i % per_row) * len(methods) + j]
                if i < len(groups):
                    axes.append(a)
                else:
                    a.set_visible(False)
    for i, group in enumerate(groups):
        for j, method in enumerate(methods):
            sub = table[(table["group"].astype(str) == group) & (table["method"] == method)]
            title = f"{group}\n{METHOD_LABELS.get(method, method)}" if len(methods) > 1 else group
            _panel(axes[i * len(methods) + j], sub, top_n, title)
    if table["is_marker"].any():
        handles = [Patch(color=MARKER_COLOR, label="marker gene"), Patch(color=OTHER_COLOR, label="other gene")]
        fig.legend(
            handles=handles, loc="upper center", ncol=2, frameon=False, fontsize="small", bbox_to_anchor=(0.5, 1.0)
        )
    if ax is None:
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return finish_figure(fig, axes, "attributions", show=show, save=save, return_fig=return_fig)
