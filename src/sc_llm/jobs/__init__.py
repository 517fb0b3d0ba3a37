"""Batch jobs over files: sharded, resumable, locally or on Ray (``pip install 'sc-llm[scale]'``)."""

from ..core.shards.store import ShardStore, StoreMismatchError
from ._embed import embed
from ._generate import generate_cells
from ._perturb import perturb
from ._read_cells import read_cells

__all__ = ["ShardStore", "StoreMismatchError", "embed", "generate_cells", "perturb", "read_cells"]
