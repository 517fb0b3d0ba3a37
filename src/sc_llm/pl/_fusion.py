"""``sl.pl.fusion_weights``: how much each representation counts in scMPT's fusion, overall and per class."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .._utils._docs import doc_params
from ._base import finish_figure, plot_docs, result_data, style_axes, uns_result

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RUN = "sl.tl.scmpt_annotate(adata, label_key=..., use_reps=[...], fusion='stacked')"


def _weights(uns: Any, key: str) -> tuple[list[str], np.ndarray, np.ndarray | None, list[str], str]:
    """``(representations, weights, per-class evidence or None, classes, fusion)`` from ``uns[key]``."""
    history, params = uns["history"], uns["params"]
    fusion = str(history.get("fusion", ""))
    reps = [str(r) for r in np.atleast_1d(params.get("use_reps", []))]
    name = {"stacked": "weights", "pretrained": "branch_weights"}.get(fusion)
    if name is None or name not in history or len(reps) < 2:
        msg = (
            f"`adata.uns[{key!r}]` is a scMPT run with fusion={fusion!r} on {len(reps)} representation(s), which has "
            f"no expert weights. Run `{RUN}` (or fusion='pretrained') with two or more representations."
        )
        raise ValueError(msg)
    weights = np.asarray(history[name], dtype=float).ravel()
    evidence = history.get("class_evidence") if fusion == "stacked" else None
    evidence = None if evidence is None else np.asarray(evidence, dtype=float)
    classes = [str(c) for c in np.atleast_1d(uns["classes"])]
    if len(weights) != len(reps) or (evidence is not None and evidence.shape != (len(classes), len(reps))):
        msg = f"`adata.uns[{key!r}]['history']` does not match its representations {reps}; rerun `{RUN}`."
        raise ValueError(msg)
    return reps, weights, evidence, classes, fusion


def _draw_weights(ax: Axes, reps: list[str], weights: np.ndarray, fusion: str) -> None:
    import matplotlib.pyplot as plt

    y = np.arange(len(reps))[::-1].astype(float)
    colors = plt.get_cmap("tab10").colors
    ax.barh(y, weights, height=0.5, color=[colors[i % 10] for i in range(len(reps))])
    for yi, w in zip(y, weights, strict=True):
        ax.text(w, yi, f" {w:.2f}", va="center", fontsize="small")
    ax.set_yticks(y, reps)
    ax.set_xlim(0, max(float(weights.max()), 1e-9) * 1.25)
    ax.set_xlabel("expert weight" if fusion == "stacked" else "branch weight (relative)")
    ax.set_title("expert weights (all classes)" if fusion == "stacked" else "branch weights", fontsize="medium")
    style_axes(ax)


def _draw_evidence(ax: Axes, evidence: np.ndarray, reps: list[str], classes: list[str]) -> None:
    from matplotlib.colors import TwoSlopeNorm

    span = max(float(np.nanmax(np.abs(evidence))), 1e-9)
    image = ax.imshow(evidence, cmap="BrBG", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    for (i, j), v in np.ndenumerate(evidence):
        if np.isfinite(v):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(v) > 0.6 * span else "black",
            )
    ax.set_xticks(range(len(reps)), reps, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_title("evidence for the true class, per class", fontsize="medium")
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    bar.set_label("weight × mean(log p + log C), out of fold", fontsize="small")


@doc_params(**plot_docs("fusion_weights"))
def fusion_weights(
    adata: AnnData,
    *,
    key: str = "scmpt",
    per_class: bool = True,
    mod: str | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot the expert weights of scMPT's stacked fusion (:func:`sc_llm.tl.scmpt_annotate`) and what they do per class.

    The stacked fusion combines one expert per representation as a product of experts, ``softmax(Σ_i w_i log
    p_i)``: the weights ``w_i`` (left) are shared by all classes, and their sum also acts as an inverse
    temperature. The heatmap (right) shows, per class, each expert's weighted out-of-fold evidence for the true
    class, ``w_i · mean(log p_i(c) + log C)`` over the training cells of class ``c``: green where a
    representation points to the right class, brown where it points away, white where it cannot tell, so a
    class that only one representation separates stands out. For ``fusion='pretrained'`` the relative
    branch weights are drawn (no per-class view).

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]`` from :func:`sc_llm.tl.scmpt_annotate`.
    key
        ``.uns`` key of the scMPT run (its ``key_added``).
    per_class
        Draw the per-class heatmap next to the weights (when the run stored it).
    mod
        On a MuData: the modality holding the run (``None``: the MuData itself when it holds one, else ``'rna'``).
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    import matplotlib.pyplot as plt

    adata = result_data(adata, mod, lambda d: key in d.uns)
    uns = uns_result(adata, key, ("history", "params", "classes"), what="scMPT run", run=RUN)
    reps, weights, evidence, classes, fusion = _weights(uns, key)
    if per_class and evidence is not None:
        height = max(2.6, 0.32 * len(classes) + 1.4)
        fig, axes = plt.subplots(
            1,
            2,
            figsize=(3.4 + 0.9 * len(reps) + 0.08 * max(map(len, classes)), height),
            gridspec_kw={"width_ratios": [1.0, 0.5 + 0.35 * len(reps)]},
        )
        axes = list(axes)
        _draw_weights(axes[0], reps, weights, fusion)
        _draw_evidence(axes[1], evidence, reps, classes)
    else:
        fig, ax = plt.subplots(figsize=(4.2, 0.45 * len(reps) + 1.3))
        axes = [ax]
        _draw_weights(ax, reps, weights, fusion)
    fig.tight_layout()
    return finish_figure(fig, axes, "fusion_weights", show=show, save=save, return_fig=return_fig)
