"""Sharded, resumable cell-LM generation: equal to the in-memory calls, resumable, refusing mixed jobs."""

import numpy as np
import pytest

import sc_llm as sl


@pytest.fixture(scope="module")
def models(saved_cell_lms):
    return saved_cell_lms


def test_generate_cells_job_equals_the_in_memory_call_and_resumes(models, tmp_path):
    kw = {"cell_type": "CD4T", "n_cells": 7, "n_genes": 6, "seed": 1, "progress": False}
    store = sl.jobs.generate_cells(models["generation"], tmp_path / "gen", shard_size=3, **kw)
    assert (store.n_shards, store.last_run.n_computed) == (3, 3)
    cells = sl.jobs.read_cells(store)
    direct = sl.tl.generate_cells(models["generation"], device="cpu", batch_size=4, **kw)
    assert list(cells.obs["cell_sentence"]) == list(direct.obs["cell_sentence"])
    assert len(set(cells.obs["cell_sentence"])) > 1  # sampled: cells differ
    assert (cells.X != direct.X).nnz == 0 and list(cells.var_names) == list(direct.var_names)
    assert (cells.obs["cell_type"] == "CD4T").all() and cells.uns["cell_lm"]["valid_gene_share"] == 1.0
    np.testing.assert_array_equal(cells.obs["n_valid_genes"], direct.obs["n_valid_genes"])

    again = sl.jobs.generate_cells(models["generation"], tmp_path / "gen", shard_size=3, **kw)
    assert (again.last_run.n_computed, again.last_run.n_skipped) == (0, 3)
    with pytest.raises(sl.jobs.StoreMismatchError, match="seed"):
        sl.jobs.generate_cells(models["generation"], tmp_path / "gen", shard_size=3, **(kw | {"seed": 2}))


def test_perturb_job_equals_predict_perturbation_for_any_shard_size(models, kang_small, tmp_path):
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:10].copy()
    path = tmp_path / "ctrl.h5ad"
    ctrl.write_h5ad(path)
    kw = {"perturbation": "stimulated", "n_genes": 8, "do_sample": True, "seed": 2, "progress": False}
    lm = sl.tl.CellLM.load(models["perturbation"], device="cpu")
    direct = lm.predict_perturbation(ctrl, batch_size=3, **kw)
    for shard_size in (4, 10):
        store = sl.jobs.predict_perturbation(
            path, tmp_path / f"p{shard_size}", model=models["perturbation"], shard_size=shard_size, **kw
        )
        pred = sl.jobs.read_cells(store, input=path)
        assert list(pred.obs["cell_sentence"]) == list(direct.obs["cell_sentence"])
        assert (pred.X != direct.X).nnz == 0
        assert list(pred.obs["control_cell"]) == list(ctrl.obs_names)
        assert list(pred.obs["cell_type"]) == list(ctrl.obs["cell_type"].astype(str))


def test_every_door_to_llm_perturbation_writes_the_same_sentences(models, kang_small, tmp_path):
    """tl.perturb(method='llm'), CellLM.predict_perturbation and jobs.predict_perturbation: one path, one stream."""
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:8].copy()
    path = tmp_path / "ctrl.h5ad"
    ctrl.write_h5ad(path)
    sampling = {"n_genes": 8, "do_sample": True, "seed": 3}
    lm = sl.tl.CellLM.load(models["perturbation"], device="cpu")
    direct = lm.predict_perturbation(ctrl, perturbation="stimulated", batch_size=5, progress=False, **sampling)
    store = sl.jobs.predict_perturbation(
        path,
        tmp_path / "s",
        model=models["perturbation"],
        perturbation="stimulated",
        shard_size=3,
        progress=False,
        **sampling,
    )
    tool = sl.tl.perturb(
        kang_small,
        condition_key="condition",
        control="control",
        perturbation="stimulated",
        cell_type_key="cell_type",
        query=ctrl[::-1].copy(),  # another order and batch: each cell keeps its own random stream
        method="llm",
        model=models["perturbation"],
        gen_batch_size=3,
        **sampling,
    )
    by_cell = dict(zip(tool.obs["source_cell"], tool.obs["cell_sentence"], strict=True))
    assert list(sl.jobs.read_cells(store).obs["cell_sentence"]) == list(direct.obs["cell_sentence"])
    assert [by_cell[c] for c in ctrl.obs_names] == list(direct.obs["cell_sentence"])
    assert len(set(direct.obs["cell_sentence"])) > 1


