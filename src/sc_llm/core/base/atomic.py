"""Atomic writes: the one place sc_llm puts a file or a folder into place.

Everything sc_llm saves (model folders, checkpoints, shard stores, caches, CLI outputs) is first written under
a temporary name next to its destination, flushed, then moved over the destination with :func:`os.replace`,
which is atomic on one file system: a process killed at any moment leaves either the previous content or the
new one, never a half-written file. Folders are written whole in a temporary folder and renamed into place; an
existing folder is moved aside first and deleted after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` over ``dst`` atomically (both on one file system); the only ``os.replace`` of sc_llm."""
    os.replace(src, dst)  # noqa: PTH105  (the one os.replace of the package)


def _temporary_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = True, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; once the block succeeds, move it over ``path``.

    The block writes the file (by any means: ``np.save``, ``safetensors.save_file``, ``open``); on an error
    the temporary file is removed and ``path`` is untouched. ``suffix`` ends the temporary name (for writers
    that choose a format by it, e.g. ``'.h5ad'``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path, suffix)
    try:
        yield tmp
        if fsync:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 1, sort_keys: bool = True, **kw) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``kw``: further :func:`json.dumps` options)."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, **kw))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a new, empty temporary folder next to ``path``; once the block succeeds, it replaces ``path``.

    An existing ``path`` is moved aside and deleted only after the new folder is in place, so a kill at any
    moment leaves the old folder or the new one. On an error the temporary folder is removed.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = _temporary_name(path, ".old")
            replace(path, old)
        replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
