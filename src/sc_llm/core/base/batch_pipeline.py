"""Overlap the host's batch work with the device's: prefetch on a GPU, one batch per core on a CPU.

Two ways a batched forward loop leaves hardware idle, and the one helper both fixes rest on:

- **On CUDA**, the host builds a batch (padding, masks) and copies it to the device while the device waits.
  :func:`ordered_map` with one worker builds the next batches in a background thread, in pinned (page-locked)
  memory, so the copy can run asynchronously (``non_blocking=True``) while the device computes.
- **On a CPU**, PyTorch splits every op of one batch across its intra-op threads, and the threads meet at a
  barrier after each op (dozens per layer); small ops (layer norm, GELU, softmax) pay that synchronisation,
  and threads spin against each other when the machine is busy. Running as many batches at once as there are
  threads, each on its share of the threads (:func:`~sc_llm.core.base.threads.cpu_threads`), does the same
  arithmetic with fewer barriers.

Results come back in input order, so callers stay deterministic; a batch's result does not depend on which
thread computed it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 1, ahead: int = 2) -> Iterator:
    """``fn(item)`` for each item, computed by ``workers`` threads up to ``ahead`` items in advance, in order.

    Memory stays bounded: at most ``ahead`` results wait to be consumed. An exception raised by ``fn`` is raised
    here when its item's turn comes; closing the generator early cancels the items not yet started.
    """
    if workers < 1 or ahead < 1:
        msg = f"`workers` and `ahead` must be positive, got {workers} and {ahead}."
        raise ValueError(msg)
    items = iter(items)
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sc_llm-batch") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= ahead:
                    break
            while pending:
                result = pending.popleft().result()
                for item in items:
                    pending.append(pool.submit(fn, item))
                    break
                yield result
        finally:
            for future in pending:
                future.cancel()


def prefetched(iterable: Iterable[Any], *, ahead: int = 2, transform: Callable[[Any], Any] | None = None) -> Iterator:
    """Iterate ``iterable`` (then ``transform`` each item) in one background thread, ``ahead`` items in advance.

    For a generator whose every step is host work (reading, binning, padding): the steps run while the caller
    computes on the previous item. Items come in order; the producer's exceptions are raised here.
    """
    it, done = iter(iterable), object()

    def step(_):
        item = next(it, done)
        return item if item is done or transform is None else transform(item)

    for item in ordered_map(step, itertools.repeat(None), workers=1, ahead=ahead):
        if item is done:
            return
        yield item
