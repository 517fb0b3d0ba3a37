"""CPU threads: the one way sc_llm changes PyTorch's intra-op thread count, always restored afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def cpu_threads(n: int | None, *, device: Any = None, at_most: bool = False) -> Iterator[None]:
    """Run the block with PyTorch's intra-op pool at ``n`` threads; the previous count is restored after.

    A no-op when ``n`` is ``None`` or ``device`` is given and is not a CPU. ``at_most=True`` only lowers the
    count (a small network whose thread synchronisation costs more than it saves), never raises it.
    """
    import torch

    previous = torch.get_num_threads()
    wanted = None if n is None else max(1, int(n))
    on_cpu = device is None or getattr(device, "type", str(device)) == "cpu"
    if wanted is None or not on_cpu or wanted == previous or (at_most and wanted > previous):
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


DEFAULT_MAX_PARALLEL_BATCHES = 4  # bounds the activations held at once on many-core machines


def cpu_parallel_batches(requested: int | None, n_batches: int) -> tuple[int, int]:
    """``(batches at once, intra-op threads each)`` on a CPU with PyTorch's current thread count.

    ``requested`` ``None``: as many batches as threads, at most ``DEFAULT_MAX_PARALLEL_BATCHES``; never more than
    ``n_batches``. The threads are shared out, so a machine with more threads than batches keeps all of them busy.
    """
    import torch

    threads = torch.get_num_threads()
    if requested is None:
        requested = min(threads, DEFAULT_MAX_PARALLEL_BATCHES)
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        msg = f"`parallel_batches` must be a positive integer or None, got {requested!r}."
        raise ValueError(msg)
    workers = max(1, min(requested, n_batches))
    return workers, max(1, threads // workers)
