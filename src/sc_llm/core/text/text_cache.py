"""A disk cache of text vectors keyed by (encoder identity, text), so each text is embedded once per model.

Layout: ``cache_dir/text-<sha256 of the encoder identity, 20 hex>/`` holds ``identity.json`` (what the
vectors come from, for people) and shards ``vectors-<id>.npz``, each with ``keys`` (SHA-256 hex of the texts,
``S64``), ``vectors`` (float32) and ``truncated`` (bool). Every call that embeds anything adds one shard,
written atomically (:mod:`~sc_llm.core.base.atomic`), so a kill leaves the cache as it was; a shard that cannot
be read or does not hold what it should is ignored with a warning, removed, and its texts are embedded again.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..base.atomic import atomic_file, write_json
from ..base.identity import sha256_json
from .texts import encode_texts, text_identity


@dataclass(frozen=True)
class CachedTexts:
    """What :func:`cached_encode` did.

    Attributes
    ----------
    n_texts
        Distinct texts asked for.
    n_cached
        Of those, how many were read from the cache.
    n_embedded
        How many were embedded now (``n_texts - n_cached``).
    folder
        The cache folder of this encoder, or ``None`` without a cache.
    identity_sha256
        SHA-256 of the encoder identity (:func:`~sc_llm.core.text.texts.text_identity`).
    """

    n_texts: int
    n_cached: int
    n_embedded: int
    folder: str | None
    identity_sha256: str


def text_key(text: str) -> bytes:
    """The cache key of one text: the SHA-256 hex of its UTF-8 bytes, as ``bytes``."""
    return hashlib.sha256(str(text).encode()).hexdigest().encode()


def cache_folder(cache_dir: str | os.PathLike, identity: dict[str, Any]) -> Path:
    """The folder of ``cache_dir`` that holds the vectors of the encoder with this ``identity``."""
    return Path(cache_dir).expanduser() / f"text-{sha256_json(identity)[:20]}"


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keys, vectors, truncated)`` of one shard, checked; :class:`ValueError` when it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors, truncated = data["keys"], data["vectors"], data["truncated"]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        msg = f"cannot be read ({type(err).__name__}: {err})"
        raise ValueError(msg) from err
    n = len(keys)
    ok = keys.dtype == np.dtype("S64") and vectors.ndim == 2 and vectors.shape[0] == n and truncated.shape == (n,)
    if not ok or vectors.dtype != np.float32 or not np.isfinite(vectors).all():
        msg = "does not hold one finite float32 vector and one flag per key"
        raise ValueError(msg)
    return keys, vectors, truncated.astype(bool)


def _load(folder: Path, wanted: set[bytes], dim: int | None) -> dict[bytes, tuple[np.ndarray, bool]]:
    """The cached ``{key: (vector, truncated)}`` of the ``wanted`` keys; damaged shards warned about and removed."""
    found: dict[bytes, tuple[np.ndarray, bool]] = {}
    for path in sorted(folder.glob("vectors-*.npz")):
        try:
            keys, vectors, truncated = _read_shard(path)
            if dim is not None and len(keys) and vectors.shape[1] != dim:
                msg = f"holds {vectors.shape[1]}-d vectors where the encoder gives {dim}"
                raise ValueError(msg)
        except ValueError as err:
            warnings.warn(
                f"Ignoring the damaged text-vector cache file {str(path)!r}: it {err}. It was removed; its texts "
                "are embedded again.",
                UserWarning,
                stacklevel=4,
            )
            path.unlink(missing_ok=True)
            continue
        for i in np.flatnonzero(np.isin(keys, list(wanted))) if wanted else ():
            found[bytes(keys[i])] = (vectors[i], bool(truncated[i]))
    return found


def _write_shard(folder: Path, keys: list[bytes], vectors: np.ndarray, truncated: np.ndarray) -> None:
    with atomic_file(folder / f"vectors-{uuid.uuid4().hex}.npz", suffix=".npz") as tmp:
        np.savez(tmp, keys=np.array(keys, dtype="S64"), vectors=vectors.astype(np.float32), truncated=truncated)


def cached_encode(
    encoder: Any,
    texts: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "texts",
) -> tuple[np.ndarray, np.ndarray, CachedTexts]:
    """Vectors of ``texts`` through :func:`~sc_llm.core.text.texts.encode_texts`, each distinct text once.

    With ``cache_dir``, vectors of this encoder (:func:`~sc_llm.core.text.texts.text_identity`) already in the
    cache are read, only the others are embedded, and those are added to the cache as one new shard.

    Returns
    -------
    ``(vectors (n, dim) float32, truncated (n,) bool, CachedTexts)`` in the order of ``texts``.
    """
    texts = [str(t) for t in texts]
    identity = text_identity(encoder)
    identity_sha = sha256_json(identity)
    unique = list(dict.fromkeys(texts))
    keys = [text_key(t) for t in unique]
    folder = cache_folder(cache_dir, identity) if cache_dir is not None else None
    found: dict[bytes, tuple[np.ndarray, bool]] = {}
    if folder is not None and folder.is_dir():
        found = _load(folder, set(keys), getattr(encoder, "dim", None))
    todo = [i for i, k in enumerate(keys) if k not in found]
    if todo:
        X, cut = encode_texts(encoder, [unique[i] for i in todo], batch_size=batch_size, progress=progress, desc=desc)
        found.update({keys[i]: (X[j], bool(cut[j])) for j, i in enumerate(todo)})
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "identity.json").is_file():
                write_json(folder / "identity.json", identity)
            _write_shard(folder, [keys[i] for i in todo], X, cut)
    row = {t: i for i, t in enumerate(unique)}
    order = [row[t] for t in texts]
    dim = next(iter(found.values()))[0].shape[0] if found else int(getattr(encoder, "dim", 0))
    vectors = np.zeros((len(unique), dim), dtype=np.float32)
    flags = np.zeros(len(unique), dtype=bool)
    for i, k in enumerate(keys):
        vectors[i], flags[i] = found[k]
    stats = CachedTexts(len(unique), len(unique) - len(todo), len(todo), str(folder) if folder else None, identity_sha)
    return vectors[order], flags[order], stats
