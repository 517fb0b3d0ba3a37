"""What identifies a model or an input: its hub commit or a fingerprint of its local files; hashes of names.

:func:`model_identity` is the record every job manifest and every ``.uns`` entry that names a model keeps:
``{'id', 'revision', 'fingerprint'}``, the resolved folder (or hub id), the commit when known, and a SHA-256
fingerprint of a local folder's files, so a changed checkpoint is never taken for the one a result came from.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

_WHOLE = 8 << 20  # files up to 8 MiB are hashed whole
_EDGE = 4 << 20  # larger files: size plus their first and last 4 MiB


def fingerprint_folder(folder: str | os.PathLike) -> str:
    """SHA-256 over the names, sizes and contents of a model folder's files (large files: size and both ends).

    Cheap for multi-GB checkpoints, stable across copies of the folder (modification times are ignored), and
    changed by any edit to a configuration, tokenizer or weight file. A file (e.g. one ``.gguf``) is
    fingerprinted alone, by the same rule.
    """
    root = Path(folder).expanduser()
    h = hashlib.sha256()
    if root.is_file():
        _hash_file(h, root, root.name)
        return h.hexdigest()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        _hash_file(h, p, rel.as_posix())
    return h.hexdigest()


def _hash_file(h, path: Path, name: str) -> None:
    size = path.stat().st_size
    h.update(f"{name}\0{size}\0".encode())
    with path.open("rb") as f:
        if size <= _WHOLE:
            h.update(f.read())
        else:
            h.update(f.read(_EDGE))
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))


def hash_strings(values) -> str:
    """SHA-256 of a sequence of strings (e.g. cell names), to recognise the same input again."""
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode())
        h.update(b"\0")
    return h.hexdigest()


def checksum(values: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes (independent of how zarr encodes it)."""
    values = np.ascontiguousarray(values)
    h = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    h.update(values.tobytes())
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_identity(model: str | os.PathLike, *, revision: str | None = None) -> dict[str, str | None]:
    """``{'id', 'revision', 'fingerprint'}`` of a checkpoint without loading it.

    A local folder (or a file, e.g. ``.gguf``) is identified by its resolved path and a fingerprint of its files
    (:func:`fingerprint_folder`); a hub id by itself and ``revision`` (fill in the commit once
    the model is resolved). A hub cache snapshot folder is named after its commit, which is kept as the revision.
    """
    p = Path(model).expanduser()
    if p.exists():
        commit = revision or (p.name if p.is_dir() and len(p.name) == 40 and _is_hex(p.name) else None)
        return {"id": str(p.resolve()), "revision": commit, "fingerprint": fingerprint_folder(p)}
    return {"id": str(model), "revision": revision, "fingerprint": None}


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def sha256_json(data) -> str:
    """SHA-256 of a JSON-able object in its canonical form (sorted keys), e.g. a saved model's configuration."""
    import json

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def file_checksums(folder: str | os.PathLike, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: SHA-256}`` of every file under ``folder`` (hidden files and ``exclude`` left out)."""
    root = Path(folder)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in exclude and not any(part.startswith(".") for part in p.relative_to(root).parts):
            out[rel] = sha256_file(p)
    return out


def changed_files(folder: str | os.PathLike, recorded: dict[str, str]) -> list[str]:
    """Files of ``recorded`` that are missing under ``folder`` or whose SHA-256 differs (sorted)."""
    root = Path(folder)
    return sorted(rel for rel, sha in recorded.items() if not (root / rel).is_file() or sha256_file(root / rel) != sha)
