"""An on-disk store of sharded results: one zarr array per output, one chunk per shard, each written atomically.

Layout of a store folder::

    manifest.json      what the job is (model, revision, every parameter that changes results, input, plan)
    <output>.zarr/     one zarr array per output, rows = cells, chunked by shard along the first axis
    shards/<i>.json    commit record of shard ``i``: its range and the SHA-256 of each output's rows
    log.jsonl          one line per event (``start``, ``commit``), for auditing which process did what
    tmp/               shards being written

A shard is written into a private temporary array with the same zarr metadata, then its chunk file is moved
into place atomically (:mod:`sc_llm.core.base.atomic`), and only then is its commit record written (atomically
too). A shard is therefore either complete with its checksum or absent: a job killed at any point resumes from
the committed shards and recomputes the others, and a store written by a different job is refused rather than
mixed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..base.atomic import atomic_folder, replace, write_json
from ..base.identity import checksum

FORMAT = "sc_llm.shards/1"
_MANIFEST = "manifest.json"
_BOOKKEEPING = ("ranges", "shards", "complete", "created")  # manifest keys that are not the job's identity


class StoreMismatchError(ValueError):
    """The store holds the results of a different job (another model, parameter, input or shard plan)."""


class DamagedStoreError(StoreMismatchError):
    """A file of the store (manifest, commit record, chunk) cannot be read: it was truncated or edited."""


def _read_json(path: Path, what: str, fix: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = f"{what} {str(path)!r} is damaged (not valid JSON: {e}); {fix}."
        raise DamagedStoreError(msg) from e


def shard_ranges(n_cells: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` covering ``range(n_cells)`` in consecutive shards of ``shard_size`` cells."""
    if shard_size < 1:
        msg = f"`shard_size` must be positive, got {shard_size}."
        raise ValueError(msg)
    return [(s, min(s + shard_size, n_cells)) for s in range(0, n_cells, shard_size)]


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so that tuples, numpy scalars … compare equal to what is read back."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the store, {b!r} now")
    return out


