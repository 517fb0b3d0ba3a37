"""Seeded randomness without touching the caller's random state (the one way sc_llm seeds PyTorch).

NumPy randomness is always drawn from a local ``numpy.random.default_rng(seed)``; PyTorch's global generator
is only ever seeded inside :func:`torch_seeded`, which restores the caller's state when the block ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def torch_seeded(seed: int, device: Any = None) -> Iterator[None]:
    """Run the block with PyTorch's generators seeded with ``seed``; the caller's RNG state is restored after.

    ``device``: a CUDA device whose generator is forked and seeded too (``None`` or a CPU: the CPU's only).
    """
    import torch

    devices = [device] if device is not None and getattr(device, "type", str(device)) == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield
