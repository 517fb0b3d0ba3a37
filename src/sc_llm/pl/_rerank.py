"""``sl.pl.rerank_changes``: which answers :func:`sc_llm.tl.llm_rerank` changed, to right and to wrong."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils._anndata import get_modality, read_params
from .._utils._docs import doc_params
from ._base import finish_figure, new_axes, obs_column, ordered_categories, plot_docs, style_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RUN = "Run `sl.tl.llm_rerank(adata, model=..., truth_key=...)` first and pass its `key_added` as `key`."
# outcome -> colour; "changed to wrong" is split in two when the first candidates are known
OUTCOMES = {
    "kept, right": "#a9dfbf",
    "kept, wrong": "#ccd1d1",
    "changed to right": "#1e8449",
    "changed, right to wrong": "#c0392b",
    "changed, wrong to wrong": "#f0b27a",
    "changed to wrong": "#c0392b",
}


def _first_candidates(adata: AnnData, key: str) -> np.ndarray | None:
    """The candidate ranked first before reranking (``label_1`` of the candidates the rerank read), or ``None``."""
    cand = read_params(adata.uns, key).get("candidates_key")
    frame = adata.obsm[cand] if cand and cand in adata.obsm else None
    if not isinstance(frame, pd.DataFrame) or "label_1" not in frame.columns:
        return None
    return frame["label_1"].astype(object).where(frame["label_1"].notna(), None).to_numpy()


def rerank_outcomes(adata: AnnData, key: str, truth_key: str | None) -> tuple[pd.Series, pd.Series, list[str], str]:
    """``(outcome of every scored cell, its true label, the outcomes in drawing order, the truth column)``."""
    chosen = obs_column(adata, key, fix=RUN)
    changed = obs_column(adata, f"{key}_changed", fix=RUN).to_numpy(dtype=bool)
    truth_key = truth_key or read_params(adata.uns, key).get("truth_key") or None
    if truth_key is None:
        msg = "Pass `truth_key=` naming the `.obs` column of true labels (the rerank was run without one)."
        raise ValueError(msg)
    truth = obs_column(adata, truth_key, fix="Pass `truth_key=` naming the `.obs` column of true labels.")
    has = (truth.notna() & chosen.notna()).to_numpy()
    if not has.any():
        msg = f"No cell has both a reranked answer in `.obs[{key!r}]` and a true label in `.obs[{truth_key!r}]`."
        raise ValueError(msg)
    c, t, ch = chosen.astype(str).to_numpy(), truth.astype(str).to_numpy(), changed
    right = c == t
    first = _first_candidates(adata, key)
    if first is not None and ((first.astype(str) != c) != ch).any():
        cand = read_params(adata.uns, key).get("candidates_key")
        msg = (
            f"`.obsm[{cand!r}]` no longer matches `.obs[{key + '_changed'!r}]` (were the candidates recomputed "
            "after the rerank?). Rerun `sl.tl.llm_rerank` on these candidates."
        )
        raise ValueError(msg)
    outcome = np.where(
        ch, np.where(right, "changed to right", "changed to wrong"), np.where(right, "kept, right", "kept, wrong")
    )
    order = ["kept, right", "kept, wrong", "changed to right", "changed to wrong"]
    if first is not None:
        was_right = first.astype(str) == t
        outcome = np.where(
            ch & ~right, np.where(was_right, "changed, right to wrong", "changed, wrong to wrong"), outcome
        )
        order = ["kept, right", "kept, wrong", "changed to right", "changed, right to wrong", "changed, wrong to wrong"]
    index = adata.obs_names[has]
    return pd.Series(outcome[has], index=index), pd.Series(t[has], index=index), order, truth_key


def _draw_totals(ax: Axes, outcome: pd.Series, order: list[str]) -> None:
    counts = outcome.value_counts().reindex(order, fill_value=0)
    y = np.arange(len(order))[::-1].astype(float)
    ax.barh(y, counts.to_numpy(), height=0.65, color=[OUTCOMES[o] for o in order], edgecolor="#566573", linewidth=0.5)
    for yi, n in zip(y, counts.to_numpy(), strict=True):
        ax.text(n, yi, f" {n} ({100 * n / len(outcome):.1f}%)", va="center", fontsize="small")
    ax.set_yticks(y, order)
    ax.set_xlim(0, max(int(counts.max()), 1) * 1.3)
    ax.set_xlabel("cells")


def _draw_per_class(ax: Axes, outcome: pd.Series, truth: pd.Series, order: list[str], classes: list[str]) -> None:
    table = pd.crosstab(truth, outcome).reindex(index=classes, columns=order, fill_value=0)
    y = np.arange(len(classes))[::-1].astype(float)
    left = np.zeros(len(classes))
    for o in order:
        ax.barh(
            y, table[o].to_numpy(), left=left, height=0.7, color=OUTCOMES[o], label=o, edgecolor="white", linewidth=0.4
        )
        left += table[o].to_numpy()
    ax.set_yticks(y, [f"{c} ({int(n)})" for c, n in zip(classes, left, strict=True)])
    ax.set_xlabel("cells")
    ax.set_ylabel("true class (cells)")
    ax.set_xlim(0, max(float(left.max()), 1.0) * 1.04)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")


@doc_params(**plot_docs("rerank_changes"))
def rerank_changes(
    adata: AnnData,
    *,
    key: str = "llm_rerank",
    truth_key: str | None = None,
    per_class: bool = False,
    ax: Axes | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot what :func:`sc_llm.tl.llm_rerank` did to the first candidates: answers kept or changed, right or wrong.

    Every cell with a true label falls in one bar: its first candidate kept and right, kept and wrong, changed
    to the right type, or changed to a wrong one. When the candidates the rerank read are still in ``.obsm``,
    a change to a wrong type is split into *right to wrong* (the rerank broke a right answer) and *wrong to
    wrong*. The title gives the accuracy before and after and the net gain (changes to right minus changes
    from right).

    Parameters
    ----------
    adata
        Annotated data matrix with ``.obs[key]`` and ``.obs[key + '_changed']`` from :func:`sc_llm.tl.llm_rerank`.
    key
        The rerank's ``key_added``.
    truth_key
        ``.obs`` column of true labels; default the rerank's own ``truth_key``.
    per_class
        One stacked bar per true class instead of one bar per outcome.
    {ax}
    {mod}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    adata = get_modality(adata, mod)
    outcome, truth, order, truth_key = rerank_outcomes(adata, key, truth_key)
    classes = [c for c in ordered_categories(adata.obs[truth_key]) if c in set(truth)]
    created = ax is None
    size = (8.4, 0.34 * len(classes) + 1.8) if per_class else (6.4, 0.4 * len(order) + 1.6)
    fig, ax = new_axes(ax, size)
    if per_class:
        _draw_per_class(ax, outcome, truth, order, classes)
    else:
        _draw_totals(ax, outcome, order)
    n = len(outcome)
    after = float(outcome.isin(["kept, right", "changed to right"]).mean())
    title = f"{key}: {int((~outcome.str.startswith('kept')).sum())} of {n} answers changed"
    if "changed, right to wrong" in order:
        before = float(outcome.isin(["kept, right", "changed, right to wrong"]).mean())
        net = int((outcome == "changed to right").sum() - (outcome == "changed, right to wrong").sum())
        title += f"\naccuracy {before:.3f} → {after:.3f} (net {net:+d} cells)"
    else:
        title += f"\naccuracy after reranking {after:.3f}"
    ax.set_title(title, fontsize="medium")
    style_axes(ax)
    if created:
        fig.tight_layout()
    return finish_figure(fig, [ax], "rerank_changes", show=show, save=save, return_fig=return_fig)