def test_a_lost_shard_is_recomputed_identically(models, kang_small, tmp_path):
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:9].copy()
    path = tmp_path / "ctrl.h5ad"
    ctrl.write_h5ad(path)
    kw = {
        "model": models["perturbation"],
        "perturbation": "stimulated",
        "n_genes": 8,
        "shard_size": 3,
        "progress": False,
    }
    first = sl.jobs.predict_perturbation(path, tmp_path / "s", **kw)
    before = first.read("gene_ids")
    next((tmp_path / "s" / "shards").glob("*1.json")).unlink()  # as if killed before shard 1's commit record
    with pytest.raises(ValueError, match="not computed yet"):
        sl.jobs.read_cells(tmp_path / "s")
    resumed = sl.jobs.predict_perturbation(path, tmp_path / "s", **kw)
    assert (resumed.last_run.n_computed, resumed.last_run.n_skipped) == (1, 2)
    np.testing.assert_array_equal(resumed.read("gene_ids"), before)


def test_bad_inputs_are_refused_before_anything_runs(models, kang_small, tmp_path, tiny_bert_dir):
    path = tmp_path / "cells.h5ad"
    kang_small[:6].copy().write_h5ad(path)
    with pytest.raises(FileNotFoundError, match="not a saved cell language model"):
        sl.jobs.generate_cells(tiny_bert_dir, tmp_path / "x", cell_type="B", n_cells=2)
    with pytest.raises(KeyError, match="cell_type_key"):
        sl.jobs.predict_perturbation(
            path, tmp_path / "y", model=models["perturbation"], perturbation="stimulated", cell_type_key="ct"
        )
    with pytest.raises(ValueError, match="perturbation's name"):
        sl.jobs.predict_perturbation(path, tmp_path / "y", model=models["perturbation"], perturbation="")
    with pytest.raises(ValueError, match="Nothing to generate"):
        sl.jobs.generate_cells(models["generation"], tmp_path / "z", cell_type=[])
    assert not any((tmp_path / d).exists() for d in ("x", "y", "z"))
    emb = sl.jobs.embed(path, tmp_path / "emb", model=str(tiny_bert_dir), shard_size=3, progress=False)
    with pytest.raises(ValueError, match="read_cells"):
        sl.jobs.read_cells(emb)
    other = kang_small[6:12].copy()
    other.write_h5ad(tmp_path / "other.h5ad")
    store = sl.jobs.predict_perturbation(
        path, tmp_path / "p", model=models["perturbation"], perturbation="stimulated", n_genes=4, progress=False
    )
    with pytest.raises(ValueError, match="not the file this job read"):
        sl.jobs.read_cells(store, input=tmp_path / "other.h5ad")


@pytest.mark.slow
def test_two_ray_workers_generate_the_cells_of_one_process(models, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine is the optional extra sc-llm[scale]")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        kw = {"cell_type": ["B", "NK", "CD4T"] * 4, "n_genes": 5, "seed": 3, "shard_size": 3, "progress": False}
        two = sl.jobs.generate_cells(models["generation"], tmp_path / "ray", engine="ray", num_workers=2, **kw)
    finally:
        ray.shutdown()
    one = sl.jobs.generate_cells(models["generation"], tmp_path / "one", **kw)
    assert (two.last_run.engine, two.last_run.n_computed) == ("ray", 4)
    np.testing.assert_array_equal(two.read("gene_ids"), one.read("gene_ids"))
    assert len({e["pid"] for e in two.events() if e["event"] == "commit"}) == 2
