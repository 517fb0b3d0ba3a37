"""sl.tl.gene_embeddings: gene descriptions embedded per gene, genes without text explicit, cached by model and text."""

import itertools

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.core.text.texts import encode_texts


def snapshot(adata):
    raw = adata.raw
    return (
        list(adata.varm),
        list(adata.var.columns),
        list(adata.uns),
        None if raw is None else (list(raw.varm), list(raw.var.columns)),
    )


@pytest.fixture
def small(pbmc):
    """60 cells of pbmc68k_reduced with 700 of its genes in .var and all 765 in .raw (as after an HVG subset)."""
    return pbmc[:60, :700].copy()


def test_writes_raw_genes_with_mask_zero_rows_and_params(small, tiny_st_dir, tmp_path):
    sl.tl.gene_embeddings(small, model=str(tiny_st_dir), cache_dir=tmp_path, batch_size=100, progress=False)
    G = small.raw.varm["X_gene_text"]
    mask = small.raw.var["X_gene_text_has_text"]
    assert "X_gene_text" not in small.varm  # .raw is present: its genes are the ones embedded
    assert G.shape == (765, 32) and G.dtype == np.float32 and mask.dtype == bool
    assert mask.sum() == 751
    assert not G[~mask.to_numpy()].any()  # genes without text: zero rows, never a made-up vector
    np.testing.assert_allclose(np.linalg.norm(G[mask.to_numpy()], axis=1), 1.0, rtol=1e-5)
    assert mask["CD79A"] and mask["MS4A1"]
    p = small.uns["gene_text"]["params"]
    assert p["genes"] == "raw.var" and p["organism"] == "human"
    assert p["match"] == {"symbol": 700, "symbol_case": 0, "alias": 51, "ensembl": 0, "none": 14}
    assert (p["n_genes"], p["n_with_text"], p["n_texts"]) == (765, 751, 751)
    assert p["coverage"] == pytest.approx(751 / 765)
    assert p["template"] == "{symbol}: {name}. GO: {go_terms}. {summary}"
    assert p["fingerprint"] and p["pooling"] == "cls" and p["max_length"] == 32
    assert 500 < p["n_truncated"] < 751  # a 32-token context cuts most GO lists
    assert (p["n_embedded"], p["n_cached"]) == (751, 0) and p["cache"].startswith(str(tmp_path))
    assert len(p["identity_sha256"]) == 64 and len(p["texts_sha256"]) == 64


def test_gene_vector_is_the_encoder_vector_of_its_text(small, tiny_st_dir):
    from sc_llm.core.text.encoder import TextEncoder
    from sc_llm.datasets._gene_descriptions import gene_descriptions, gene_text

    sl.tl.gene_embeddings(small, model=str(tiny_st_dir), use_raw=False, progress=False)
    assert small.varm["X_gene_text"].shape == (700, 32)
    genes = ["CD79B", "GNLY", "LYZ"]
    texts = gene_text(gene_descriptions("human").loc[genes], "{symbol}: {name}. GO: {go_terms}. {summary}")
    assert texts["LYZ"].startswith("LYZ: lysozyme. GO: ")
    ref, _ = encode_texts(TextEncoder(str(tiny_st_dir), device="cpu"), texts.tolist(), progress=False)
    rows = small.var_names.get_indexer(genes)
    np.testing.assert_allclose(small.varm["X_gene_text"][rows], ref, atol=1e-5)
    assert small.uns["gene_text"]["params"]["genes"] == "var"


def test_rerun_reads_everything_from_the_cache(small, tiny_st_dir, tmp_path):
    kw = {"model": str(tiny_st_dir), "cache_dir": tmp_path, "progress": False, "copy": True}
    first = sl.tl.gene_embeddings(small, **kw)
    second = sl.tl.gene_embeddings(small, **kw)
    assert second.uns["gene_text"]["params"]["n_embedded"] == 0
    assert second.uns["gene_text"]["params"]["n_cached"] == 751
    np.testing.assert_array_equal(second.raw.varm["X_gene_text"], first.raw.varm["X_gene_text"])
    other = sl.tl.gene_embeddings(small, max_length=16, **kw)  # another encoder identity: embedded anew
    assert other.uns["gene_text"]["params"]["n_embedded"] == 751
    sub = sl.tl.gene_embeddings(small[:, :100].copy(), use_raw=False, **kw)  # another dataset's genes: from the cache
    assert sub.uns["gene_text"]["params"]["n_embedded"] == 0
    with pytest.warns(UserWarning, match="Replacing the existing") as record:
        sl.tl.gene_embeddings(first, **kw)
    messages = " ".join(str(w.message) for w in record)
    assert "`adata.raw.varm['X_gene_text']` and `adata.raw.var['X_gene_text_has_text']`" in messages
    assert "`adata.uns['gene_text']`" in messages


def test_copy_leaves_the_input_unchanged(small, tiny_st_dir):
    before = snapshot(small)
    out = sl.tl.gene_embeddings(small, model=str(tiny_st_dir), progress=False, copy=True)
    assert snapshot(small) == before
    assert "X_gene_text" in out.raw.varm and "gene_text" in out.uns


