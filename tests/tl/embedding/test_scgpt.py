from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import sc_llm as sl

SRC = Path(__file__).resolve().parents[3] / "src" / "sc_llm"


def _tie_free(pbmc: ad.AnnData, n_cells: int | None = None) -> ad.AnnData:
    """pbmc68k's log-normalised ``.raw`` with a tiny distinct jitter on every non-zero value.

    scGPT breaks ties between equal quantile edges at random; without ties its binning is deterministic,
    so outputs can be compared cell by cell.
    """
    X = pbmc.raw.X.tocsr().astype(np.float32)[:n_cells]
    X.data += np.random.default_rng(1).uniform(0, 1e-3, X.nnz).astype(np.float32)
    return ad.AnnData(X, obs=pbmc.obs.iloc[: X.shape[0]].copy(), var=pd.DataFrame(index=pbmc.raw.var_names))


@pytest.fixture
def ckpt(make_scgpt) -> Path:
    """One key naming is enough where the test is not about loading (both are covered above and in tests/core)."""
    return make_scgpt()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_parity_with_scgpt_embed_data(scgpt_pkg, tiny_scgpt_dir, pbmc):
    from scgpt.tasks import embed_data

    adata = _tie_free(pbmc, 128)
    assert np.diff(adata.X.indptr).max() < 1199  # no subsampling, so both sides see every gene
    ref = embed_data(
        adata.copy(),
        tiny_scgpt_dir,
        gene_col="index",
        max_length=1200,
        batch_size=64,
        device="cpu",
        return_new_adata=True,
    ).X
    sl.tl.embed(adata, model=str(tiny_scgpt_dir), batch_size=64, progress=False)
    ours = adata.obsm["X_scgpt"]
    cos = _cosine(ours, ref)
    assert cos.min() >= 0.999, f"lowest per-cell cosine {cos.min():.5f}"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    # the check has teeth: cells differ from each other far more than from scGPT's output
    assert _cosine(ours, np.roll(ref, 1, axis=0)).mean() < 0.99


def test_writes_only_documented_keys(tiny_scgpt_dir, pbmc):
    before_var = pbmc.var.copy()
    before_raw_var = pbmc.raw.var.copy()
    obsm, uns, obs = set(pbmc.obsm), set(pbmc.uns), pbmc.obs.copy()
    assert sl.tl.embed(pbmc, model=str(tiny_scgpt_dir), progress=False) is None
    assert set(pbmc.obsm) - obsm == {"X_scgpt"}
    assert set(pbmc.uns) - uns == {"scgpt"}
    pd.testing.assert_frame_equal(pbmc.var, before_var)
    pd.testing.assert_frame_equal(pbmc.raw.var, before_raw_var)
    pd.testing.assert_frame_equal(pbmc.obs, obs)
    X = pbmc.obsm["X_scgpt"]
    assert X.shape == (pbmc.n_obs, 32) and X.dtype == np.float32
    params = pbmc.uns["scgpt"]["params"]
    assert params["encoder"] == "scgpt" and params["backend"] == "local" and params["use_raw"] is True
    assert params["n_genes"] == pbmc.raw.n_vars == params["n_genes_matched"]
    assert params["gene_coverage"] == 1.0
    assert params["max_length"] == 1200 and params["n_bins"] == 51 and params["seed"] == 0
    assert params["n_subsampled"] == 0 and params["n_empty"] == 0


def test_backend_with_its_pre_0_2_meaning_still_picks_the_encoder(ckpt, pbmc):
    with pytest.warns(FutureWarning, match=r"pass `encoder='scgpt'`"):
        out = sl.tl.embed(pbmc, model=str(ckpt), backend="scgpt", copy=True, progress=False)
    assert out.uns["scgpt"]["params"]["encoder"] == "scgpt"


