"""What every sharded job shares: its identity record, its store, the engine options and the run loop.

A job is a :class:`~sc_llm.core.shards.runners.ShardTask` (what a worker loads once and computes per shard),
an *identity* (everything that changes its results: the model's identity, the parameters, the input and the
sc_llm version) and a store. :func:`run_job` opens the store for that identity (resuming it, or refusing a
store of another job), runs the pending shards on the chosen engine and returns the store. Every job of
``sl.jobs`` and ``sl.tl.embed(cache_dir=...)`` goes through here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._utils._logging import logg
from .._version import __version__

if TYPE_CHECKING:
    from ..core.shards import ShardStore

DEFAULT_SHARD_SIZE = 10_000
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EngineOptions:
    """Where and how the shards of a job run (never part of its identity: results are the same on any engine)."""

    engine: str = "local"
    num_workers: int = 2
    num_gpus_per_worker: float = 0
    max_retries: int = 3
    host_cpus: int = 0
    overwrite: bool = False
    progress: bool = True

    def check(self, shard_size: int) -> EngineOptions:
        """Validate the options and ``shard_size`` before anything is loaded; returns ``self``."""
        if self.engine not in ENGINES:
            msg = f"`engine` must be one of {ENGINES}, got {self.engine!r}."
            raise ValueError(msg)
        for name in ("num_workers", "shard_size"):
            value = shard_size if name == "shard_size" else self.num_workers
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"`{name}` must be a positive integer, got {value!r}."
                raise ValueError(msg)
        if isinstance(self.host_cpus, bool) or not isinstance(self.host_cpus, int) or self.host_cpus < 0:
            msg = f"`host_cpus` must be a non-negative integer, got {self.host_cpus!r}."
            raise ValueError(msg)
        if self.host_cpus and self.engine != "ray":
            msg = "`host_cpus` runs on Ray: pass engine='ray', or host_cpus=0."
            raise ValueError(msg)
        return self

    def device(self, device: Any) -> str:
        """The device a worker's model runs on: as given, else CUDA on Ray GPU workers, else the local choice."""
        if self.engine == "ray":
            return str(device or ("cuda" if self.num_gpus_per_worker > 0 else "cpu"))
        from ..core.base.device import resolve_device

        return resolve_device(device).type

    def dtype(self, device: str, dtype: Any) -> str:
        """The compute dtype the workers run in, resolved here and recorded: a job never resumes in another."""
        import torch

        from ..core.base.device import autocast_dtype, dtype_name, precision_name

        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():  # Ray GPU workers, decided on their machine
            return precision_name(dtype)
        return dtype_name(autocast_dtype(dev, dtype))

    def as_dict(self) -> dict[str, Any]:
        """The options as keyword arguments (e.g. for another job)."""
        return asdict(self)


def job_identity(job: str, model: Mapping[str, Any], params: Mapping[str, Any], input: Mapping[str, Any]) -> dict:
    """The identity of a job: its kind, the model's identity, the parameters, the input, the sc_llm version."""
    return {
        "job": job,
        "model": dict(model),
        "params": dict(params),
        "input": dict(input),
        "sc_llm_version": __version__,
    }


def store_path(store, cache_dir, identity: Mapping[str, Any], shard_size: int) -> Path:
    """``store`` itself, or ``cache_dir/embed-<hash of the job>`` (so that a different job gets its own store)."""
    from ..core.base.identity import hash_strings

    if (store is None) == (cache_dir is None):
        msg = "Pass exactly one of `store` and `cache_dir`."
        raise ValueError(msg)
    if store is not None:
        return Path(store)
    key = hash_strings([json.dumps({**identity, "shard_size": shard_size}, sort_keys=True, default=str)])
    return Path(cache_dir).expanduser() / f"embed-{key[:16]}"


def run_job(
    task,
    identity: Mapping[str, Any],
    store: str | os.PathLike,
    *,
    n_cells: int,
    shard_size: int,
    outputs: Mapping[str, tuple[tuple[int, ...], str]],
    options: EngineOptions,
    what: str,
) -> ShardStore:
    """Open (resume, or refuse if it holds another job) the store and compute its pending shards.

    ``outputs`` maps each output to its per-cell shape and dtype; ``what`` starts the log line (``'embedding with …'``).
    Returns the store, with ``store.last_run`` the :class:`~sc_llm.core.shards.runners.RunSummary`.
    """
    from ..core.shards import ShardStore, run_local, run_ray

    options.check(shard_size)
    shards = ShardStore.open_or_create(
        store, identity, n_cells=n_cells, shard_size=shard_size, outputs=outputs, overwrite=options.overwrite
    )
    start = logg.info(
        f"{what}: {n_cells} cells into {str(store)!r}, {len(shards.pending())} of {shards.n_shards} shards to "
        f"compute ({options.engine} engine)"
    )
    if options.engine == "ray":
        kwargs = {"num_workers": options.num_workers, "num_gpus": options.num_gpus_per_worker}
        kwargs |= {"max_retries": options.max_retries, "host_cpus": options.host_cpus}
        summary = run_ray(task, shards, progress=options.progress, **kwargs)
    else:
        summary = run_local(task, shards, progress=options.progress)
    logg.info(f"    {summary.line()}", time=start)
    shards.last_run = summary
    return shards


def sampling_options(n_genes, do_sample, temperature, top_k, top_p, seed, batch_size) -> dict[str, Any]:
    """The generation settings of a cell-LM job, checked and typed (they are part of its identity)."""
    from .._utils._validation import check_sampling

    if not isinstance(do_sample, bool):
        msg = f"`do_sample` must be True or False, got {do_sample!r}."
        raise TypeError(msg)
    kw = {"n_genes": n_genes, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    checked = check_sampling(**kw, batch_size=batch_size)
    order = ("n_genes", "do_sample", "temperature", "top_k", "top_p", "seed", "batch_size")
    return {k: do_sample if k == "do_sample" else checked[k] for k in order}


def cell_lm_identity(model: str | os.PathLike, task: str, cell_types, perturbation: str | None = None):
    """``(folder, identity)`` of a saved cell LM folder, checked to answer this request (task, labels)."""
    from ..core.base.identity import model_identity
    from ..core.cell_lm.predict import check_labels
    from ..core.cell_lm.saved import read_saved

    folder = Path(model).expanduser().resolve()
    cfg, _, decoder = read_saved(folder)  # a clear error for anything but an intact folder of CellLM.save
    check_labels(cfg.get("labels"), task, cell_types, perturbation)  # before any shard runs
    if decoder is None:
        logg.warning("the cell LM has no fitted sentence decoder: `read_cells` will give all-zero `.X`.")
    ident = model_identity(folder)
    return str(folder), {"id": ident["id"], "fingerprint": ident["fingerprint"]}
