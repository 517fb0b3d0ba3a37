"""Batch jobs over files: sharded, resumable, locally or on Ray (``pip install 'sc-llm[scale]'``)."""

from ..core.shards.store import ShardStore, StoreMismatchError
from ._embed import embed

__all__ = ["ShardStore", "StoreMismatchError", "embed"]
