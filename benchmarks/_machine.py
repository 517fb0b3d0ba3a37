"""The one line every benchmark prints first: which CPU (and GPU) it ran on, how loaded, with which libraries;
and the one timer they share (:func:`best_of`).

Imported by the scripts next to it (``python benchmarks/bench_x.py`` puts this folder on ``sys.path``). It reads
``/proc/cpuinfo`` and imports nothing heavy: torch is described only when the benchmark has imported it, so a
peer's environment without torch can print the line too.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

#: instruction-set flags that decide the fast paths (bf16 autocast, vectorised kernels)
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`FLAGS` it has (Linux; elsewhere ``platform.processor()``)."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return platform.processor() or "unknown CPU", []
    text = path.read_text()
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    flags = set(text.split())
    return name, [f for f in FLAGS if f in flags]


def machine_line() -> str:
    """``CPU: <model>; flags [...]; N logical CPUs; load average ...; Python ...; numpy ...; torch ...``."""
    import numpy as np

    name, flags = cpu_model()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    parts = [f"CPU: {name}", f"flags {flags}", f"{os.cpu_count()} logical CPUs", f"load average {load}"]
    parts += [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    torch = sys.modules.get("torch")
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
        if torch.cuda.is_available():
            parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return "; ".join(parts)


def best_of(fn, rounds: int, *, warmup: bool = True) -> float:
    """Best wall time of ``rounds`` calls of ``fn`` (after one untimed call when ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
