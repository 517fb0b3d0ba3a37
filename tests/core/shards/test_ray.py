"""The Ray runner on a local cluster of 2 CPU workers: same numbers as one process, a dying worker retried."""

import os
from collections import Counter

import numpy as np
import pytest

from sc_llm.core.shards import FAULT_ENV, ListSentences, ShardStore, TextEmbedTask, run_local, run_ray

ray = pytest.importorskip("ray", reason="the Ray engine is the optional extra sc-llm[scale]")

OUTPUTS = {"embedding": ((32,), "float32"), "truncated": ((), "bool")}


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def task_and_local_store(pbmc, model, tmp_path, n_cells: int, n_genes: int, shard_size: int):
    """A text-embedding task over the first ``n_cells`` cells and the store of its single-process run."""
    import sc_llm as sl

    adata = pbmc[:n_cells].copy()
    sl.pp.cell_sentences(adata, n_genes=n_genes)
    sentences = adata.obs["cell_sentence"].tolist()
    task = TextEmbedTask(
        str(model), ListSentences(sentences), sentences[:8], batch_size=8, encoder_kwargs={"device": "cpu"}
    )
    one = ShardStore.open_or_create(
        tmp_path / "one", {"job": "t"}, n_cells=n_cells, shard_size=shard_size, outputs=OUTPUTS
    )
    run_local(task, one, progress=False)
    return task, one


@pytest.mark.slow
def test_two_ray_workers_equal_one_process_even_when_a_worker_dies(local_cluster, tiny_bert_dir, _pbmc, tmp_path):
    task, one = task_and_local_store(_pbmc, tiny_bert_dir, tmp_path, n_cells=120, n_genes=20, shard_size=20)
    faults = tmp_path / "faults"
    faults.write_text("2")  # the worker computing shard 2 dies once, after computing it and before committing
    os.environ[FAULT_ENV] = str(faults)
    try:
        two = ShardStore.open_or_create(tmp_path / "two", {"job": "t"}, n_cells=120, shard_size=20, outputs=OUTPUTS)
        summary = run_ray(task, two, num_workers=2, max_retries=2, progress=False)
    finally:
        del os.environ[FAULT_ENV]
    assert faults.read_text().split() == []  # the fault fired
    assert (summary.engine, summary.n_workers, summary.n_computed) == ("ray", 2, 6)
    np.testing.assert_array_equal(two.read("embedding"), one.read("embedding"))
    np.testing.assert_array_equal(two.read("truncated"), one.read("truncated"))
    events = two.events()
    starts = Counter(e["shard"] for e in events if e["event"] == "start")
    commits = Counter(e["shard"] for e in events if e["event"] == "commit")
    assert starts[2] == 2 and set(commits.values()) == {1}
    assert len({e["pid"] for e in events if e["event"] == "commit"}) >= 2  # work was spread over the workers


@pytest.mark.slow
def test_host_stage_actors_give_the_same_numbers(local_cluster, tiny_bert_dir, _pbmc, tmp_path):
    """``host_cpus``: a one-CPU actor reads and tokenises shards ahead of the model worker; same results."""
    task, one = task_and_local_store(_pbmc, tiny_bert_dir, tmp_path, n_cells=90, n_genes=30, shard_size=15)
    staged = ShardStore.open_or_create(tmp_path / "st", {"job": "t"}, n_cells=90, shard_size=15, outputs=OUTPUTS)
    summary = run_ray(task, staged, num_workers=1, host_cpus=1, progress=False)
    assert summary.n_computed == 6
    np.testing.assert_allclose(staged.read("embedding"), one.read("embedding"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(staged.read("truncated"), one.read("truncated"))
