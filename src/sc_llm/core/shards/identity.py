"""What identifies a model for a sharded job: its commit on the hub, or a fingerprint of its local files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_WHOLE = 8 << 20  # files up to 8 MiB are hashed whole
_EDGE = 4 << 20  # larger files: size plus their first and last 4 MiB


def fingerprint_folder(folder: str | os.PathLike) -> str:
    """SHA-256 over the names, sizes and contents of a model folder's files (large files: size and both ends).

    Cheap for multi-GB checkpoints, stable across copies of the folder (modification times are ignored), and
    changed by any edit to a configuration, tokenizer or weight file.
    """
    root = Path(folder).expanduser()
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        size = p.stat().st_size
        h.update(f"{rel.as_posix()}\0{size}\0".encode())
        with p.open("rb") as f:
            if size <= _WHOLE:
                h.update(f.read())
            else:
                h.update(f.read(_EDGE))
                f.seek(size - _EDGE)
                h.update(f.read(_EDGE))
    return h.hexdigest()


def hash_strings(values) -> str:
    """SHA-256 of a sequence of strings (e.g. cell names), to recognise the same input again."""
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode())
        h.update(b"\0")
    return h.hexdigest()