def test_copy_key_added_and_explicit_encoder(ckpt, pbmc):
    out = sl.tl.embed(pbmc, model=str(ckpt), encoder="scgpt", key_added="X_sc", copy=True, progress=False)
    assert "X_sc" not in pbmc.obsm and "sc" not in pbmc.uns
    assert out.obsm["X_sc"].shape == (pbmc.n_obs, 32)
    assert out.uns["sc"]["params"]["model"] == str(ckpt)


def test_layer_dense_and_sparse_agree(ckpt, pbmc):
    adata = _tie_free(pbmc, 60)
    adata.layers["lognorm"] = adata.X.copy()
    adata.X = sparse.csr_matrix(adata.shape, dtype=np.float32)  # empty .X: the layer must be what is read
    dense = adata.copy()
    dense.layers["lognorm"] = adata.layers["lognorm"].toarray()
    csc = adata.copy()
    csc.layers["lognorm"] = adata.layers["lognorm"].tocsc()
    for a in (adata, dense, csc):
        sl.tl.embed(a, model=str(ckpt), layer="lognorm", batch_size=7, progress=False)
    np.testing.assert_allclose(dense.obsm["X_scgpt"], adata.obsm["X_scgpt"], atol=1e-5)
    np.testing.assert_allclose(csc.obsm["X_scgpt"], adata.obsm["X_scgpt"], atol=1e-5)
    assert adata.uns["scgpt"]["params"]["layer"] == "lognorm"


def test_batch_size_and_row_order_do_not_matter(ckpt, pbmc):
    adata = _tie_free(pbmc, 80)
    sl.tl.embed(adata, model=str(ckpt), batch_size=80, progress=False)
    perm = np.random.default_rng(0).permutation(adata.n_obs)
    shuffled = adata[perm].copy()
    sl.tl.embed(shuffled, model=str(ckpt), batch_size=3, progress=False)
    np.testing.assert_allclose(shuffled.obsm["X_scgpt"], adata.obsm["X_scgpt"][perm], atol=1e-5)


def test_gene_symbols_column_and_partial_coverage(make_scgpt, pbmc):
    genes = list(pbmc.raw.var_names)
    ckpt = make_scgpt(genes=genes[:500])
    adata = _tie_free(pbmc, 40)
    adata.var["symbol"] = adata.var_names
    adata.var_names = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    sl.tl.embed(adata, model=str(ckpt), gene_symbols="symbol", progress=False)
    params = adata.uns["scgpt"]["params"]
    assert params["n_genes_matched"] == 500 and params["gene_coverage"] == pytest.approx(500 / 765)
    assert params["gene_symbols"] == "symbol"
    with pytest.raises(ValueError, match="Ensembl"):
        sl.tl.embed(adata, model=str(ckpt), progress=False)


def test_low_coverage_warns(make_scgpt, pbmc):
    ckpt = make_scgpt(genes=list(pbmc.raw.var_names[:100]))
    adata = _tie_free(pbmc, 20)
    with pytest.warns(UserWarning, match=r"Only 100 of 765 genes"):
        sl.tl.embed(adata, model=str(ckpt), progress=False)
    assert adata.uns["scgpt"]["params"]["gene_coverage"] == pytest.approx(100 / 765)


def test_no_matching_gene_raises_and_leaves_adata_unchanged(ckpt, small_adata):
    before = small_adata.copy()
    with pytest.raises(ValueError, match="None of the 40 genes is in the scGPT vocabulary"):
        sl.tl.embed(small_adata, model=str(ckpt), progress=False)
    assert set(small_adata.obsm) == set(before.obsm) and set(small_adata.uns) == set(before.uns)
    pd.testing.assert_frame_equal(small_adata.var, before.var)


def test_case_mismatch_hint(ckpt, pbmc):
    adata = _tie_free(pbmc, 10)
    adata.var_names = [g.lower() for g in adata.var_names]
    with pytest.raises(ValueError, match="differ in case"):
        sl.tl.embed(adata, model=str(ckpt), progress=False)


