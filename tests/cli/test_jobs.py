"""`sc-llm generate`, `sc-llm perturb` and `sc-llm annotate`: files in, files out, a one-line summary."""

import anndata as ad
import numpy as np
import pytest

import sc_llm as sl
from sc_llm.cli import main


def test_generate_command_writes_the_cells_of_the_python_call_and_resumes(saved_cell_lms, tmp_path, capsys):
    store, out = tmp_path / "store", tmp_path / "gen.h5ad"
    args = [
        "generate",
        "--model",
        str(saved_cell_lms["generation"]),
        "--cell-type",
        "B",
        "--cell-type",
        "NK",
        "--n-cells",
        "3",
        "--n-genes",
        "5",
        "--seed",
        "4",
        "--shard-size",
        "4",
        "--store",
        str(store),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("sc-llm generate: 2 shard(s) computed, 0 already done, 6 cells") and "100.0% valid" in line
    cells = ad.read_h5ad(out)
    direct = sl.tl.generate_cells(
        saved_cell_lms["generation"], cell_type=["B"] * 3 + ["NK"] * 3, n_genes=5, seed=4, device="cpu", progress=False
    )
    assert list(cells.obs["cell_sentence"]) == list(direct.obs["cell_sentence"])
    assert list(cells.obs["cell_type"]) == ["B"] * 3 + ["NK"] * 3
    with pytest.raises(SystemExit) as e:  # the store exists: --resume or --overwrite
        main(args)
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert "0 shard(s) computed, 2 already done" in capsys.readouterr().out


def test_perturb_command(saved_cell_lms, kang_small, tmp_path, capsys):
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:5].copy()
    path = tmp_path / "ctrl.h5ad"
    ctrl.write_h5ad(path)
    out = tmp_path / "pred.zarr"
    args = [
        "perturb",
        str(path),
        "--model",
        str(saved_cell_lms["perturbation"]),
        "--perturbation",
        "stimulated",
        "--n-genes",
        "8",
        "--store",
        str(tmp_path / "s"),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "5 cells" in capsys.readouterr().out
    pred = ad.read_zarr(out)
    lm = sl.tl.CellLM.load(saved_cell_lms["perturbation"], device="cpu")
    direct = lm.predict_perturbation(ctrl, perturbation="stimulated", n_genes=8, progress=False)
    assert list(pred.obs["cell_sentence"]) == list(direct.obs["cell_sentence"])
    assert list(pred.obs["control_cell"]) == list(ctrl.obs_names)
    assert np.allclose(pred.X.toarray(), direct.X.toarray())
    assert main([*args[:-3], "--cell-type-key", "nope", "--overwrite", "--no-progress"]) == 1
    assert "cell_type_key" in capsys.readouterr().err


@pytest.fixture
def query_reference(_pbmc, tmp_path):
    rng = np.random.default_rng(0)
    idx = rng.permutation(_pbmc.n_obs)
    ref, query = _pbmc[idx[:500]].copy(), _pbmc[idx[500:]].copy()
    paths = tmp_path / "query.h5ad", tmp_path / "ref.h5ad"
    query.write_h5ad(paths[0])
    ref.write_h5ad(paths[1])
    return query, ref, paths


def _annotate_args(query_path, reference_path, *options) -> list[str]:
    """``sc-llm annotate QUERY --reference REF --label-key bulk_labels`` plus ``options``, as argv."""
    return ["annotate", str(query_path), "--reference", str(reference_path), "--label-key", "bulk_labels", *options]


def test_annotate_command_knn_equals_the_python_call(query_reference, tmp_path, capsys):
    query, ref, (qp, rp) = query_reference
    out = tmp_path / "annotated.h5ad"
    args = _annotate_args(qp, rp, "--use-rep", "X_pca", "--k", "5", "--out", str(out))
    assert main(args) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"sc-llm annotate: {query.n_obs} cells labelled by knn on X_pca from {ref.n_obs}")
    got = ad.read_h5ad(out)
    sl.tl.knn_annotate(query, ref, use_rep="X_pca", label_key="bulk_labels", truth_key="bulk_labels", k=5)
    assert list(got.obs["knn_label"]) == list(query.obs["knn_label"])
    assert (got.obs["knn_label"] == got.obs["bulk_labels"]).mean() > 0.6  # PCA 5-NN on pbmc68k is ~0.8


def test_annotate_command_embeds_with_a_resumable_cache(query_reference, tiny_bert_dir, tmp_path, capsys):
    _, _, (qp, rp) = query_reference
    out, cache = tmp_path / "a.h5ad", tmp_path / "cache"
    args = _annotate_args(
        qp,
        rp,
        "--model",
        str(tiny_bert_dir),
        "--cache-dir",
        str(cache),
        "--use-rep",
        "X_pca",
        "--method",
        "scmpt",
        "--out",
        str(out),
        "--no-progress",
        "--batch-size",
        "64",
    )
    assert main(args) == 0
    got = ad.read_h5ad(out)
    assert "X_text" in got.obsm and "scmpt" in got.obs and got.uns["scmpt"]["params"]["use_reps"] is not None
    assert {p.name for p in cache.iterdir()} == {"query", "reference"}
    stores = list((cache / "query").glob("embed-*"))
    assert len(stores) == 1 and sl.jobs.ShardStore(stores[0]).pending() == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--use-rep"),
        (["--use-rep", "X_pca", "--use-rep", "X_umap"], "--method knn votes in one"),
        (["--use-rep", "X_pca", "--method", "scmpt"], "two or more"),
    ],
)
def test_annotate_usage_errors(query_reference, tmp_path, capsys, extra, message):
    _, _, (qp, rp) = query_reference
    args = _annotate_args(qp, rp, "--out", str(tmp_path / "o.h5ad"))
    with pytest.raises(SystemExit) as e:
        main(args + extra)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()
