"""sl.tl.gene_text_embed (GenePT-w): weighted means of gene embeddings, checked against dense reference math."""

import warnings

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

import sc_llm as sl
from sc_llm.tl.genes._genept import genept_weights


def reference(X, G, has_text, *, weighting="expression", top_k=None):
    """Dense GenePT-w: for each cell, rank its expressed genes with text, weigh, average, normalise."""
    D = X.toarray() if sparse.issparse(X) else np.asarray(X)
    out = np.zeros((D.shape[0], G.shape[1]))
    for i, row in enumerate(D):
        genes = [j for j in np.argsort(-row, kind="stable") if row[j] > 0 and has_text[j]]
        genes = genes[:top_k] if top_k else genes
        w = [1 / np.log2(r + 2) if weighting == "rank" else row[j] for r, j in enumerate(genes)]
        v = sum(wi * G[j] for wi, j in zip(w, genes, strict=True)) if genes else np.zeros(G.shape[1])
        n = np.linalg.norm(v)
        out[i] = v / n if n > 0 else v
    return out


@pytest.mark.parametrize("weighting", ["expression", "rank"])
@pytest.mark.parametrize("top_k", [None, 1, 5])
def test_matches_dense_reference(weighting, top_k, with_gene_vectors, random_expression):
    X = random_expression()
    adata, G, has_text = with_gene_vectors(X)
    with pytest.warns(UserWarning, match="1 of 40 cells express no gene with text"):
        sl.tl.gene_text_embed(adata, weighting=weighting, top_k=top_k, chunk_size=7)
    E = adata.obsm["X_genept_w"]
    np.testing.assert_allclose(E, reference(X, G, has_text, weighting=weighting, top_k=top_k), atol=1e-5)
    assert E.dtype == np.float32
    n = adata.obs["X_genept_w_n_genes"].to_numpy()
    expressed = np.asarray((X[:, has_text] > 0).sum(1)).ravel()
    np.testing.assert_array_equal(n, np.minimum(expressed, top_k) if top_k else expressed)
    assert n[0] == 0 and not E[0].any()  # the empty cell: a zero row, flagged
    p = adata.uns["genept_w"]["params"]
    assert p["weighting"] == weighting and p["top_k"] == (top_k if top_k else "none") and p["n_empty"] == 1
    assert p["matrix"] == "X" and p["n_genes_with_text"] == 27 and p["gene_embeddings"]["model"] == "m"
    assert len(p["gene_embeddings"]["checksum"]) == 64


def test_weights_kernel_ties_and_explicit_zeros():
    chunk = sparse.csr_matrix(np.array([[2.0, 2.0, 0.0, 1.0], [0.0, 3.0, 1.0, 0.0]], np.float32))
    chunk.data[chunk.data == 1.0] = 0.0  # stored zeros weigh nothing
    W = genept_weights(chunk, np.array([True, True, True, False]), weighting="rank", top_k=None).toarray()
    np.testing.assert_allclose(W, [[1.0, 1 / np.log2(3), 0, 0], [0, 1.0, 0, 0]])  # ties: column order