def test_cells_without_matched_genes_warn(ckpt, pbmc):
    adata = _tie_free(pbmc, 20)
    X = adata.X.tolil()
    X[3, :] = 0
    adata.X = X.tocsr()
    with pytest.warns(UserWarning, match="1 cell"):
        sl.tl.embed(adata, model=str(ckpt), progress=False)
    assert adata.uns["scgpt"]["params"]["n_empty"] == 1
    assert np.isfinite(adata.obsm["X_scgpt"]).all()


def test_negative_values_raise(ckpt, pbmc):
    with pytest.raises(ValueError, match="negative"):
        sl.tl.embed(pbmc, model=str(ckpt), use_raw=False, progress=False)  # .X is scaled
    assert "X_scgpt" not in pbmc.obsm


def test_subsampling_is_seeded(ckpt, pbmc):
    adata = _tie_free(pbmc, 50)
    n_genes = np.diff(adata.X.indptr)
    runs = {}
    for seed in (0, 0, 1):
        a = adata.copy()
        sl.tl.embed(a, model=str(ckpt), max_length=101, seed=seed, progress=False)
        runs.setdefault(seed, []).append(a)
    a0, a0b, a1 = runs[0][0], runs[0][1], runs[1][0]
    assert a0.uns["scgpt"]["params"]["n_subsampled"] == int((n_genes > 100).sum()) > 0
    np.testing.assert_array_equal(a0.obsm["X_scgpt"], a0b.obsm["X_scgpt"])
    differs = np.abs(a0.obsm["X_scgpt"] - a1.obsm["X_scgpt"]).max(1) > 1e-4
    np.testing.assert_array_equal(differs, n_genes > 100)  # only subsampled cells depend on the seed


def test_mudata_modality(ckpt, pbmc):
    import mudata as md

    rna = _tie_free(pbmc, 30)
    mdata = md.MuData({"rna": rna, "prot": ad.AnnData(np.ones((30, 2), dtype=np.float32), obs=rna.obs.copy())})
    sl.tl.embed(mdata, model=str(ckpt), mod="rna", progress=False)
    assert mdata.mod["rna"].obsm["X_scgpt"].shape == (30, 32)
    direct = rna.copy()
    sl.tl.embed(direct, model=str(ckpt), progress=False)
    np.testing.assert_allclose(mdata.mod["rna"].obsm["X_scgpt"], direct.obsm["X_scgpt"], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_length": 1}, ValueError, "max_length"),
        ({"n_bins": 2}, ValueError, "n_bins"),
        ({"seed": 0.5}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "non-negative"),
        ({"layer": "missing"}, KeyError, "missing"),
        ({"gene_symbols": "nope"}, KeyError, "nope"),
        ({"unknown_option": 1}, TypeError, "unknown_option"),
    ],
)
def test_bad_arguments(ckpt, pbmc, kwargs, error, match):
    with pytest.raises(error, match=match):
        sl.tl.embed(pbmc, model=str(ckpt), progress=False, **kwargs)
    assert "X_scgpt" not in pbmc.obsm


def test_missing_file_names_the_layout(make_scgpt, pbmc):
    ckpt = make_scgpt()
    (ckpt / "best_model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"best_model\.pt"):
        sl.tl.embed(pbmc, model=str(ckpt), encoder="scgpt", progress=False)


def test_unknown_args_option(make_scgpt, pbmc):
    ckpt = make_scgpt()
    args = json.loads((ckpt / "args.json").read_text())
    args["input_emb_style"] = "fourier"
    (ckpt / "args.json").write_text(json.dumps(args))
    with pytest.raises(ValueError, match="input_emb_style='fourier'"):
        sl.tl.embed(pbmc, model=str(ckpt), progress=False)


def test_import_stays_light_and_src_avoids_torchtext_and_flash_attn():
    code = "import sys, sc_llm; print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    pattern = re.compile(r"^\s*(import|from)\s+(torchtext|flash_attn)\b", re.MULTILINE)
    offenders = [p for p in SRC.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
