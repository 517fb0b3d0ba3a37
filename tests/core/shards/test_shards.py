"""The shard store and the local runner, with a small numpy task (no model needed to test the bookkeeping)."""

import json

import numpy as np
import pytest

from sc_llm.core.shards import (
    ListSentences,
    ShardStore,
    StoreMismatchError,
    TextEmbedTask,
    checksum,
    run_local,
    shard_ranges,
)

OUTPUTS = {"emb": ((3,), "float32"), "flag": ((), "bool")}


class CountingTask:
    """emb[i] = (i, 2i, 3i) * scale; flag[i] = i is even. Counts calls to setup and compute."""

    def __init__(self, scale=1.0):
        self.scale = scale
        self.setups = 0
        self.calls = []

    def setup(self):
        self.setups += 1

        def compute(start, stop):
            self.calls.append((start, stop))
            i = np.arange(start, stop, dtype=np.float32)[:, None]
            emb = i * np.array([1, 2, 3], dtype=np.float32) * self.scale
            return {"emb": emb, "flag": np.arange(start, stop) % 2 == 0}

        return compute


def make(path, n=10, shard_size=3, identity=None, **kwargs):
    identity = identity or {"model": {"id": "m", "revision": "abc"}, "params": {"a": 1}}
    return ShardStore.open_or_create(path, identity, n_cells=n, shard_size=shard_size, outputs=OUTPUTS, **kwargs)


def expected(n):
    i = np.arange(n, dtype=np.float32)[:, None]
    return i * np.array([1, 2, 3], dtype=np.float32)


def test_shard_ranges():
    assert shard_ranges(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert shard_ranges(6, 3) == [(0, 3), (3, 6)]
    assert shard_ranges(0, 3) == []
    with pytest.raises(ValueError, match="shard_size"):
        shard_ranges(5, 0)


def test_local_run_writes_every_shard_once_and_merges_by_cell(tmp_path):
    store = make(tmp_path / "s")
    task = CountingTask()
    summary = run_local(task, store, progress=False)
    assert (summary.n_computed, summary.n_skipped, summary.n_cells) == (4, 0, 10)
    np.testing.assert_array_equal(store.read("emb"), expected(10))
    np.testing.assert_array_equal(store.read("flag"), np.arange(10) % 2 == 0)
    assert task.calls == [(0, 3), (3, 6), (6, 9), (9, 10)] and task.setups == 1
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shards"]) == 4
    assert manifest["shards"][1]["sha256"]["emb"] == checksum(expected(10)[3:6])
    assert "summary" not in manifest and summary.line().startswith("4 shard(s) computed")


def test_rerun_skips_finished_shards_and_loads_no_model(tmp_path):
    store = make(tmp_path / "s")
    run_local(CountingTask(), store, progress=False)
    again = CountingTask()
    summary = run_local(again, make(tmp_path / "s"), progress=False)
    assert (summary.n_computed, summary.n_skipped, again.setups) == (0, 4, 0)


def test_resume_computes_only_missing_shards(tmp_path):
    store = make(tmp_path / "s")
    compute = CountingTask().setup()
    store.commit(2, compute(6, 9))
    task = CountingTask()
    run_local(task, make(tmp_path / "s"), progress=False)
    assert task.calls == [(0, 3), (3, 6), (9, 10)]
    np.testing.assert_array_equal(store.read("emb"), expected(10))
    commits = [e["shard"] for e in store.events() if e["event"] == "commit"]
    assert sorted(commits) == [0, 1, 2, 3]


def test_partial_shard_left_by_a_crash_is_recomputed(tmp_path):
    """A chunk file without its commit record (crash between the two) counts as absent."""
    store = make(tmp_path / "s")
    store.commit(1, CountingTask(scale=5.0).setup()(3, 6))
    (tmp_path / "s" / "shards" / "0000001.json").unlink()
    (tmp_path / "s" / "tmp" / "0000002-stale").mkdir()  # a staging folder left behind
    assert store.pending() == [0, 1, 2, 3]
    run_local(CountingTask(), store, progress=False)
    np.testing.assert_array_equal(store.read("emb"), expected(10))
    assert not any((tmp_path / "s" / "tmp").iterdir())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"identity": {"model": {"id": "m", "revision": "def"}, "params": {"a": 1}}}, "model.revision"),
        ({"identity": {"model": {"id": "m", "revision": "abc"}, "params": {"a": 2}}}, "params.a"),
        ({"shard_size": 4}, "shard_size"),
        ({"n": 11}, "n_cells"),
    ],
)
def test_a_different_job_is_refused_then_overwritten_on_request(tmp_path, change, named):
    store = make(tmp_path / "s")
    run_local(CountingTask(), store, progress=False)
    with pytest.raises(StoreMismatchError, match=rf"{named}.*overwrite=True"):
        make(tmp_path / "s", **change)
    fresh = make(tmp_path / "s", overwrite=True, **change)
    assert fresh.committed() == [] and not fresh.manifest.get("complete")


