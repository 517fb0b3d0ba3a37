"""Optional dependencies imported on demand, with an error naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the pip extra providing it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        msg = (
            f"{module!r} is required for this function but could not be imported ({e}). "
            f"Install it with `pip install 'sc-llm[{extra}]'` (or `pip install {package or module}`)."
        )
        raise ImportError(msg) from e