def test_dense_sparse_backed_and_chunk_size_agree(tmp_path, with_gene_vectors, random_expression):
    X = random_expression(n_obs=50, seed=1)
    adata, _, _ = with_gene_vectors(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sl.tl.gene_text_embed(adata, chunk_size=50)
        dense = adata.copy()
        dense.X = X.toarray()
        sl.tl.gene_text_embed(dense, chunk_size=3)
        adata.write_h5ad(tmp_path / "a.h5ad")
        backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
        sl.tl.gene_text_embed(backed, chunk_size=11, key_added="X_b")
    np.testing.assert_allclose(dense.obsm["X_genept_w"], adata.obsm["X_genept_w"], atol=1e-6)
    np.testing.assert_allclose(backed.obsm["X_b"], adata.obsm["X_genept_w"], atol=1e-6)


def test_weights_from_raw_use_the_raw_gene_embeddings(with_gene_vectors, random_expression):
    X = random_expression(n_vars=20, seed=2)
    adata, G, has_text = with_gene_vectors(X, raw=True)
    assert adata.n_vars == 10 and adata.raw.n_vars == 20
    with pytest.warns(UserWarning, match="express no gene"):
        sl.tl.gene_text_embed(adata, top_k=4)
    np.testing.assert_allclose(adata.obsm["X_genept_w"], reference(X, G, has_text, top_k=4), atol=1e-5)
    assert adata.uns["genept_w"]["params"]["matrix"] == "raw.X"
    with pytest.raises(KeyError, match=r"adata.raw.varm\['X_gene_text'\]` holds gene embeddings of its 20 genes"):
        sl.tl.gene_text_embed(adata, use_raw=False)


def test_same_genes_in_raw_and_var_share_their_gene_embeddings(with_gene_vectors, random_expression):
    X = random_expression(seed=6)
    adata, G, has_text = with_gene_vectors(X)
    adata.raw = adata  # the same 30 genes: the vectors of .varm serve the weights read from .raw
    with pytest.warns(UserWarning, match="express no gene"):
        sl.tl.gene_text_embed(adata)
    np.testing.assert_allclose(adata.obsm["X_genept_w"], reference(X, G, has_text), atol=1e-5)
    assert adata.uns["genept_w"]["params"]["matrix"] == "raw.X"


def test_layer_and_copy(with_gene_vectors, random_expression):
    X = random_expression(seed=3)
    adata, G, has_text = with_gene_vectors(X)
    adata.layers["lognorm"] = X.copy()
    adata.X = sparse.csr_matrix(X.shape, dtype=np.float32)
    with pytest.warns(UserWarning, match="express no gene"):
        out = sl.tl.gene_text_embed(adata, layer="lognorm", copy=True)
    assert "X_genept_w" not in adata.obsm and "genept_w" not in adata.uns
    np.testing.assert_allclose(out.obsm["X_genept_w"], reference(X, G, has_text), atol=1e-5)
    assert out.uns["genept_w"]["params"]["matrix"] == "layers['lognorm']"


def snapshot(adata):
    return list(adata.obsm), list(adata.obs.columns), list(adata.uns)


def test_bad_inputs_are_refused_and_leave_adata_unchanged(with_gene_vectors, random_expression):
    X = random_expression(seed=4)
    adata, _, _ = with_gene_vectors(X)
    before = snapshot(adata)
    with pytest.raises(KeyError, match=r"Run `sl.tl.gene_embeddings\(adata, key_added='X_nope'\)` first"):
        sl.tl.gene_text_embed(adata, key="X_nope")
    with pytest.raises(ValueError, match=r"`weighting` must be one of"):
        sl.tl.gene_text_embed(adata, weighting="mean")
    with pytest.raises(ValueError, match=r"`top_k` must be an integer ≥ 1"):
        sl.tl.gene_text_embed(adata, top_k=0)
    bad = adata.copy()
    bad.X = bad.X.copy()
    bad.X.data[3] = -1.0  # scaled data
    with pytest.raises(ValueError, match="negative value"):
        sl.tl.gene_text_embed(bad)
    assert snapshot(bad) == before
    wide = adata.copy()
    wide.varm["X_gene_text"] = np.zeros((adata.n_vars, 0), np.float32)  # a mismatched .varm shape
    with pytest.raises(ValueError, match=r"has shape \(30, 0\)"):
        sl.tl.gene_text_embed(wide)
    apart = adata.copy()
    apart.var["X_gene_text_has_text"] = True  # the mask says the zero rows have text
    with pytest.raises(ValueError, match="disagree for 3 genes"):
        sl.tl.gene_text_embed(apart)
    nomask = adata.copy()
    del nomask.var["X_gene_text_has_text"]
    with pytest.raises(ValueError, match=r"not written by `sl\.tl\.gene_embeddings`"):
        sl.tl.gene_text_embed(nomask)
    none = adata.copy()
    none.X = sparse.csr_matrix(none.X.shape, dtype=np.float32)
    with pytest.raises(ValueError, match=r"No cell of adata\.X expresses a gene with text"):
        sl.tl.gene_text_embed(none)
    assert snapshot(adata) == before and snapshot(none) == before


def test_raw_counts_are_warned_about_once(with_gene_vectors, random_expression):
    rng = np.random.default_rng(5)
    counts = sparse.csr_matrix(rng.poisson(20.0, (30, 12)).astype(np.float32))
    adata, _, _ = with_gene_vectors(counts, n_textless=0)
    with pytest.warns(UserWarning, match="looks like raw counts") as record:
        sl.tl.gene_text_embed(adata, chunk_size=5)
    assert sum("raw counts" in str(w.message) for w in record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.tl.gene_text_embed(adata, weighting="rank", key_added="X_rank")  # ranks ignore the scale


def test_real_gene_embeddings_end_to_end(pbmc, tiny_st_dir):
    adata = pbmc[:50].copy()
    sl.tl.gene_embeddings(adata, model=str(tiny_st_dir), progress=False)
    sl.tl.gene_text_embed(adata)
    E = adata.obsm["X_genept_w"]
    assert E.shape == (50, 32)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    p = adata.uns["genept_w"]["params"]
    gp = adata.uns["gene_text"]["params"]
    assert p["gene_embeddings"]["identity_sha256"] == gp["identity_sha256"]
    assert p["gene_embeddings"]["fingerprint"] == gp["fingerprint"] and p["n_genes_with_text"] == 751
    sl.tl.knn_annotate(adata, use_rep="X_genept_w", label_key="bulk_labels")  # usable as any representation
