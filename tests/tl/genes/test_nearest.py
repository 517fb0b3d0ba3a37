"""sl.tl.nearest_genes: nearest genes by cosine in the gene-text embedding, against brute force."""

import numpy as np
import pytest
from scipy import sparse

import sc_llm as sl


@pytest.fixture
def adata(with_gene_vectors):
    X = sparse.random(5, 30, density=0.5, format="csr", random_state=0, dtype=np.float32)
    adata, _, _ = with_gene_vectors(X, n_textless=3, dim=8)
    return adata


def test_matches_brute_force_cosine(adata):
    G, names = adata.varm["X_gene_text"], list(adata.var_names)
    before = (list(adata.uns), list(adata.var.columns))
    table = sl.tl.nearest_genes(adata, ["G5", "G12"], n=4)
    assert list(table.columns) == ["gene", "rank", "neighbor", "cosine"]
    assert table["gene"].tolist() == ["G5"] * 4 + ["G12"] * 4 and table["rank"].tolist() == [1, 2, 3, 4] * 2
    for gene, rows in table.groupby("gene", sort=False):
        q = G[names.index(gene)]
        cos = {n: float(G[j] @ q) for j, n in enumerate(names) if j >= 3 and n != gene}  # unit rows; G0-G2 no text
        best = sorted(cos, key=cos.get, reverse=True)[:4]
        assert rows["neighbor"].tolist() == best
        np.testing.assert_allclose(rows["cosine"], [cos[b] for b in best], atol=1e-6)
    assert (list(adata.uns), list(adata.var.columns)) == before  # reads only


def test_one_gene_as_a_string_and_n_clipped(adata):
    table = sl.tl.nearest_genes(adata, "G3", n=100)
    assert len(table) == 26  # 27 genes with text, less the gene itself
    assert "G3" not in set(table["neighbor"]) and not {"G0", "G1", "G2"} & set(table["neighbor"])
    assert table["cosine"].is_monotonic_decreasing


def test_bad_genes_are_refused(adata):
    with pytest.raises(KeyError, match=r"not genes of adata: \['g4'\] \(same names in another case: \['G4'\]\)"):
        sl.tl.nearest_genes(adata, ["G5", "g4"])
    with pytest.raises(KeyError, match=r"2 gene\(s\) are not genes of adata"):
        sl.tl.nearest_genes(adata, ["G5", "NOPE", "ALSO_NOPE"])
    with pytest.raises(ValueError, match=r"have no text.*\['G1'\]"):
        sl.tl.nearest_genes(adata, ["G1", "G5"])
    with pytest.raises(ValueError, match=r"`genes` is empty"):
        sl.tl.nearest_genes(adata, [])
    with pytest.raises(ValueError, match=r"`n` must be an integer ≥ 1"):
        sl.tl.nearest_genes(adata, "G5", n=0)
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.gene_embeddings"):
        sl.tl.nearest_genes(adata, "G5", key="X_other")


def test_minilm_gene_neighbours(pbmc, tiny_st_dir):
    """On real gene embeddings of the raw genes (a tiny random encoder here: shape and bookkeeping only)."""
    sl.tl.gene_embeddings(pbmc, model=str(tiny_st_dir), progress=False)
    table = sl.tl.nearest_genes(pbmc, "CD79A CD79B", n=3)
    assert table.shape == (6, 4) and set(table["neighbor"]) <= set(pbmc.raw.var_names)