def test_user_texts_from_a_dict_and_a_file(tiny_st_dir, tmp_path):
    adata = ad.AnnData(np.ones((3, 4), np.float32), var=pd.DataFrame(index=["CD14", "LYZ", "NOPE", "GNLY"]))
    summaries = {"CD14": "A monocyte surface receptor for LPS.", "LYZ": "Lysozyme, a bacteriolytic enzyme."}
    sl.tl.gene_embeddings(adata, model=str(tiny_st_dir), descriptions=summaries, key_added="X_s", progress=False)
    assert adata.var["X_s_has_text"].tolist() == [True, True, False, False]
    p = adata.uns["s"]["params"]
    assert p["organism"] == "none" and p["descriptions"] == "a dict of 2 genes"
    from sc_llm.core.text.encoder import TextEncoder

    ref, _ = encode_texts(TextEncoder(str(tiny_st_dir), device="cpu"), ["CD14. " + summaries["CD14"]], progress=False)
    np.testing.assert_allclose(adata.varm["X_s"][0], ref[0], atol=1e-5)
    path = tmp_path / "genes.tsv"
    pd.DataFrame({"symbol": ["GNLY"], "name": ["granulysin"]}).to_csv(path, sep="\t", index=False)
    sl.tl.gene_embeddings(adata, model=str(tiny_st_dir), descriptions=path, template="{name}", progress=False)
    assert adata.var["X_gene_text_has_text"].tolist() == [False, False, False, True]
    assert adata.uns["gene_text"]["params"]["descriptions"] == str(path)


def test_ensembl_var_names_with_a_symbol_column(tiny_st_dir):
    var = pd.DataFrame(
        {"symbol": ["CD79A_renamed", "GNLY", None]}, index=["ENSG00000105369.9", "ENSG00000115523", "ENSG_FAKE"]
    )
    adata = ad.AnnData(np.ones((2, 3), np.float32), var=var)
    sl.tl.gene_embeddings(adata, model=str(tiny_st_dir), gene_symbols="symbol", progress=False)
    assert adata.var["X_gene_text_has_text"].tolist() == [True, True, False]
    assert adata.uns["gene_text"]["params"]["match"]["ensembl"] == 1  # CD79A by its Ensembl id
    assert adata.uns["gene_text"]["params"]["match"]["symbol"] == 1


def test_bad_inputs_are_refused_and_leave_adata_unchanged(small, tiny_st_dir):
    before = snapshot(small)
    nothing = small.copy()
    nothing.raw = None
    nothing.var_names = [f"gene_{i}" for i in range(nothing.n_vars)]
    with pytest.raises(ValueError, match=r"None of the 700 genes .* matched"):
        sl.tl.gene_embeddings(nothing, model=str(tiny_st_dir), progress=False)
    assert "X_gene_text" not in nothing.varm and "gene_text" not in nothing.uns
    with pytest.raises(ValueError, match="organism must be one of"):
        sl.tl.gene_embeddings(small, model=str(tiny_st_dir), organism="yeast", progress=False)
    with pytest.raises(TypeError, match=r"`descriptions` must be None"):
        sl.tl.gene_embeddings(small, model=str(tiny_st_dir), descriptions=42, progress=False)
    with pytest.raises(KeyError, match="gene_symbols='nope'"):
        sl.tl.gene_embeddings(small, model=str(tiny_st_dir), gene_symbols="nope", progress=False)
    with pytest.raises(ValueError, match="Template field"):
        sl.tl.gene_embeddings(small, model=str(tiny_st_dir), template="{nope}", progress=False)
    with pytest.raises(TypeError, match="batch_size"):
        sl.tl.gene_embeddings(small, model=str(tiny_st_dir), batch_size=2.5, progress=False)
    with pytest.raises(ValueError, match=r"has no `\.raw`"):
        sl.tl.gene_embeddings(nothing, model=str(tiny_st_dir), use_raw=True, progress=False)
    assert snapshot(small) == before


@pytest.mark.slow
def test_minilm_puts_marker_genes_of_one_cell_type_closer_than_random_pairs(minilm_path):
    """The sanity check of benchmarks/bench_genept.py on a small gene set, with the real MiniLM."""
    markers = {"B": ["CD79A", "CD79B", "MS4A1"], "NK": ["GNLY", "NKG7", "PRF1"], "Mono": ["CD14", "LYZ", "S100A8"]}
    table = sl.datasets.gene_descriptions("human")
    pool = table.index[(table["gene_type"] == "protein-coding") & (table["go_ids"] != "")]
    marker_genes = [g for names in markers.values() for g in names]
    others = list(np.random.default_rng(0).choice(pool.difference(marker_genes), 150, replace=False))
    genes = marker_genes + others
    adata = ad.AnnData(np.ones((1, len(genes)), np.float32), var=pd.DataFrame(index=genes))
    sl.tl.gene_embeddings(adata, model=minilm_path, progress=False)
    G = adata.varm["X_gene_text"]
    assert adata.var["X_gene_text_has_text"].all()
    S = G @ G.T
    random_pairs = S[9:, 9:][np.triu_indices(150, 1)]
    for group, names in markers.items():
        idx = [genes.index(g) for g in names]
        within = np.mean([S[i, j] for i, j in itertools.combinations(idx, 2)])
        assert within > random_pairs.mean() + 0.05, (group, within, random_pairs.mean())


def test_h5ad_round_trip_keeps_everything_gene_text_embed_needs(small, tiny_st_dir, tmp_path):
    sl.tl.gene_embeddings(small, model=str(tiny_st_dir), progress=False)
    small.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.raw.varm["X_gene_text"], small.raw.varm["X_gene_text"])
    assert back.raw.var["X_gene_text_has_text"].dtype == bool
    p = back.uns["gene_text"]["params"]
    assert p["gene_symbols"] == "none" and p["match"]["alias"] == 51  # None survives as 'none'; nested counts too
    sl.tl.gene_text_embed(back)
    assert back.obsm["X_genept_w"].shape == (60, 32)
