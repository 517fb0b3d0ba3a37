"""Device and precision choices shared by every torch model in sc_llm."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any


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


_DTYPES = ("float32", "bfloat16", "float16")


def autocast_dtype(device, dtype: Any = None):
    """Compute dtype for autocast: bf16 (or fp16 without bf16 support) on CUDA, ``None`` (fp32) elsewhere.

    An explicit ``dtype`` (a ``torch.dtype`` or its name: ``'float32'``, ``'bfloat16'``, ``'float16'``) wins on
    CUDA. Reduced precision is CUDA autocast only: elsewhere it is refused with a warning and fp32 is used
    (and recorded), so what is recorded is what was computed.
    """
    import torch

    if dtype is not None:
        name = dtype.removeprefix("torch.") if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        if name not in _DTYPES:
            msg = f"`dtype` must be one of {_DTYPES} (or None for the device's default), got {dtype!r}."
            raise ValueError(msg)
        if name == "float32":
            return None
        if device.type != "cuda":
            warnings.warn(
                f"dtype={name!r} applies to CUDA autocast only; computing in float32 on {device.type}.",
                UserWarning,
                stacklevel=3,
            )
            return None
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device, dtype) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for reduced precision on CUDA; a no-op for fp32 or non-CUDA devices."""
    import torch

    if dtype is None or dtype == torch.float32 or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` → ``'bfloat16'``; ``None`` → ``'float32'``."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")
