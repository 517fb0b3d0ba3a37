"""The options a perturbation method declares, checked before anything runs (unknown names, bad values).

A method registers ``options={name: kind}``; ``sl.tl.perturb(..., **options)`` and
``sl.tl.compare_perturbation`` refuse a name no chosen method declares (with the closest declared name) and a
value of the wrong kind, and record the values checked — never an option that was ignored.
"""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("count", "count0", "positive", "nonnegative", "fraction", "bool", "text", "path", "array")
SENTENCE_OPTIONS = {"n_genes": "count"}  # every method that uses sentences: genes per sentence


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check(name: str, value: Any, kind: str) -> Any:
    """``value`` checked as ``kind`` (and converted to a plain Python value), or a clear error."""
    if kind in ("count", "count0"):
        low = 1 if kind == "count" else 0
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            msg = f"Option `{name}` must be an integer ≥ {low}, got {value!r}."
            raise ValueError(msg)
        return int(value)
    if kind in ("positive", "nonnegative", "fraction"):
        ok = _is_number(value) and (
            value > 0 if kind == "positive" else value >= 0 if kind == "nonnegative" else 0 <= value < 1
        )
        if not ok:
            want = {"positive": "a number > 0", "nonnegative": "a number ≥ 0", "fraction": "a number in [0, 1)"}
            msg = f"Option `{name}` must be {want[kind]}, got {value!r}."
            raise ValueError(msg)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            msg = f"Option `{name}` must be True or False, got {value!r}."
            raise TypeError(msg)
        return value
    if kind == "array":
        return _check_array(name, value)
    if kind == "path":
        if not isinstance(value, str | os.PathLike):
            msg = f"Option `{name}` must be a folder path, got {value!r}."
            raise TypeError(msg)
        return str(value)
    if not isinstance(value, str):
        msg = f"Option `{name}` must be a string, got {value!r}."
        raise TypeError(msg)
    return value


def _check_array(name: str, value: Any) -> Any:
    """A 2-D numeric table (``numpy`` array, or a DataFrame indexed by gene names); NaN marks a missing row."""
    import numpy as np
    import pandas as pd

    table = value.to_numpy() if isinstance(value, pd.DataFrame) else value
    try:
        table = np.asarray(table, dtype=np.float64)
    except (TypeError, ValueError):
        table = None
    if table is None or table.ndim != 2 or table.shape[1] == 0 or np.isinf(table).any():
        what = type(value).__name__
        msg = f"Option `{name}` must be a 2-D numeric array or DataFrame (genes × dimensions), got {what}."
        raise ValueError(msg)
    return value if isinstance(value, pd.DataFrame) else table


def recordable(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as ``.uns`` records them: tables (kind ``'array'``) by their shape, not their values."""
    out = {}
    for name, value in options.items():
        shape = getattr(value, "shape", None)
        out[name] = f"array {tuple(int(n) for n in shape)}" if shape is not None and len(shape) == 2 else value
    return out


def check_options(options: Mapping[str, Any], declared: Mapping[str, str], methods: Iterable[str]) -> dict[str, Any]:
    """The checked options; an unknown name is refused with the closest declared name and the full list."""
    out = {}
    for name, value in options.items():
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            msg = (
                f"Unknown option `{name}` for method(s) {list(methods)}.{hint} Their options: "
                f"{sorted(declared) or 'none'}."
            )
            raise TypeError(msg)
        out[name] = _check(name, value, declared[name])
    return out
