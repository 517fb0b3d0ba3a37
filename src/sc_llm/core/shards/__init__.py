"""Sharded, resumable jobs: a shard plan over cells, an atomic on-disk store, local and Ray runners."""

from ..base.identity import fingerprint_folder, hash_strings
from .runners import FAULT_ENV, RunSummary, ShardTask, compute_shard, run_local, run_ray
from .store import ShardStore, StoreMismatchError, checksum, shard_ranges
from .tasks import ListSentences, MatrixRows, ScGPTEmbedTask, TextEmbedTask

__all__ = [
    "FAULT_ENV",
    "ListSentences",
    "MatrixRows",
    "RunSummary",
    "ScGPTEmbedTask",
    "ShardStore",
    "ShardTask",
    "StoreMismatchError",
    "TextEmbedTask",
    "checksum",
    "compute_shard",
    "fingerprint_folder",
    "hash_strings",
    "run_local",
    "run_ray",
    "shard_ranges",
]
