"""``sl.pl.gene_embedding``: a 2-d map (UMAP or PCA) of the genes' text embeddings, coloured by a GO term or markers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._utils._anndata import get_modality
from .._utils._docs import doc_params
from .._utils._validation import as_marker_mapping, check_count
from ._base import default_palette, finish_figure, new_axes, plot_docs, style_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OTHER_COLOR = "#d5d8dc"
BASES = ("umap", "pca")


def gene_coordinates(vectors: np.ndarray, *, basis: str, n_neighbors: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """2-d coordinates of unit-norm gene vectors and the axis labels: PCA, or UMAP on their 50-d PCA (cosine)."""
    from sklearn.decomposition import PCA

    n_comps = min(50, vectors.shape[0] - 1, vectors.shape[1])
    if n_comps < 2:
        msg = f"Too few genes with text for a 2-d map ({vectors.shape[0]}); at least 3 are needed."
        raise ValueError(msg)
    pca = PCA(n_components=n_comps, random_state=seed)
    Z = pca.fit_transform(vectors)
    if basis == "pca":
        share = 100 * pca.explained_variance_ratio_
        return Z[:, :2], [f"PC{i + 1} ({share[i]:.1f}%)" for i in range(2)]
    import anndata as ad
    import scanpy as sc

    genes = ad.AnnData(obsm={"X_pca": Z.astype(np.float32)}, obs=pd.DataFrame(index=np.arange(len(Z)).astype(str)))
    k = min(n_neighbors, len(Z) - 1)
    sc.pp.neighbors(genes, use_rep="X_pca", n_neighbors=k, metric="cosine", random_state=seed)
    sc.tl.umap(genes, random_state=seed)
    return genes.obsm["X_umap"], ["UMAP1", "UMAP2"]


def _groups(names: pd.Index, var: pd.DataFrame, color: str | None, markers: Any, organism: str) -> tuple[Any, str]:
    """``(per-gene group labels or numbers, title)`` for ``color`` (a ``.var`` column or GO term) or ``markers``."""
    if color is not None and markers is not None:
        msg = "Pass either `color` (a `.var` column or a GO term) or `markers` ({group: genes}), not both."
        raise ValueError(msg)
    if markers is not None:
        mapping = as_marker_mapping(markers)
        labels = np.full(len(names), "other", dtype=object)
        for group, genes in reversed(list(mapping.items())):  # a gene in several groups takes the first
            labels[np.isin(names.astype(str), list(genes))] = group
        missing = sorted(set().union(*mapping.values()) - set(names.astype(str)))
        title = "markers" + (f" ({len(missing)} not among them: {', '.join(missing[:5])})" if missing else "")
        return pd.Categorical(labels, categories=[*mapping, "other"]), title
    if color is None:
        return None, "genes with text"
    if color in var.columns:
        return var[color].to_numpy(), color
    from ..tl.genes._go import go_gene_mask

    mask, go_id, name = go_gene_mask(names.astype(str), color, organism=organism)
    labels = pd.Categorical(np.where(mask, name, "other"), categories=[name, "other"])
    return labels, f"{go_id} {name} ({int(mask.sum())} genes)"


def _draw(ax: Axes, Z: np.ndarray, values: Any, names: np.ndarray, *, size: float, label: np.ndarray | None) -> None:
    if values is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=size, c="#5d6d7e", linewidths=0)
    elif isinstance(values, pd.Categorical) or not np.issubdtype(np.asarray(values).dtype, np.number):
        values = pd.Categorical(values)
        groups = [c for c in values.categories if c != "other"]
        colors = dict(zip(groups, default_palette(len(groups)), strict=True)) | {"other": OTHER_COLOR}
        for group in ["other", *groups]:  # highlighted genes drawn on top
            rows = np.asarray(values == group)
            if rows.any():
                top = group != "other"
                ax.scatter(*Z[rows].T, s=size * (2.2 if top else 1), c=colors[group], label=group, zorder=1 + top)
        handles, names_ = ax.get_legend_handles_labels()
        order = sorted(range(len(names_)), key=lambda i: names_[i] == "other")  # the groups first, 'other' last
        ax.legend(
            [handles[i] for i in order],
            [names_[i] for i in order],
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
            fontsize="small",
            markerscale=1.5,
        )
    else:
        points = ax.scatter(Z[:, 0], Z[:, 1], s=size, c=np.asarray(values, dtype=float), cmap="viridis")
        ax.figure.colorbar(points, ax=ax, fraction=0.05, pad=0.02)
    if label is not None:
        for i in np.flatnonzero(label):
            ax.annotate(names[i], Z[i], fontsize=7, xytext=(2, 2), textcoords="offset points", zorder=3)


@doc_params(**plot_docs("gene_embedding"))
def gene_embedding(
    adata: AnnData,
    *,
    key: str = "X_gene_text",
    color: str | None = None,
    markers: Any = None,
    basis: Literal["umap", "pca"] = "umap",
    use_raw: bool | None = None,
    organism: str | None = None,
    n_neighbors: int = 15,
    seed: int = 0,
    size: float | None = None,
    mod: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | list[Axes] | None:
    """Plot the genes in their text-embedding space (:func:`sc_llm.tl.gene_embeddings`), one dot per gene.

    Genes without text are left out. The map is a PCA of the unit-norm gene vectors, or a UMAP of their 50-d
    PCA with cosine neighbours (computed for the plot, never stored). Colour by a ``.var`` column, by a GO
    term (the genes it annotates directly in the shipped table, highlighted), or by marker sets (each set in
    its colour, its genes labelled): genes that belong together should sit together when the descriptions
    carry that knowledge.

    Parameters
    ----------
    adata
        Annotated data matrix with gene embeddings.
    key
        ``.varm`` key of the gene embeddings.
    color
        A ``.var`` column (categorical or numeric), or a GO term: its id (``'GO:0050853'``) or exact name
        (``'B cell receptor signaling pathway'``).
    markers
        ``{group: genes}``, e.g. ``{'B': ['CD79A', 'MS4A1'], 'NK': ['GNLY', 'NKG7']}``; instead of ``color``.
    basis
        ``'umap'`` or ``'pca'``.
    use_raw
        Plot the genes of ``.raw`` (``.raw.varm``) or of ``.var``; default ``.raw`` when present.
    organism
        The shipped table a GO term is looked up in (default: the ``organism`` of the gene embeddings, else
        ``'human'``).
    n_neighbors
        UMAP neighbours.
    seed
        Seed of PCA and UMAP.
    size
        Dot size (default from the number of genes).
    mod
        Modality of a MuData (default ``'rna'``).
    {ax}
    {show}
    {save}
    {return_fig}

    Returns
    -------
    The figure if ``return_fig``; the list of axes if ``show=False``; otherwise ``None``.
    """
    from ..tl.genes._space import gene_table, read_gene_embeddings, unit_rows

    if basis not in BASES:
        msg = f"`basis` must be one of {BASES}, got {basis!r}."
        raise ValueError(msg)
    check_count(n_neighbors, "n_neighbors", minimum=2)
    target = get_modality(adata, mod)
    table, where = gene_table(target, use_raw)
    emb = read_gene_embeddings(target, key, raw=where == "adata.raw")
    names = emb.genes[emb.has_text]
    organism = organism or emb.params.get("organism") or "human"
    values, title = _groups(names, table.var.loc[emb.has_text], color, markers, organism)
    Z, labels = gene_coordinates(unit_rows(emb.vectors[emb.has_text]), basis=basis, n_neighbors=n_neighbors, seed=seed)
    fig, ax = new_axes(ax, (5.6, 4.4))
    size = size or float(np.clip(3000 / len(names), 2, 40))
    label = np.asarray(values != "other") if markers is not None else None
    _draw(ax, Z, values, np.asarray(names.astype(str)), size=size, label=label)
    ax.set_xlabel(labels[0], fontsize="small")
    ax.set_ylabel(labels[1], fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{len(names)} genes ({key}): {title}", fontsize="medium")
    style_axes(ax)
    return finish_figure(fig, [ax], "gene_embedding", show=show, save=save, return_fig=return_fig)
