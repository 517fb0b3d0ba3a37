"""``sl.pl.confusion_matrix`` and ``sl.pl.reliability``: any annotation column scored against the true labels."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils._docs import doc_params
from ..metrics import expected_calibration_error
from ._base import finish_figure, new_axes, obs_column, ordered_categories, plot_docs, result_data, style_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ANNOTATORS = (
    "Run an annotation tool first (`sl.tl.knn_annotate`, `sl.tl.scmpt_annotate`, `sl.tl.llm_annotate` or "
    "`sl.tl.llm_rerank`) and pass its `key_added` as `key`."
)
NORMALIZE = {
    None: "cells",
    "true": "fraction of the true class",
    "pred": "fraction of the prediction",
    "all": "fraction of all cells",
}


def scored_cells(
    adata: AnnData, key: str, truth_key: str, mod: str | None
) -> tuple[AnnData, pd.Series, pd.Series, np.ndarray]:
    """``(the AnnData holding key, predictions, truths, mask)`` of the cells that have both, as strings."""
    adata = result_data(adata, mod, lambda d: key in d.obs)
    pred = obs_column(adata, key, fix=ANNOTATORS)
    truth = obs_column(adata, truth_key, fix="Pass `truth_key=` naming the `.obs` column of true labels.")
    has = (pred.notna() & truth.notna()).to_numpy()
    if not has.any():
        msg = f"No cell has both a prediction in `.obs[{key!r}]` and a true label in `.obs[{truth_key!r}]`."
        raise ValueError(msg)
    return adata, pred[has].astype(str), truth[has].astype(str), has


def confusion_table(adata: AnnData, key: str, truth_key: str, pred: pd.Series, truth: pd.Series) -> pd.DataFrame:
    """Counts of cells: true classes as rows, predictions as columns, both in the truth column's order.

    The predicted labels that are no true class follow as further columns (in the prediction column's order).
    """
    rows = [c for c in ordered_categories(adata.obs[truth_key]) if c in set(truth)]
    rows += sorted(set(truth) - set(rows))
    extra = [c for c in ordered_categories(adata.obs[key]) if c in set(pred) and c not in rows]
    cols = rows + extra + sorted(set(pred) - set(rows) - set(extra))
    table = pd.crosstab(pd.Categorical(truth, categories=rows), pd.Categorical(pred, categories=cols), dropna=False)
    return table.reindex(index=rows, columns=cols, fill_value=0)


def _normalized(counts: np.ndarray, normalize: str | None) -> np.ndarray:
    if normalize is None:
        return counts.astype(float)
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    total = counts.sum(axis=axis, keepdims=axis is not None)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=np.asarray(total) > 0)


def _draw_matrix(ax: Axes, values: np.ndarray, normalize: str | None):
    """The heatmap, every non-zero entry written in it (small matrices); returns the image for a colour bar."""
    vmax = 1.0 if normalize is not None else max(float(values.max()), 1.0)
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, aspect="equal")
    size = max(values.shape)
    if size <= 30:
        fontsize = 8 if size <= 12 else 7 if size <= 20 else 5
        for (i, j), v in np.ndenumerate(values):
            if v > 0:
                text = f"{int(v)}" if normalize is None else "1" if v >= 1 else f"{v:.2f}".lstrip("0")
                color = "white" if v > 0.55 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)
    return image


@doc_params(**plot_docs("confusion_matrix"))
def confusion_matrix(
    adata: AnnData,
    *,
    key: str,
    truth_key: str,
    normalize: str | None = "true",
    ax: Axes | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot the predicted against the true labels of any annotation column, as a heatmap.

    Rows are the true classes (in the order of ``truth_key``'s categories), columns the predictions in the same
    order, so the diagonal holds the right answers, followed by labels that are predicted but never true
    (``'unknown'``, a class missing from the truth). Cells without a prediction or a true label are left out;
    the title gives the accuracy and the number of cells scored, each row label its number of cells. The
    entries of matrices up to 30 classes are written out (zeros left blank).

    Parameters
    ----------
    adata
        Annotated data matrix with the predictions in ``.obs[key]``.
    key
        ``.obs`` column of predicted labels (the ``key_added`` of :func:`sc_llm.tl.knn_annotate`,
        :func:`sc_llm.tl.scmpt_annotate`, :func:`sc_llm.tl.llm_annotate` or :func:`sc_llm.tl.llm_rerank`).
    truth_key
        ``.obs`` column of true labels.
    normalize
        ``'true'``: each row sums to 1 (the recall of every class on the diagonal); ``'pred'``: each column sums to
        1 (precision); ``'all'``: the whole matrix sums to 1; ``None``: counts of cells.
    {ax}
    mod
        On a MuData: the modality holding the labels (``None``: the MuData itself when it holds ``key``, else
        ``'rna'``).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    if normalize not in NORMALIZE:
        msg = f"`normalize` must be one of {list(NORMALIZE)}, got {normalize!r}."
        raise ValueError(msg)
    adata, pred, truth, _ = scored_cells(adata, key, truth_key, mod)
    table = confusion_table(adata, key, truth_key, pred, truth)
    values = _normalized(table.to_numpy(), normalize)
    n_rows, n_cols = values.shape
    label_w = 0.07 * max(len(f"{c} ({n})") for c, n in zip(table.index, table.sum(1), strict=True))
    label_h = 0.05 * max(len(str(c)) for c in table.columns)
    fig, ax = new_axes(ax, (0.42 * n_cols + label_w + 2.0, 0.42 * n_rows + label_h + 1.3))
    image = _draw_matrix(ax, values, normalize)
    ax.set_xticks(range(n_cols), table.columns, rotation=45, ha="right", rotation_mode="anchor", fontsize="small")
    rows = [f"{c} ({n})" for c, n in zip(table.index, table.sum(1), strict=True)]
    ax.set_yticks(range(n_rows), rows, fontsize="small")
    ax.set_xlabel(f"predicted ({key})")
    ax.set_ylabel(f"true ({truth_key}), cells")
    accuracy = float((pred.to_numpy() == truth.to_numpy()).mean())
    ax.set_title(f"{key}: accuracy {accuracy:.3f}, n = {len(pred)}", fontsize="medium")
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label(NORMALIZE[normalize], fontsize="small")
    return finish_figure(fig, [ax], "confusion_matrix", show=show, save=save, return_fig=return_fig)


def reliability_bins(correct: np.ndarray, confidence: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Per bin (the bins of :func:`sc_llm.metrics.expected_calibration_error`): cells, accuracy, mean confidence."""
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    n = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(bins, correct, n_bins) / n
        mean_conf = np.bincount(bins, confidence, n_bins) / n
    edges = np.arange(n_bins) / n_bins
    return pd.DataFrame({"left": edges, "n": n, "accuracy": accuracy, "confidence": mean_conf})


def _draw_reliability(ax: Axes, table: pd.DataFrame, n_bins: int) -> None:
    """Accuracy bars of the non-empty bins, the gaps to their mean confidence hatched, cells over each bar."""
    shown = table[table["n"] > 0]
    width = 1.0 / n_bins
    ax.bar(
        shown["left"],
        shown["accuracy"],
        width=width,
        align="edge",
        color="#5dade2",
        edgecolor="#1f618d",
        linewidth=0.6,
        label="accuracy",
    )
    gap = shown["confidence"] - shown["accuracy"]
    ax.bar(
        shown["left"],
        gap,
        bottom=shown["accuracy"],
        width=width,
        align="edge",
        facecolor="none",
        hatch="////",
        edgecolor="#c0392b",
        linewidth=0.6,
        label="gap to mean confidence",
    )
    for left, n, top in zip(shown["left"], shown["n"], np.fmax(shown["accuracy"], shown["confidence"]), strict=True):
        ax.text(left + width / 2, top + 0.01, str(int(n)), ha="center", va="bottom", fontsize=7)
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=0.8, label="calibrated")


