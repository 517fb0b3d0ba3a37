"""Run a sharded job: in this process (default, no engine needed) or on Ray actors (one model per worker).

A *task* is a picklable object whose ``setup()`` loads the model once and returns a function
``compute(start, stop) -> {output name: array of stop - start rows}``. The runners ask the store which shards
are pending, compute them and commit each one atomically; results are merged by cell index in the store.

A task may also have a *host stage*: ``host_stage()`` returns ``prepare(start, stop) -> payload``, the work of a
shard that needs no model (reading, ranking, tokenising), and ``compute(start, stop, payload)`` then finishes the
shard from that payload. On Ray, ``host_cpus`` actors run the host stage of the next shards on other cores while
the model workers compute, so the model's device does not wait on one core's host work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..base.atomic import write_text
from .store import ShardStore

FAULT_ENV = "SC_LLM_SHARD_FAULTS"  # test hook: a file listing shard indices at which the worker process dies once


class ShardTask(Protocol):
    """What a runner needs from a job: ``setup()`` loads the model and returns the per-shard function."""

    def setup(self) -> Callable[[int, int], Mapping[str, np.ndarray]]:
        """Load the model once; return ``compute(start, stop)``."""


@dataclass
class RunSummary:
    """What a run did: shards computed and skipped, cells computed, wall time and seconds per shard."""

    n_shards: int
    n_skipped: int
    n_computed: int = 0
    n_cells: int = 0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    shard_seconds: list[float] = field(default_factory=list)
    engine: str = "local"
    n_workers: int = 1

    @property
    def cells_per_second(self) -> float:
        """Cells computed per second of wall time (model loading included)."""
        return self.n_cells / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        """A one-line summary."""
        return (
            f"{self.n_computed} shard(s) computed, {self.n_skipped} already done, {self.n_cells} cells in "
            f"{self.seconds:.1f} s ({self.cells_per_second:.1f} cells/s, engine={self.engine}, "
            f"workers={self.n_workers})"
        )


def _maybe_die(index: int, fault_file: str | None) -> None:
    """Test hook: if ``fault_file`` lists ``index``, remove it from the file and kill this process at once."""
    if not fault_file or not Path(fault_file).is_file():
        return
    listed = Path(fault_file).read_text().split()
    if str(index) not in listed:
        return
    listed.remove(str(index))
    write_text(fault_file, " ".join(listed))
    os._exit(70)


def compute_shard(
    compute, store: ShardStore, index: int, fault_file: str | None = None, payload: Any = None
) -> tuple[int, float]:
    """Compute (from the host stage's ``payload`` when given) and commit one shard; returns ``(cells, seconds)``."""
    start, stop = store.ranges[index]
    store.log("start", index)
    t0 = time.perf_counter()
    results = compute(start, stop) if payload is None else compute(start, stop, payload)
    _maybe_die(index, fault_file)  # mid-shard: computed but not committed
    seconds = time.perf_counter() - t0
    store.commit(index, results, seconds=seconds)
    return stop - start, seconds


def run_local(task: ShardTask, store: ShardStore, *, progress: bool = True) -> RunSummary:
    """Compute the pending shards of ``store`` one after the other in this process."""
    from tqdm.auto import tqdm

    pending = store.pending()
    summary = RunSummary(n_shards=store.n_shards, n_skipped=store.n_shards - len(pending))
    t0 = time.perf_counter()
    if pending:
        compute = task.setup()
        summary.setup_seconds = time.perf_counter() - t0
        fault_file = os.environ.get(FAULT_ENV)
        total = sum(store.ranges[i][1] - store.ranges[i][0] for i in pending)
        with tqdm(total=total, disable=not progress, desc="shards", unit="cell") as bar:
            for i in pending:
                n, seconds = compute_shard(compute, store, i, fault_file)
                summary.n_computed += 1
                summary.n_cells += n
                summary.shard_seconds.append(seconds)
                bar.update(n)
    summary.seconds = time.perf_counter() - t0
    store.finalize()
    store.last_run = summary
    return summary


class _ShardActor:
    """A Ray actor: loads the model once, then computes and commits the shards it is given."""

    def __init__(self, task: ShardTask, store_path: str, fault_file: str | None):
        self.compute = task.setup()
        self.store = ShardStore(store_path)
        self.fault_file = fault_file

    def run(self, index: int, payload: Any = None) -> tuple[int, int, float]:
        n, seconds = compute_shard(self.compute, self.store, index, self.fault_file, payload)
        return index, n, seconds


class _HostActor:
    """A Ray actor on one CPU: loads what the host stage needs once (e.g. a tokenizer), then prepares shards."""

    def __init__(self, task: ShardTask):
        self.prepare = task.host_stage()

    def run(self, start: int, stop: int) -> Any:
        return self.prepare(start, stop)


class _HostStage:
    """Keeps the host stage of the next shards in flight on the host actors (round robin), ``ahead`` at most."""

    def __init__(self, actors: list, store: ShardStore, queue: list[int], ahead: int):
        self.actors, self.store, self.queue, self.ahead = actors, store, queue, ahead
        self.refs: dict[int, Any] = {}
        self.n_sent = 0

    def top_up(self) -> None:
        for index in self.queue[: self.ahead]:
            if index not in self.refs and self.actors:
                actor = self.actors[self.n_sent % len(self.actors)]
                self.refs[index] = actor.run.remote(*self.store.ranges[index])
                self.n_sent += 1

    def payload(self, index: int) -> Any:
        """The prepared payload of ``index`` (an object reference Ray resolves for the model worker), or None."""
        ref = self.refs.pop(index, None)
        self.top_up()
        return ref


def run_ray(
    task: ShardTask,
    store: ShardStore,
    *,
    num_workers: int = 2,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    host_cpus: int = 0,
    progress: bool = True,
    init_kwargs: Mapping[str, Any] | None = None,
) -> RunSummary:
    """Compute the pending shards on ``num_workers`` Ray actors, each holding one copy of the model.

    Each actor reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs; shards go to whichever actor is free. An actor
    whose process dies is restarted and its shard retried, up to ``max_retries`` times. Ray is started locally
    (``ray.init(**init_kwargs)``, by default with ``num_workers * num_cpus`` CPUs) unless already initialised;
    pass ``init_kwargs={"address": "auto"}`` to join a running cluster. The store must be on a file system
    that every worker sees. ``host_cpus`` > 0 (tasks with a host stage only) adds that many one-CPU actors that
    prepare the next shards while the model workers compute.
    """
    from ..base.deps import import_optional

    ray = import_optional("ray", "scale")
    if num_workers < 1 or max_retries < 0 or host_cpus < 0:
        msg = (
            "`num_workers` must be positive and `max_retries`, `host_cpus` non-negative, got "
            f"{num_workers}, {max_retries}, {host_cpus}."
        )
        raise ValueError(msg)
    if host_cpus and not hasattr(task, "host_stage"):
        msg = f"`host_cpus` needs a task with a host stage; {type(task).__name__} has none (use host_cpus=0)."
        raise ValueError(msg)
    pending = store.pending()
    summary = RunSummary(
        n_shards=store.n_shards, n_skipped=store.n_shards - len(pending), engine="ray", n_workers=num_workers
    )
    t0 = time.perf_counter()
    if not pending:
        store.finalize()
        store.last_run = summary
        return summary
    if not ray.is_initialized():
        kwargs = {"num_cpus": int(np.ceil(num_workers * num_cpus)) + host_cpus, "include_dashboard": False}
        ray.init(**{**kwargs, **(init_kwargs or {})})
    actor_cls = ray.remote(_ShardActor).options(
        num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_retries, max_task_retries=max_retries
    )
    fault_file = os.environ.get(FAULT_ENV)
    actors = [actor_cls.remote(task, str(store.path), fault_file) for _ in range(min(num_workers, len(pending)))]
    host_cls = ray.remote(_HostActor).options(num_cpus=1, max_restarts=max_retries, max_task_retries=max_retries)
    hosts = [host_cls.remote(task) for _ in range(min(host_cpus, len(pending)))]
    try:
        _dispatch(ray, actors, hosts, store, pending, summary, progress)
    finally:
        for actor in actors + hosts:
            ray.kill(actor)
    summary.seconds = time.perf_counter() - t0
    store.finalize()
    store.last_run = summary
    return summary


def _dispatch(ray, actors, hosts, store: ShardStore, pending: list[int], summary: RunSummary, progress: bool) -> None:
    """Keep every actor busy with one shard at a time until none is left (its host stage prepared ahead)."""
    from tqdm.auto import tqdm

    queue = list(pending)
    host = _HostStage(hosts, store, queue, ahead=len(actors) + len(hosts))
    host.top_up()
    running = {}
    total = sum(store.ranges[i][1] - store.ranges[i][0] for i in pending)
    with tqdm(total=total, disable=not progress, desc="shards", unit="cell") as bar:
        for actor in actors:
            if queue:
                index = queue.pop(0)
                running[actor.run.remote(index, host.payload(index))] = actor
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(done[0])
            _, n, seconds = ray.get(done[0])
            summary.n_computed += 1
            summary.n_cells += n
            summary.shard_seconds.append(seconds)
            bar.update(n)
            if queue:
                index = queue.pop(0)
                running[actor.run.remote(index, host.payload(index))] = actor
