"""sc_llm: large language models for single-cell RNA-seq, inside scanpy workflows.

``import sc_llm as sl`` stays light: torch, transformers and the interpretability libraries are imported
inside the functions that need them.
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, jobs, metrics, pl, pp, tl

try:
    __version__ = version("sc-llm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "datasets", "jobs", "metrics", "pl", "pp", "tl"]
