import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import sc_llm as sl


def expected_sentences(adata: ad.AnnData, names=None) -> list[str]:
    dense = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X)
    names = list(adata.var_names) if names is None else list(names)
    out = []
    for row in dense:
        order = sorted((j for j in range(len(row)) if row[j] > 0), key=lambda j: (-row[j], j))
        out.append(" ".join(names[j] for j in order))
    return out


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense", "int"])
def test_formats_match_reference(small_adata, fmt):
    expected = expected_sentences(small_adata)
    if fmt == "csc":
        small_adata.X = small_adata.X.tocsc()
    elif fmt == "dense":
        small_adata.X = small_adata.X.toarray()
    elif fmt == "int":
        small_adata.X = small_adata.X.astype(np.int32)
    sl.pp.cell_sentences(small_adata, chunk_size=7)
    assert small_adata.obs["cell_sentence"].tolist() == expected
    assert small_adata.uns["cell_sentence"]["params"]["tie_break"] == "var_order"


def test_n_genes_key_added_and_copy(small_adata):
    out = sl.pp.cell_sentences(small_adata, n_genes=3, key_added="top3", copy=True)
    assert "top3" not in small_adata.obs
    full = expected_sentences(small_adata)
    assert out.obs["top3"].tolist() == [" ".join(s.split()[:3]) for s in full]
    assert out.uns["top3"]["params"]["n_genes"] == 3


def test_layer_and_raw(pbmc):
    sl.pp.cell_sentences(pbmc)  # pbmc68k_reduced has .raw: used by default
    raw_view = ad.AnnData(pbmc.raw.X, var=pbmc.raw.var)
    assert pbmc.obs["cell_sentence"].tolist()[:20] == expected_sentences(raw_view[:20])
    assert pbmc.uns["cell_sentence"]["params"]["use_raw"] is True
    pbmc.layers["lognorm"] = pbmc.raw.X.copy()  # same genes as .X in pbmc68k_reduced
    sl.pp.cell_sentences(pbmc, layer="lognorm", key_added="from_layer")
    assert pbmc.obs["from_layer"].tolist() == pbmc.obs["cell_sentence"].tolist()
    assert pbmc.uns["from_layer"]["params"]["layer"] == "lognorm"
    with pytest.raises(KeyError, match="Layer 'nope' not found"):
        sl.pp.cell_sentences(pbmc, layer="nope")


def test_scaled_data_rejected_and_adata_unchanged(pbmc):
    before = pbmc.obs.copy()
    with pytest.raises(ValueError, match="negative values"):
        sl.pp.cell_sentences(pbmc, use_raw=False)  # .X is scaled
    pd.testing.assert_frame_equal(pbmc.obs, before)
    assert "cell_sentence" not in pbmc.uns


def test_nan_rejected(small_adata):
    small_adata.X.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sl.pp.cell_sentences(small_adata)
    assert "cell_sentence" not in small_adata.obs


def test_gene_symbols_and_ensembl_error(small_adata):
    symbols = list(small_adata.var_names)
    small_adata.var["symbol"] = symbols
    small_adata.var_names = [f"ENSG{i:011d}" for i in range(small_adata.n_vars)]
    with pytest.raises(ValueError, match="gene_symbols="):
        sl.pp.cell_sentences(small_adata)
    sl.pp.cell_sentences(small_adata, gene_symbols="symbol")
    assert small_adata.obs["cell_sentence"].tolist() == expected_sentences(small_adata, symbols)
    with pytest.raises(KeyError, match="not a column"):
        sl.pp.cell_sentences(small_adata, gene_symbols="missing")


def test_empty_cells_warn(small_adata):
    dense = small_adata.X.toarray()
    dense[3] = 0
    small_adata.X = sparse.csr_matrix(dense)
    with pytest.warns(UserWarning, match="1 cell"):
        sl.pp.cell_sentences(small_adata)
    assert small_adata.obs["cell_sentence"].iloc[3] == ""


def test_backed_mode_in_chunks(small_adata, tmp_path):
    expected = expected_sentences(small_adata)
    path = tmp_path / "small.h5ad"
    small_adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    sl.pp.cell_sentences(backed, chunk_size=8)
    assert backed.obs["cell_sentence"].tolist() == expected
    backed.file.close()


def test_mudata_modality(small_adata):
    import mudata

    mdata = mudata.MuData({"rna": small_adata})
    sl.pp.cell_sentences(mdata)
    assert mdata.mod["rna"].obs["cell_sentence"].tolist() == expected_sentences(small_adata)
    with pytest.raises(KeyError, match="Modality 'atac' not found"):
        sl.pp.cell_sentences(mdata, mod="atac")


def test_bad_arguments(small_adata):
    with pytest.raises(ValueError, match="n_genes"):
        sl.pp.cell_sentences(small_adata, n_genes=0)
    with pytest.raises(ValueError, match="use_raw=True"):
        sl.pp.cell_sentences(small_adata, use_raw=True)
