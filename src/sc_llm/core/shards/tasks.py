"""Sharded tasks of sc_llm's models: what a worker loads once and computes per shard (tensor-level)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class SentenceReader(Protocol):
    """Anything that returns the cell sentences of rows ``start:stop`` (and pickles, for remote workers)."""

    def read(self, start: int, stop: int) -> list[str]:
        """Cell sentences of rows ``start:stop``."""


@dataclass
class ListSentences:
    """Cell sentences held in memory."""

    sentences: list[str]

    def read(self, start: int, stop: int) -> list[str]:
        """Cell sentences of rows ``start:stop``."""
        return self.sentences[start:stop]


@dataclass
class TextEmbedTask:
    """Embed cell sentences with a :class:`~sc_llm.core.text_encoder.TextEncoder`, shard by shard.

    ``calibration`` are the sentences the tokenizer mode is chosen from (the first cells of the whole input),
    so that every worker tokenises alike whichever shard it starts with. Outputs: ``embedding`` (float32,
    ``dim`` per cell) and ``truncated`` (bool).
    """

    model: str
    sentences: SentenceReader
    calibration: list[str]
    batch_size: int = 32
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    encoder: Any = None  # an already loaded TextEncoder to use in this process (never pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "encoder": None}

    def setup(self):
        """Load the encoder once (or use the one given); return ``compute(start, stop)``."""
        from ..text_encoder import TextEncoder

        enc = self.encoder if self.encoder is not None else TextEncoder(self.model, **self.encoder_kwargs)
        enc.genes.calibrate(self.calibration)

        def compute(start: int, stop: int) -> dict[str, np.ndarray]:
            emb, truncated = enc.encode(self.sentences.read(start, stop), batch_size=self.batch_size, progress=False)
            return {"embedding": emb, "truncated": truncated}

        compute.encoder = enc
        return compute
