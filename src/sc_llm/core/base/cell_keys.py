"""A cell's 64-bit key: the identity its random numbers derive from, whatever batch, shard or order it is in."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def obs_name_keys(names: Sequence[str]) -> np.ndarray:
    """A 64-bit key per cell from its ``obs`` name (BLAKE2b), the identity its random numbers derive from."""
    import hashlib

    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(n).encode(), digest_size=8).digest(), "little") for n in names),
        dtype=np.uint64,
        count=len(names),
    )
