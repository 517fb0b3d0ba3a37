"""sl.pl.gene_embedding: the genes' text embeddings on a 2-d map, coloured by a GO term, markers or a .var column."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

import sc_llm as sl

MARKERS = {"B": ["CD79A", "CD79B", "MS4A1"], "NK": ["GNLY", "NKG7", "PRF1"], "Mono": ["CD14", "LYZ", "S100A8"]}


@pytest.fixture(scope="module")
def genes(tiny_st_dir):
    """140 human genes (markers, B cell receptor signalling genes, others) with tiny-encoder gene embeddings."""
    names = [g for group in MARKERS.values() for g in group]
    names += ["CD19", "CD22", "BLK", "LYN", "SYK", "BTK", "CD81", "PTPRC"]  # B cell receptor signalling
    table = sl.datasets.gene_descriptions("human")
    pool = table.index[(table["gene_type"] == "protein-coding") & (table["go_ids"] != "")].difference(names)
    names += [*np.random.default_rng(0).choice(pool, 130, replace=False), "NOT_A_GENE"]
    adata = ad.AnnData(np.ones((2, len(names)), np.float32), var=pd.DataFrame(index=names))
    adata.var["kind"] = pd.Categorical(["marker"] * 9 + ["other"] * (len(names) - 9))
    sl.tl.gene_embeddings(adata, model=str(tiny_st_dir), progress=False)
    return adata


def points(ax):
    return sum(c.get_offsets().shape[0] for c in ax.collections)


def test_go_term_by_name_highlights_its_genes(genes, tmp_path):
    before = (list(genes.uns), list(genes.var.columns), list(genes.varm))
    fig = sl.pl.gene_embedding(
        genes, color="B cell receptor signaling pathway", basis="pca", return_fig=True, save=tmp_path / "g.png"
    )
    assert (tmp_path / "g.png").is_file()
    (ax,) = fig.axes
    assert points(ax) == 147  # every gene with text; NOT_A_GENE has none
    title = ax.get_title()
    assert title.startswith("147 genes (X_gene_text): GO:0050853 B cell receptor signaling pathway (")
    n_go = int(title.split("(")[-1].split()[0])
    assert 6 <= n_go <= 12
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["B cell receptor signaling pathway", "other"]
    highlighted = [c for c in ax.collections if to_hex(c.get_facecolor()[0]) != "#d5d8dc"]
    assert sum(c.get_offsets().shape[0] for c in highlighted) == n_go
    assert ax.get_xlabel().startswith("PC1 (")
    assert (list(genes.uns), list(genes.var.columns), list(genes.varm)) == before  # plots change nothing


def test_pca_coordinates_are_the_pca_of_unit_vectors(genes):
    from sklearn.decomposition import PCA

    fig = sl.pl.gene_embedding(genes, color="GO:0050853", basis="pca", return_fig=True)
    mask = genes.var["X_gene_text_has_text"].to_numpy()
    G = genes.varm["X_gene_text"][mask]
    expected = PCA(n_components=32, random_state=0).fit_transform(G / np.linalg.norm(G, axis=1, keepdims=True))
    shown = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    got = np.sort(np.round(np.abs(shown), 4), axis=0)
    np.testing.assert_allclose(got, np.sort(np.round(np.abs(expected[:, :2]), 4), axis=0), atol=2e-4)


def test_markers_are_coloured_and_labelled_on_a_umap(genes):
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # umap-learn's import-time ImportWarning
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # noqa: F401
    _, ax = plt.subplots()
    assert sl.pl.gene_embedding(genes, markers=MARKERS, n_neighbors=5, ax=ax, show=False) == [ax]
    assert ax.get_xlabel() == "UMAP1" and points(ax) == 147
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["B", "NK", "Mono", "other"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(g for group in MARKERS.values() for g in group)


def test_a_var_column_and_no_colour(genes):
    fig = sl.pl.gene_embedding(genes, color="kind", basis="pca", return_fig=True)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["marker", "other"]
    fig = sl.pl.gene_embedding(genes, basis="pca", return_fig=True)
    assert fig.axes[0].get_title().endswith("genes with text") and fig.axes[0].get_legend() is None


def test_bad_inputs(genes):
    with pytest.raises(ValueError, match="either `color`"):
        sl.pl.gene_embedding(genes, color="kind", markers=MARKERS)
    with pytest.raises(KeyError, match=r"neither a GO id .* Terms containing it: \['B cell receptor signaling"):
        sl.pl.gene_embedding(genes, color="B cell receptor signaling")
    with pytest.raises(ValueError, match="`basis` must be one of"):
        sl.pl.gene_embedding(genes, basis="tsne")
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.gene_embeddings"):
        sl.pl.gene_embedding(genes, key="X_other")
    with pytest.raises(TypeError, match="must map each group"):
        sl.pl.gene_embedding(genes, markers=["CD79A"])
