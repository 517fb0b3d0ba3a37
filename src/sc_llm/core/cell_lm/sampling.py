"""Per-cell seeded sampling: a cell's generated sentence never depends on its batch, shard or neighbours.

Hugging Face's sampling draws every row of a batch from one random stream, so a cell's sentence changes with
the cells generated beside it, the batch size or the shard it falls in. :class:`CellSampler` is a logits
processor that samples by the Gumbel-max trick instead: it applies temperature, top-k and top-p, then adds
Gumbel noise drawn from the row's own stream (seeded by ``seed`` and the cell's 64-bit key); greedy decoding
of the perturbed scores is then an exact sample of the warped distribution. The ``t``-th token of a cell
always uses the ``t``-th draw of its stream, so sharded, resumed or re-batched runs write the same sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cell_streams(keys: Sequence[int] | np.ndarray, seed: int) -> list[np.random.Generator]:
    """One independent random stream per cell, from the run's ``seed`` and the cell's key (non-negative)."""
    return [np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(k)]) for k in np.asarray(keys, dtype=np.uint64)]


class CellSampler:
    """Logits processor: temperature → top-k → top-p → per-row Gumbel noise (use with greedy decoding).

    Parameters
    ----------
    keys
        One 64-bit key per row of the batch (the cell's identity; e.g. its index or a hash of its ``obs`` name).
    seed
        The run's seed.
    temperature, top_k, top_p
        As in Hugging Face sampling (``None``: no top-k / top-p filtering).
    """

    def __init__(
        self, keys, seed: int, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
    ):
        if temperature <= 0:
            msg = f"`temperature` must be positive, got {temperature}."
            raise ValueError(msg)
        if top_p is not None and not 0 < top_p <= 1:
            msg = f"`top_p` must be in (0, 1], got {top_p}."
            raise ValueError(msg)
        self.streams = cell_streams(keys, seed)
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, top_p

    def _filter(self, scores):
        import torch

        if self.top_k is not None and 0 < self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, int(self.top_k), dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1:
            ordered, order = torch.sort(scores, dim=-1, descending=True)
            probs = torch.softmax(ordered, dim=-1)
            before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
            drop = before >= self.top_p  # keep the smallest head whose mass reaches top_p (always the first)
            scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return scores

    def __call__(self, input_ids, scores):
        """Warp ``scores`` (batch × vocab) and add each row's next Gumbel draws."""
        import torch

        if len(self.streams) != scores.shape[0]:
            msg = f"{len(self.streams)} cell keys for a batch of {scores.shape[0]} rows."
            raise ValueError(msg)
        scores = self._filter(scores.float() / self.temperature)
        noise = np.stack([s.gumbel(size=scores.shape[-1]) for s in self.streams]).astype(np.float32)
        return scores + torch.from_numpy(noise).to(scores.device)