def test_refuses_a_folder_that_is_not_a_store(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "precious.txt").write_text("x")
    with pytest.raises(StoreMismatchError, match="not a sc_llm shard store"):
        make(tmp_path / "s")
    assert (tmp_path / "s" / "precious.txt").exists()
    make(tmp_path / "empty")  # an empty folder is fine


def test_read_checks_completeness_and_checksums(tmp_path):
    store = make(tmp_path / "s")
    store.commit(0, CountingTask().setup()(0, 3))
    with pytest.raises(RuntimeError, match="3 of 4 shards"):
        store.read("emb")
    run_local(CountingTask(), store, progress=False)
    rec = json.loads((tmp_path / "s" / "shards" / "0000002.json").read_text())
    rec["sha256"]["emb"] = "0" * 64
    (tmp_path / "s" / "shards" / "0000002.json").write_text(json.dumps(rec))
    with pytest.raises(RuntimeError, match=r"Shard 2 .* does not match its checksum"):
        store.read("emb")


def test_commit_rejects_wrong_shapes_and_names(tmp_path):
    store = make(tmp_path / "s")
    with pytest.raises(ValueError, match="shape"):
        store.commit(0, {"emb": np.zeros((2, 3)), "flag": np.zeros(3, bool)})
    with pytest.raises(ValueError, match="outputs"):
        store.commit(0, {"emb": np.zeros((3, 3))})
    assert store.committed() == []


def test_results_are_a_plain_zarr_array(tmp_path):
    import zarr

    store = make(tmp_path / "s")
    run_local(CountingTask(), store, progress=False)
    arr = zarr.open_array(str(tmp_path / "s" / "emb.zarr"), mode="r")
    assert arr.shape == (10, 3) and arr.chunks == (3, 3)
    np.testing.assert_array_equal(arr[4:7], expected(10)[4:7])


def test_text_task_host_stage_payload_gives_the_same_shard(tiny_bert_dir):
    """What a host actor prepares (tokenizer only, no weights) finishes into the same shard as the one-step path."""
    rng = np.random.default_rng(0)
    genes = ["CD3E", "LYZ", "MS4A1", "CD79A", "NKG7", "GNLY", "CST3", "S100A8"]
    sentences = [" ".join(rng.choice(genes, rng.integers(1, 12))) for _ in range(30)]
    task = TextEmbedTask(
        str(tiny_bert_dir),
        ListSentences(sentences),
        sentences[:8],
        batch_size=4,
        encoder_kwargs={"device": "cpu", "max_length": 10},
    )
    compute, prepare = task.setup(), task.host_stage()
    payload = prepare(5, 25)
    assert len(payload["ids"]) == 20 and payload["truncated"].any()
    direct, staged = compute(5, 25), compute(5, 25, payload)
    np.testing.assert_allclose(staged["embedding"], direct["embedding"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(staged["truncated"], direct["truncated"])


class _FakeHostActor:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls
        self.run = self  # ``actor.run.remote(start, stop)``

    def remote(self, start, stop):
        self.calls.append((self.name, start))
        return (self.name, start, stop)


def test_host_stage_dispatch_prepares_ahead_round_robin_and_hands_each_shard_over_once(tmp_path):
    from sc_llm.core.shards.runners import _HostStage

    store = ShardStore.open_or_create(
        tmp_path / "s", {"job": "t"}, n_cells=50, shard_size=10, outputs={"x": ((), "float32")}
    )
    calls = []
    stage = _HostStage([_FakeHostActor("a", calls), _FakeHostActor("b", calls)], store, [0, 1, 2, 3, 4], ahead=3)
    stage.top_up()
    assert calls == [("a", 0), ("b", 10), ("a", 20)]  # three shards ahead, round robin
    stage.queue.pop(0)
    assert stage.payload(0) == ("a", 0, 10)
    assert calls[-1] == ("b", 30) and len(calls) == 4  # one more prepared as one was handed over
    assert stage.payload(0) is None  # handed over once
    empty = _HostStage([], store, [0, 1], ahead=2)
    empty.top_up()
    assert empty.payload(0) is None
