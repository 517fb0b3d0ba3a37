"""kill -9 a job at random points three times, resume it: identical to an uninterrupted run, no shard redone."""

import signal
import subprocess
import sys
import time
from collections import Counter

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import sc_llm as sl

N_CELLS, SHARD = 1000, 10
SCRIPT = (
    "import sys, sc_llm as sl; "
    f"sl.jobs.embed(sys.argv[1], sys.argv[2], model=sys.argv[3], shard_size={SHARD}, batch_size=8, progress=False)"
)


@pytest.fixture
def sentences_file(tmp_path):
    rng = np.random.default_rng(0)
    genes = [f"GENE{i}" for i in range(100)]
    sentences = [" ".join(rng.permutation(genes)[: rng.integers(5, 40)]) for _ in range(N_CELLS)]
    obs = pd.DataFrame({"cell_sentence": sentences}, index=[f"cell{i}" for i in range(N_CELLS)])
    adata = ad.AnnData(
        sparse.csr_matrix((N_CELLS, len(genes)), dtype=np.float32), obs=obs, var=pd.DataFrame(index=genes)
    )
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def n_committed(store):
    return len(list((store / "shards").glob("*.json"))) if (store / "shards").is_dir() else 0


def kill_after(proc, store, *, n_more, fraction):
    """SIGKILL ``proc`` a random fraction of one shard's time after ``n_more`` further shards are committed.

    The pause scales with the commit interval measured on this machine, so the kill lands mid-shard,
    mid-commit or between shards whether a shard takes 5 ms (a fast CI runner) or 500 ms.
    """
    target, seen, stamps = n_committed(store) + n_more, n_committed(store), []
    deadline = time.monotonic() + 600
    while seen < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
        now = n_committed(store)
        if now > seen:
            stamps.append(time.monotonic())
            seen = now
    interval = stamps[-1] - stamps[-2] if len(stamps) >= 2 else 0.01
    time.sleep(fraction * interval)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_three_times_then_resume_equals_an_uninterrupted_run(sentences_file, tiny_bert_dir, tmp_path):
    store = tmp_path / "killed"
    rng = np.random.default_rng(1)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(sentences_file), str(store), str(tiny_bert_dir)])
        kill_after(proc, store, n_more=int(rng.integers(1, 4)), fraction=float(rng.uniform(0, 1)))
        assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed; use more shards"
    n_before = n_committed(store)
    assert 3 <= n_before < N_CELLS // SHARD

    resumed = sl.jobs.embed(
        sentences_file, store, model=str(tiny_bert_dir), shard_size=SHARD, batch_size=8, progress=False
    )
    assert resumed.last_run.n_skipped == n_before
    whole = sl.jobs.embed(
        sentences_file, tmp_path / "whole", model=str(tiny_bert_dir), shard_size=SHARD, batch_size=8, progress=False
    )
    assert np.abs(resumed.read("embedding") - whole.read("embedding")).max() == 0
    np.testing.assert_array_equal(resumed.read("truncated"), whole.read("truncated"))

    commits = Counter(e["shard"] for e in resumed.events() if e["event"] == "commit")
    assert max(commits.values()) == 1, f"a shard was committed twice: {commits}"
    writers = {resumed.record(i)["pid"] for i in range(resumed.n_shards)}
    assert len(writers) >= 3  # shards come from several of the killed processes and the resumed one
