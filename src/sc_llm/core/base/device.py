"""Device and precision choices shared by every torch model in sc_llm: the one place that decides them.

The compute dtype follows the hardware (:func:`autocast_dtype`):

- **CUDA**: bf16 autocast (fp16 where the GPU has no bf16), as before;
- **CPU**: bf16 autocast where the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX on x86, the
  BF16 extension on Arm), which run bf16 matrix products several times faster than fp32 at a per-cell
  cosine above 0.9999 (``benchmarks/README.md``), for the work where that pays (``CPU_BF16_PAYS``: encoding
  and fine-tuning, not token-by-token generation); fp32 everywhere else, and whenever the capability cannot
  be read (:func:`cpu_native_bf16`);
- **MPS** and anything else: fp32.

Every model-running function takes ``dtype=``: ``None`` / ``'auto'`` (the choice above), ``'float32'`` /
``'fp32'`` (exact, bit-for-bit the reference path), ``'bfloat16'`` / ``'bf16'`` or ``'float16'`` / ``'fp16'``,
and records the dtype it computed in (``dtype_name``), so a result says how it was made. Weights stay in fp32
on a CPU; autocast runs the matrix products in bf16 and keeps reductions (softmax, layer norm) in fp32.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path
from typing import Any

_ALIASES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}
DTYPES = tuple(_ALIASES)

# Where bf16 autocast pays on a CPU with native bf16, measured by benchmarks/bench_precision.py (2-core AMD EPYC,
# AVX-512 BF16): a transformer encoding batches ~2.5x (MiniLM, cosine ≥ 0.9999) and fine-tuning 1.3-1.6x per
# step; token-by-token generation 0.9-1.0x (small matrices, one token per step) and the tiny fusion MLP 0.8x, so
# those stay fp32; scGPT stays fp32 on a CPU (no pretrained weights offline to check its bf16 agreement; a random
# 12-layer checkpoint agreed at cosine 0.95 only). ``dtype='bfloat16'`` runs any of them in bf16 on request.
CPU_BF16_PAYS = {"encode": True, "train": True, "score": True, "generate": False, "scgpt": False}


def resolve_device(device: Any = None):
    """``None``/``'auto'`` → CUDA if available, then Apple MPS, then CPU; otherwise ``torch.device(device)``."""
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = f"device={str(device)!r} was requested but CUDA is not available; pass device='cpu' or None."
        raise RuntimeError(msg)
    return device


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX-512 BF16, AMX-BF16, Arm BF16); ``False`` if unsure.

    Asked of PyTorch (``torch.cpu.get_capabilities()``, PyTorch ≥ 2.7), else of ``/proc/cpuinfo``'s flags.
    """
    try:
        import torch

        caps = dict(torch.cpu.get_capabilities())
    except (AttributeError, RuntimeError, ImportError):
        caps = None
    try:
        flags = Path("/proc/cpuinfo").read_text().split() if caps is None else []
    except OSError:
        flags = []
    return native_bf16(caps, flags)


def native_bf16(capabilities: dict | None, cpu_flags: list[str]) -> bool:
    """The rule of :func:`cpu_native_bf16` on PyTorch's capability map, else on ``/proc/cpuinfo``'s flags."""
    if capabilities is not None:
        return any(bool(capabilities.get(k)) for k in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    return "avx512_bf16" in cpu_flags or "amx_bf16" in cpu_flags


def precision_name(dtype: Any) -> str:
    """The canonical name of a requested precision: ``'auto'``, ``'float32'``, ``'bfloat16'`` or ``'float16'``."""
    if dtype is None:
        return "auto"
    text = dtype.removeprefix("torch.") if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if text not in _ALIASES:
        msg = f"`dtype` must be one of {DTYPES} (or None for the device's default), got {dtype!r}."
        raise ValueError(msg)
    return _ALIASES[text]


def autocast_dtype(device, dtype: Any = None, *, work: str = "encode"):
    """The compute dtype on ``device`` for ``dtype`` (see the module docstring); ``None`` means fp32.

    ``work`` (a key of ``CPU_BF16_PAYS``: ``'encode'``, ``'train'``, ``'score'``, ``'generate'``, ``'scgpt'``) is
    what the model does: with ``dtype=None`` a CPU computes in bf16 only where that work gains from it.

    An explicit reduced precision the device cannot run is refused with a warning and fp32 is used (and
    recorded), so what is recorded is what was computed: fp16 off CUDA, any reduced precision on MPS. bf16 on
    a CPU without native bf16 runs (emulated), with a warning that it is slower than fp32 there.
    """
    import torch

    name = precision_name(dtype)
    if name == "float32":
        return None
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if work not in CPU_BF16_PAYS:
            msg = f"`work` must be one of {sorted(CPU_BF16_PAYS)}, got {work!r}."
            raise ValueError(msg)
        cpu_bf16 = device.type == "cpu" and CPU_BF16_PAYS[work] and cpu_native_bf16()
        return torch.bfloat16 if cpu_bf16 else None
    if device.type == "cuda" or (device.type == "cpu" and name == "bfloat16"):
        if device.type == "cpu" and not cpu_native_bf16():
            warnings.warn(
                "dtype='bfloat16' on a CPU without native bf16 instructions is emulated and slower than float32.",
                UserWarning,
                stacklevel=3,
            )
        return getattr(torch, name)
    warnings.warn(f"dtype={name!r} is not computed on {device.type}; computing in float32.", UserWarning, stacklevel=3)
    return None


def autocast(device, dtype) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the reduced precision ``dtype`` on CUDA or a CPU (bf16); a no-op for fp32."""
    import torch

    if dtype is None or dtype == torch.float32 or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    if device.type == "cpu" and dtype != torch.bfloat16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` → ``'bfloat16'``; ``None`` → ``'float32'``."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")