class ShardStore:
    """A folder of sharded results; use :meth:`~sc_llm.jobs.ShardStore.open_or_create` to start or resume a job.

    Parameters
    ----------
    path
        The store folder (it must hold a ``manifest.json``).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / _MANIFEST
        if not manifest.is_file():
            msg = f"{str(self.path)!r} is not a sc_llm shard store (no {_MANIFEST})."
            raise FileNotFoundError(msg)
        self.manifest: dict[str, Any] = _read_json(
            manifest, "the store's manifest", "delete the store (or pass overwrite=True) and rerun the job"
        )
        if self.manifest.get("format") != FORMAT:
            msg = f"{str(self.path)!r} has format {self.manifest.get('format')!r}; this sc_llm reads {FORMAT!r}."
            raise StoreMismatchError(msg)
        self.ranges = [tuple(r) for r in self.manifest["ranges"]]
        self.last_run: Any = None  # the RunSummary of the last run in this process, set by the runners

    # --- creation and identity
    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        identity: Mapping[str, Any],
        *,
        n_cells: int,
        shard_size: int,
        outputs: Mapping[str, tuple[tuple[int, ...], str]],
        overwrite: bool = False,
    ) -> ShardStore:
        """Resume the store at ``path`` if it holds this job, create it if absent, refuse it otherwise.

        ``identity`` holds everything that changes the results (model, revision, parameters, input);
        ``outputs`` maps each output name to its per-cell shape and dtype, e.g. ``{"embedding": ((384,), "float32")}``.
        ``overwrite=True`` deletes a store of a different job first.
        """
        path = Path(path)
        wanted = _jsonable(
            {
                "format": FORMAT,
                **identity,
                "n_cells": int(n_cells),
                "shard_size": int(shard_size),
                "outputs": {k: {"shape": list(s), "dtype": str(np.dtype(d))} for k, (s, d) in outputs.items()},
            }
        )
        if path.exists() and any(path.iterdir()):
            if not (path / _MANIFEST).is_file() and not overwrite:
                msg = (
                    f"{str(path)!r} exists and is not a sc_llm shard store; choose another path or pass overwrite=True."
                )
                raise StoreMismatchError(msg)
            if (path / _MANIFEST).is_file():
                try:
                    store = cls(path)
                except DamagedStoreError:
                    if not overwrite:
                        raise
                    shutil.rmtree(path)
                    return cls._create(path, wanted, shard_ranges(n_cells, shard_size))
                old = {k: v for k, v in store.manifest.items() if k not in _BOOKKEEPING}
                diff = _differences(old, wanted)
                if not diff:
                    return store
                if not overwrite:
                    msg = (
                        f"The store {str(path)!r} holds results of a different job, which would be mixed with "
                        f"these: {'; '.join(diff)}. Pass overwrite=True (CLI: --overwrite) to discard it, or "
                        "use a new store."
                    )
                    raise StoreMismatchError(msg)
            shutil.rmtree(path)
        return cls._create(path, wanted, shard_ranges(n_cells, shard_size))

    @classmethod
    def _create(cls, path: Path, manifest: dict, ranges: list[tuple[int, int]]) -> ShardStore:
        import zarr

        if path.exists():
            path.rmdir()  # an empty folder left for us (a non-empty one was refused or deleted above)
        with atomic_folder(path) as staging:
            n, size = manifest["n_cells"], max(manifest["shard_size"], 1)
            for name, spec in manifest["outputs"].items():
                shape = tuple(spec["shape"])
                zarr.create_array(
                    store=str(staging / f"{name}.zarr"),
                    shape=(n, *shape),
                    chunks=(min(size, max(n, 1)), *shape),
                    dtype=spec["dtype"],
                    fill_value=0,
                    config={"write_empty_chunks": True},
                )
            (staging / "shards").mkdir()
            (staging / "tmp").mkdir()
            plan = {"ranges": [list(r) for r in ranges], "created": time.time()}
            write_json(staging / _MANIFEST, {**manifest, **plan})
        return cls(path)

    # --- state
    @property
    def n_shards(self) -> int:
        """Number of shards in the plan."""
        return len(self.ranges)

    def committed(self) -> list[int]:
        """Indices of the shards whose commit record exists."""
        out = []
        for p in (self.path / "shards").glob("*.json"):
            if p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def pending(self) -> list[int]:
        """Indices of the shards still to compute, in order."""
        done = set(self.committed())
        return [i for i in range(self.n_shards) if i not in done]

    def record(self, index: int) -> dict[str, Any]:
        """The commit record of shard ``index``."""
        path = self.path / "shards" / f"{index:07d}.json"
        return _read_json(path, f"the commit record of shard {index}", f"delete {path.name} and rerun the job")

    def log(self, event: str, index: int, **info: Any) -> None:
        """Append one event line to ``log.jsonl`` (a single ``write`` in append mode)."""
        line = json.dumps({"event": event, "shard": int(index), "pid": os.getpid(), "time": time.time(), **info})
        fd = os.open(self.path / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        """All events of ``log.jsonl`` (lines cut short by a kill are skipped)."""
        path = self.path / "log.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    # --- writing
    def commit(self, index: int, results: Mapping[str, np.ndarray], **info: Any) -> dict[str, Any]:
        """Write shard ``index`` atomically: every output's rows, then its commit record."""
        start, stop = self.ranges[index]
        outputs = self.manifest["outputs"]
        if set(results) != set(outputs):
            msg = f"Shard {index} produced outputs {sorted(results)}, the store expects {sorted(outputs)}."
            raise ValueError(msg)
        staging = self.path / "tmp" / f"{index:07d}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        sums = {}
        try:
            for name, values in results.items():
                values = np.asarray(values, dtype=outputs[name]["dtype"])
                want = (stop - start, *outputs[name]["shape"])
                if values.shape != want:
                    msg = f"Shard {index} output {name!r} has shape {values.shape}, expected {want}."
                    raise ValueError(msg)
                sums[name] = checksum(values)
                self._move_chunk(name, start, stop, values, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        rec = {"index": index, "start": start, "stop": stop, "sha256": sums, "pid": os.getpid(), **info}
        write_json(self.path / "shards" / f"{index:07d}.json", rec)
        self.log("commit", index)
        return rec

    def _move_chunk(self, name: str, start: int, stop: int, values: np.ndarray, staging: Path) -> None:
        """Write rows into a private copy of the array (same metadata), then move its chunk file into place."""
        import zarr

        src = self.path / f"{name}.zarr"
        tmp = staging / f"{name}.zarr"
        tmp.mkdir()
        shutil.copy(src / "zarr.json", tmp / "zarr.json")
        arr = zarr.open_array(str(tmp), mode="r+").with_config({"write_empty_chunks": True})
        arr[start:stop] = values
        files = [p for p in tmp.rglob("*") if p.is_file() and p.name != "zarr.json"]
        if len(files) != 1:
            msg = f"Expected one chunk file for rows {start}:{stop} of {name!r}, zarr wrote {len(files)}."
            raise RuntimeError(msg)
        rel = files[0].relative_to(tmp)
        with files[0].open("rb") as f:
            os.fsync(f.fileno())
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        replace(files[0], src / rel)

    # --- reading
    def array(self, name: str):
        """The zarr array of output ``name`` (read lazily; rows of uncommitted shards are zeros)."""
        import zarr

        return zarr.open_array(str(self.path / f"{name}.zarr"), mode="r")

    def read(self, name: str, *, verify: bool = True) -> np.ndarray:
        """Output ``name`` for all cells, checking that every shard is committed and (``verify``) its checksum."""
        pending = self.pending()
        if pending:
            msg = f"{len(pending)} of {self.n_shards} shards of {str(self.path)!r} are not computed yet; run the job."
            raise RuntimeError(msg)
        array = self.array(name)
        values = np.empty(array.shape, dtype=array.dtype)
        for i, (start, stop) in enumerate(self.ranges):
            values[start:stop] = self._read_rows(array, name, i)
        if verify:
            for i, (start, stop) in enumerate(self.ranges):
                if checksum(values[start:stop]) != self.record(i)["sha256"][name]:
                    msg = (
                        f"Shard {i} (cells {start}:{stop}) of {name!r} in {str(self.path)!r} does not match its "
                        "checksum; the store was modified. Delete that shard's record in shards/ and rerun the job."
                    )
                    raise RuntimeError(msg)
        return values

    def _read_rows(self, array, name: str, index: int) -> np.ndarray:
        start, stop = self.ranges[index]
        try:
            return array[start:stop]
        except Exception as e:  # zarr and its codecs raise many types for a damaged chunk
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            msg = (
                f"Shard {index} (cells {start}:{stop}) of {name!r} in {str(self.path)!r} cannot be read "
                f"({type(e).__name__}: {first}): its chunk file is damaged. Delete shards/{index:07d}.json and rerun "
                "the job to recompute that shard."
            )
            raise DamagedStoreError(msg) from e

    def finalize(self) -> None:
        """Record every shard's checksums in the manifest once all shards are committed."""
        if self.pending() or self.manifest.get("complete"):
            return
        shards = [{"range": list(self.ranges[i]), "sha256": self.record(i)["sha256"]} for i in range(self.n_shards)]
        self.manifest = {**self.manifest, "shards": shards, "complete": True}
        write_json(self.path / _MANIFEST, self.manifest)
        shutil.rmtree(self.path / "tmp", ignore_errors=True)
        (self.path / "tmp").mkdir(exist_ok=True)
