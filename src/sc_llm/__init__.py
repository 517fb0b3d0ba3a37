"""sc_llm: large language models for single-cell RNA-seq, inside scanpy workflows.

``import sc_llm as sl`` stays light: the submodules (``sl.pp``, ``sl.tl``, ``sl.pl``, ``sl.metrics``,
``sl.datasets``) are imported on first access, and torch, transformers, scanpy and the interpretability
libraries inside the functions that need them. ``sc-llm --help`` therefore answers at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; at run time see __getattr__
    from . import datasets, jobs, metrics, pl, pp, tl

__all__ = ["__version__", "datasets", "jobs", "metrics", "pl", "pp", "tl"]
_SUBMODULES = frozenset({"datasets", "jobs", "metrics", "pl", "pp", "tl"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
