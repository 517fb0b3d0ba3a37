"""Batch jobs over files: sharded, resumable, locally or on Ray (``pip install 'sc-llm[scale]'``).

``embed`` (text encoders, scGPT), ``generate_cells`` and ``predict_perturbation`` (saved cell LMs) write a
:class:`ShardStore`; ``read_cells`` turns a generation store into AnnData. Every job goes through the same
plumbing (``_run``: identity, store, engine, run loop), so every one resumes alike.
"""

from ..core.shards.store import DamagedStoreError, ShardStore, StoreMismatchError
from ._embed import embed
from ._generate import generate_cells
from ._perturb import perturb as perturb  # deprecated name of predict_perturbation, not in __all__
from ._perturb import predict_perturbation
from ._read_cells import read_cells

__all__ = [
    "DamagedStoreError",
    "ShardStore",
    "StoreMismatchError",
    "embed",
    "generate_cells",
    "predict_perturbation",
    "read_cells",
]