@doc_params(**plot_docs("reliability"))
def reliability(
    adata: AnnData,
    *,
    key: str,
    truth_key: str,
    n_bins: int = 10,
    confidence_key: str | None = None,
    ax: Axes | None = None,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot a reliability diagram of an annotation's confidences, with its expected calibration error.

    Cells are binned by the confidence of their predicted label into ``n_bins`` equal-width bins, as
    :func:`sc_llm.metrics.expected_calibration_error` bins them. Each bar is the accuracy of a bin's cells, the
    hatched part the gap to their mean confidence (above the bar: overconfident; inside it: underconfident),
    and the number over it the cells in the bin; a calibrated annotator follows the diagonal. The title's ECE is
    :func:`sc_llm.metrics.expected_calibration_error` on these cells and bins (the tools report it with 15 bins).
    Score cells that were not trained on: a query annotated from a reference, or held-out cells.

    Parameters
    ----------
    adata
        Annotated data matrix with predictions in ``.obs[key]`` and confidences in ``.obs[key + '_confidence']``
        (as :func:`sc_llm.tl.knn_annotate` and :func:`sc_llm.tl.scmpt_annotate` write them).
    key
        ``.obs`` column of predicted labels.
    truth_key
        ``.obs`` column of true labels.
    n_bins
        Number of equal-width confidence bins.
    confidence_key
        ``.obs`` column of the confidences, in [0, 1]; default ``key + '_confidence'``.
    {ax}
    mod
        On a MuData: the modality holding the labels (``None``: the MuData itself when it holds ``key``, else
        ``'rna'``).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    confidence_key = f"{key}_confidence" if confidence_key is None else confidence_key
    adata, pred, truth, has = scored_cells(adata, key, truth_key, mod)
    fix = "`sl.tl.knn_annotate` and `sl.tl.scmpt_annotate` write it; pass `confidence_key=` for another column."
    conf = obs_column(adata, confidence_key, fix=fix)[has]
    if conf.isna().any():
        msg = f"`.obs[{confidence_key!r}]` is missing for {int(conf.isna().sum())} scored cell(s)."
        raise ValueError(msg)
    conf = conf.to_numpy(dtype=float)
    ece = expected_calibration_error(truth, pred, conf, n_bins=n_bins)
    table = reliability_bins((pred.to_numpy() == truth.to_numpy()).astype(float), conf, n_bins)
    created = ax is None
    fig, ax = new_axes(ax, (4.6, 4.6))
    _draw_reliability(ax, table, n_bins)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel(f"confidence ({confidence_key})")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{key}: ECE {ece:.3f} ({n_bins} bins, n = {len(pred)})", fontsize="medium")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False, fontsize="small")
    style_axes(ax)
    if created:
        fig.tight_layout()
    return finish_figure(fig, [ax], "reliability", show=show, save=save, return_fig=return_fig)
