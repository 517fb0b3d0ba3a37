"""Bad input in the generative half (issue 21): every case is a clear error naming the fix, or a correct result.

One test per class of the issue; each failed on the code before the fix (a silent wrong answer or a library's
own message). Every failing call leaves the user's AnnData as it was.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import sc_llm as sl

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}


@pytest.fixture
def kang(kang_small):
    return kang_small.copy()


def _unchanged(adata, before):
    assert list(adata.obs.columns) == list(before.obs.columns) and set(adata.uns) == set(before.uns)
    a, b = (x.toarray() if sparse.issparse(x) else np.asarray(x) for x in (adata.X, before.X))
    assert np.array_equal(a, b, equal_nan=True)


# ------------------------------------------------------------------------------------------ 1. non-finite values
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_values_are_refused_with_where_they_are(kang, bad):
    X = kang.X.toarray()
    X[5, 7] = bad
    kang.X = sparse.csr_matrix(X)
    before = kang.copy()
    for call in (
        lambda: sl.tl.perturb(kang, **KW, method="mean_shift"),
        lambda: sl.tl.compare_perturbation(kang, **KW, methods=["control"]),
        lambda: sl.tl.fit_sentence_decoder(kang),
    ):
        with pytest.raises(
            ValueError, match=rf"adata\.X holds 1 NaN or infinite value, in 1 cell \(e\.g\. {kang.obs_names[5]}\)"
        ):
            call()
    with pytest.raises(ValueError, match=r"`X` of the cells of input 1 holds 1 NaN"):
        sl.metrics.r2_mean(kang, before)
    _unchanged(kang, before)


# ------------------------------------------------------------------------------------------ 2. wrong scale
def test_scaled_data_is_refused_and_raw_counts_warned(kang):
    scaled = kang.copy()
    scaled.X = scaled.X.toarray() - 0.5
    with pytest.raises(ValueError, match=r"negative values .* looks scaled or centred.*sc\.pp\.log1p"):
        sl.tl.perturb(scaled, **KW, method="mean_shift")
    with pytest.raises(ValueError, match="negative values"):
        sl.tl.compare_perturbation(scaled, **KW, methods=["control"])
    counts = kang.copy()
    counts.X = sparse.csr_matrix(np.round(np.expm1(kang.X.toarray()) * 10))
    query = counts[counts.obs["condition"] == "control"].copy()
    with pytest.warns(UserWarning, match=r"looks like raw counts.*sc\.pp\.normalize_total"):
        out = sl.tl.perturb(counts, **KW, query=query, method="mean_shift")
    assert out.n_obs == query.n_obs
    booleans = kang.copy()
    booleans.X = kang.X.toarray() > 0
    with pytest.raises(TypeError, match="booleans"):
        sl.pp.cell_sentences(booleans)


# ------------------------------------------------------------------------------------------ 4. saved cell LMs
def test_saved_cell_lms_are_checksummed(saved_cell_lms, kang, tmp_path):
    folder = tmp_path / "lm"
    shutil.copytree(saved_cell_lms["perturbation"], folder)
    config = json.loads((folder / "cell_lm.json").read_text())
    genes = config["vocab"]["genes"]
    genes[0], genes[1] = genes[1], genes[0]  # two gene names swapped: the model would write the wrong genes
    (folder / "cell_lm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"cell_lm\.json' was changed after the model was saved"):
        sl.tl.CellLM.load(folder)
    shutil.rmtree(folder)
    shutil.copytree(saved_cell_lms["perturbation"], folder)
    weights = next((folder / "model").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match=rf"changed after it was saved: \['model/{weights.name}'\]"):
        sl.tl.CellLM.load(folder)
    ctrl = kang[kang.obs["condition"] == "control"][:3].copy()
    ctrl.write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(ValueError, match="changed after it was saved"):
        sl.jobs.predict_perturbation(tmp_path / "c.h5ad", tmp_path / "s", model=folder, perturbation="stimulated")
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------ 8. damaged files
def test_damaged_files_name_the_file_and_the_fix(saved_cell_lms, kang, tmp_path):
    folder = tmp_path / "lm"
    shutil.copytree(saved_cell_lms["generation"], folder)
    text = (folder / "cell_lm.json").read_text()
    (folder / "cell_lm.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"cell_lm\.json' is not valid JSON.*Save the model again"):
        sl.tl.generate_cells(folder, cell_type="CD4T", n_cells=2)
    kw = {"cell_type": "CD4T", "n_cells": 6, "n_genes": 4, "shard_size": 3, "progress": False}
    store = sl.jobs.generate_cells(saved_cell_lms["generation"], tmp_path / "s", **kw)
    chunk = next(p for p in (tmp_path / "s" / "gene_ids.zarr").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:5])
    with pytest.raises(sl.jobs.DamagedStoreError, match=r"cannot be read .*Delete shards/\d+\.json and rerun"):
        sl.jobs.read_cells(store.path)
    manifest = tmp_path / "s" / "manifest.json"
    manifest.write_text(manifest.read_text()[:20])
    with pytest.raises(sl.jobs.DamagedStoreError, match=r"manifest .* is damaged.*overwrite=True"):
        sl.jobs.read_cells(tmp_path / "s")
    again = sl.jobs.generate_cells(saved_cell_lms["generation"], tmp_path / "s", overwrite=True, **kw)
    assert again.read("gene_ids").shape == (6, 4)
    pd.testing.assert_index_equal(sl.jobs.read_cells(again).obs_names, pd.Index([f"gen_{i}" for i in range(6)]))


# ------------------------------------------------------------------------------------------ 5. overwrites
def test_compare_perturbation_warns_before_replacing_an_uns_entry(kang):
    kang.uns["mine"] = {"keep": 1}
    with pytest.warns(UserWarning, match=r"Replacing the existing `adata\.uns\['mine'\]`"):
        sl.tl.compare_perturbation(kang, **KW, methods=["control"], held_out=["CD4T"], key_added="mine")


# ------------------------------------------------------------------------------------------ 6. options
def test_options_are_declared_checked_and_recorded_as_used(kang):
    query = kang[kang.obs["condition"] == "control"].copy()
    with pytest.raises(
        TypeError, match=r"Unknown option `n_comp` for method\(s\) \['pca_shift'\]\. Did you mean `n_comps`"
    ):
        sl.tl.perturb(kang, **KW, query=query, method="pca_shift", n_comp=5)
    with pytest.raises(TypeError, match=r"Unknown option `n_comps` for method\(s\) \['mean_shift'\]"):
        sl.tl.perturb(kang, **KW, query=query, method="mean_shift", n_comps=5)
    with pytest.raises(ValueError, match=r"`n_comps` must be an integer ≥ 1, got 0"):
        sl.tl.perturb(kang, **KW, query=query, method="pca_shift", n_comps=0)
    with pytest.raises(ValueError, match=r"Option `lr` must be a number > 0"):
        sl.tl.perturb(kang, **KW, query=query, method="llm", lr=-1)
    out = sl.tl.perturb(kang, **KW, query=query, method="pca_shift", n_comps=100_000)
    assert out.uns["perturb"]["params"]["options"]["n_comps"] == kang.n_obs - 1  # what a PCA of 120 cells holds
    with pytest.raises(TypeError, match="Unknown option `n_gene`"):
        sl.tl.compare_perturbation(kang, **KW, methods=["control", "sentence_oracle"], n_gene=10)


# ------------------------------------------------------------------------------------------ 7. metric inputs
def test_metric_inputs_are_checked(kang):
    real, ctrl = (kang[kang.obs["condition"] == c].copy() for c in ("stimulated", "control"))
    with pytest.raises(ValueError, match=r"`n_de` must be an integer ≥ 1, got -5"):
        sl.metrics.perturbation_scores(real, real, ctrl, n_de=-5)
    with pytest.raises(ValueError, match=r"`n_comps` must be an integer ≥ 1, got 0"):
        sl.metrics.perturbation_scores(real, real, ctrl, n_comps=0)
    other = real[:, list(real.var_names[::-1])].copy()  # the same genes in another order
    for score in (sl.metrics.energy_distance, sl.metrics.mmd, sl.metrics.frechet_distance, sl.metrics.r2_mean):
        with pytest.raises(ValueError, match="different genes"):
            score(other, real)
    assert sl.metrics.energy_distance(real, real) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------------------------------ 10. small ones
def _decoder(adata):
    fitted = adata.copy()
    sl.tl.fit_sentence_decoder(fitted)
    return fitted.uns["sentence_decoder"]


def test_small_inputs_give_clear_errors(saved_cell_lms, kang):
    gen = saved_cell_lms["generation"]
    for kwargs, match in [
        ({"n_cells": 2.5}, r"`n_cells` must be an integer ≥ 0, got 2\.5"),
        ({"n_cells": 2, "top_k": -1}, r"`top_k` must be an integer ≥ 1, got -1"),
        ({"n_cells": 2, "batch_size": 0}, r"`batch_size` must be an integer ≥ 1, got 0"),
        ({"n_cells": 2, "seed": -1}, r"`seed` must be an integer ≥ 0, got -1"),
        ({"n_cells": 2, "temperature": 0}, r"`temperature` must be a number > 0"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            sl.tl.generate_cells(gen, cell_type="CD4T", progress=False, **kwargs)
    with pytest.raises(ValueError, match=r"whitespace or invisible characters.*'HLA DRA'"):
        sl.tl.CellLM.from_scratch(["CD3D", "HLA DRA"])
    with pytest.raises(ValueError, match="`genes` is empty"):
        sl.tl.CellLM.from_scratch([])
    broken = kang.copy()
    broken.obs["cell_sentence"] = broken.obs["cell_sentence"].astype(object)
    broken.obs.iloc[3, broken.obs.columns.get_loc("cell_sentence")] = np.nan
    lm = sl.tl.CellLM.from_scratch(list(kang.var_names), cell_types=["B"], hidden_size=16, num_layers=1)
    with pytest.raises(ValueError, match="1 cell\\(s\\) have an empty or missing sentence"):
        lm.fit(broken, n_genes=4, config={"epochs": 1, "progress": False})
    broken.obs["numbers"] = np.arange(broken.n_obs)
    with pytest.raises(TypeError, match="holds numbers"):
        sl.tl.decode_sentences(broken, sentence_key="numbers", decoder=_decoder(kang))
    with pytest.raises(TypeError, match=r"`seeds\[0\]` must be an integer ≥ 0, got .a."):
        sl.tl.compare_annotators(kang, label_key="cell_type", use_reps=["X_pca"], seeds=["a"])


# ------------------------------------------------------------------------------------------ 11. first-half leftovers
def test_first_half_leftovers(pbmc, tmp_path):
    special = pbmc.copy()
    special.raw = None
    special.var_names = ["[CLS]", "<pad>", *special.var_names[2:]]
    with pytest.raises(ValueError, match=r"special tokens \(\['\[CLS\]', '<pad>'\]"):
        sl.pp.cell_sentences(special, use_raw=False)
    query, ref = pbmc[::2].copy(), pbmc[1::2].copy()
    query.uns["pca"] = {"params": {"model": "model-A", "encoder": "text"}}
    ref.uns["pca"] = {"params": {"model": "model-B", "encoder": "text"}}
    with pytest.raises(ValueError, match=r"computed differently here and in the reference \(model: 'model-A' here"):
        sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="bulk_labels")
    ref.uns["pca"] = {"params": {"model": "model-A", "encoder": "text"}}
    ref.obs["bulk_labels"] = ref.obs["bulk_labels"].cat.add_categories(["ghost"])
    sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="bulk_labels")
    assert "ghost" not in query.obs["knn_label"].cat.categories  # no reference cell: never a prediction
    twins = pbmc.copy()
    twins.obs["lab"] = twins.obs["bulk_labels"].astype(str)
    twins.obs.loc[twins.obs_names[:40], "lab"] = twins.obs["lab"].iloc[:40].str.upper()
    with pytest.warns(UserWarning, match="differ only in case or spaces"):
        sl.tl.knn_annotate(twins, use_rep="X_pca", label_key="lab")
