"""What every plot of ``sl.pl`` shares: where results are read from, colours, new axes, saving and showing."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._utils._anndata import get_modality, is_mudata
from .._utils._logging import logg

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_docs(name: str) -> dict[str, str]:
    """Docstring snippets of the options every plot takes (``ax``, ``show``, ``save``, ``return_fig``).

    For :func:`~sc_llm._utils._docs.doc_params`; ``name`` is the figure's file name under ``save=True``.
    """
    return {
        "ax": "    ax\n        Axes to draw into (a new figure when ``None``).",
        "show": "    show\n        Show the figure; default ``scanpy.settings.autoshow``.",
        "save": (
            "    save\n        ``True`` saves to ``scanpy.settings.figdir`` as ``'"
            + name
            + "'`` in ``scanpy.settings.file_format_figs``; a name without a folder\n"
            "        (``'_pbmc.pdf'``) is appended to ``'"
            + name
            + "'`` there, as in scanpy; a path with a folder (``'figures/a.png'``,\n"
            "        ``'/tmp/a.png'``) or a :class:`~pathlib.Path` is written exactly there."
        ),
        "return_fig": "    return_fig\n        Return the :class:`~matplotlib.figure.Figure`.",
    }


def result_data(adata: Any, mod: str | None, holds: Callable[[Any], bool]) -> AnnData:
    """The AnnData holding a result: ``adata``, modality ``mod``, or a MuData itself.

    A MuData with ``mod=None`` is used itself when it ``holds`` the result (the tools that fuse modalities write
    there), else its ``'rna'`` modality.
    """
    if is_mudata(adata) and mod is None and holds(adata):
        return adata
    return get_modality(adata, mod)


def uns_result(adata: AnnData, key: str, fields: Sequence[str], *, what: str, run: str) -> Mapping[str, Any]:
    """``adata.uns[key]`` holding ``fields``, or a :class:`KeyError` naming the function that writes it."""
    result = adata.uns.get(key)
    if not isinstance(result, Mapping) or any(f not in result for f in fields):
        msg = f"No {what} in `adata.uns[{key!r}]`. Run `{run}` first."
        raise KeyError(msg)
    return result


def obs_column(adata: AnnData, key: str, *, fix: str) -> pd.Series:
    """``adata.obs[key]``, or a :class:`KeyError` naming the columns there and ``fix``, the remedy."""
    if key not in adata.obs:
        msg = f"`{key}` not found in `adata.obs` (available: {list(adata.obs.columns)}). {fix}"
        raise KeyError(msg)
    return adata.obs[key]


def ordered_categories(values: pd.Series) -> list[str]:
    """The categories of a column as strings: in their order for a categorical, else sorted (as scanpy makes them)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    return sorted({str(v) for v in values.dropna()})


def default_palette(n: int) -> list[str]:
    """Scanpy's default colours for ``n`` categories (20, 28 or 102 colours, grey beyond)."""
    from scanpy.plotting import palettes

    for palette in (palettes.default_20, palettes.default_28, palettes.default_102):
        if n <= len(palette):
            return list(palette[:n])
    return ["#7f7f7f"] * n


def category_colors(adata: AnnData, key: str, extra: Sequence[str] = ()) -> dict[str, str]:
    """``{category: colour}`` of ``adata.obs[key]``, and of the categories in ``extra`` that it lacks.

    ``.uns[f'{key}_colors']`` when it covers every category (as scanpy reads it), else scanpy's default
    palette; categories only in ``extra`` get the next unused colours. Nothing is written into ``adata``
    (scanpy's own plots store the default palette; these do not).
    """
    from matplotlib.colors import is_color_like, to_hex

    categories = ordered_categories(adata.obs[key]) if key in adata.obs else []
    stored = adata.uns.get(f"{key}_colors")
    stored = [] if stored is None else [str(c) for c in np.asarray(stored).ravel()]
    ok = len(stored) >= len(categories) and all(is_color_like(c) for c in stored[: len(categories)])
    colors = dict(zip(categories, stored if ok else default_palette(len(categories)), strict=False))
    more = [c for c in dict.fromkeys(map(str, extra)) if c not in colors]
    used = {to_hex(c) for c in colors.values()}
    spare = [c for c in default_palette(len(colors) + len(more)) if to_hex(c) not in used]
    spare += ["#7f7f7f"] * len(more)
    colors.update(zip(more, spare, strict=False))
    return colors


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``(figure, axes)``: ``ax`` and its figure, or a new figure of ``figsize``."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def figure_path(save: bool | str | os.PathLike, name: str) -> Path:
    """Where ``save=`` writes a figure called ``name``.

    ``True`` or a suffix: into scanpy's ``figdir``; a path with a folder (or a :class:`~os.PathLike`): exactly there.
    """
    import scanpy as sc

    default_format = sc.settings.file_format_figs
    if isinstance(save, os.PathLike) or (isinstance(save, str) and ("/" in save or os.sep in save)):
        return Path(save)
    suffix = save if isinstance(save, str) else ""
    if not Path(suffix).suffix:
        suffix += f".{default_format}"
    return Path(sc.settings.figdir) / f"{name}{suffix}"


def finish_figure(
    fig: Figure,
    axes: list[Axes],
    name: str,
    *,
    show: bool | None,
    save: bool | str | os.PathLike | None,
    return_fig: bool,
) -> Figure | list[Axes] | None:
    """Save and show a figure the scanpy way; return the figure, the axes (``show=False``) or ``None``.

    ``save``: see :func:`figure_path`. A path without an extension is written in ``scanpy.settings.file_format_figs``.
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    if save:
        path = figure_path(save, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lstrip(".") or sc.settings.file_format_figs
        fig.savefig(path, bbox_inches="tight", format=fmt)  # dpi from rcParams, as set by sc.set_figure_params
        logg.info(f"saved figure to {path}")
    show = sc.settings.autoshow if show is None else show
    if return_fig:
        return fig
    if show:
        plt.show()
        return None
    return axes


def style_axes(ax: Axes) -> None:
    """The plain look of every panel: no top and right spines."""
    ax.spines[["top", "right"]].set_visible(False)
