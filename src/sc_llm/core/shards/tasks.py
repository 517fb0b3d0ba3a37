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
    """Embed cell sentences with a :class:`~sc_llm.core.text.encoder.TextEncoder`, shard by shard.

    ``calibration`` are the sentences the tokenizer mode is chosen from (the first cells of the whole input),
    so that every worker tokenises alike whichever shard it starts with. Outputs: ``embedding`` (float32,
    ``dim`` per cell) and ``truncated`` (bool).
    """

    model: str
    sentences: SentenceReader
    calibration: list[str]
    batch_size: int = 32
    token_budget: int | None = None
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    encoder: Any = None  # an already loaded TextEncoder to use in this process (never pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "encoder": None}

    def setup(self):
        """Load the encoder once (or use the one given); return ``compute(start, stop)``."""
        from ..text.encoder import TextEncoder

        enc = self.encoder if self.encoder is not None else TextEncoder(self.model, **self.encoder_kwargs)
        enc.genes.calibrate(self.calibration)
        kw = {"batch_size": self.batch_size, "token_budget": self.token_budget, "progress": False}

        def compute(start: int, stop: int, payload: dict | None = None) -> dict[str, np.ndarray]:
            if payload is None:
                emb, truncated = enc.encode(self.sentences.read(start, stop), **kw)
            else:  # read and tokenised by the host stage
                emb, truncated = enc.encode_ids(payload["ids"], **kw), payload["truncated"]
            return {"embedding": emb, "truncated": truncated}

        compute.encoder = enc
        return compute

    def host_stage(self):
        """Load only the tokenizer; return ``prepare(start, stop)``: the shard's sentences read and tokenised."""
        from ..text.encoder import load_gene_tokenizer

        kw = self.encoder_kwargs
        genes = load_gene_tokenizer(
            self.model, max_length=kw.get("max_length"), prefix=kw.get("prefix"), revision=kw.get("revision")
        )
        genes.calibrate(self.calibration)

        def prepare(start: int, stop: int) -> dict:
            ids, truncated = genes(self.sentences.read(start, stop))
            return {"ids": ids, "truncated": np.asarray(truncated, dtype=bool)}

        return prepare


class RowReader(Protocol):
    """Anything that returns rows ``start:stop`` of a cells × genes matrix as CSR (and pickles)."""

    def rows(self, start: int, stop: int):
        """Rows ``start:stop`` as a :class:`scipy.sparse.csr_matrix`."""


@dataclass
class MatrixRows:
    """Rows of an in-memory matrix (dense, CSR or CSC)."""

    X: Any

    def rows(self, start: int, stop: int):
        """Rows ``start:stop`` as CSR."""
        from scipy import sparse

        block = self.X[start:stop]
        return sparse.csr_matrix(block) if not sparse.issparse(block) else block.tocsr()


@dataclass
class ScGPTEmbedTask:
    """Embed expression with a :class:`~sc_llm.core.scgpt.encoder.ScGPTEncoder`, shard by shard.

    ``cell_keys`` holds one 64-bit identity per row of the whole matrix (from its ``obs`` name, see
    :func:`~sc_llm.core.base.cell_keys.obs_name_keys`); with ``seed`` it is the source of each cell's random
    numbers, so the numbers equal those of one unsharded run for any shard size. Outputs: ``embedding``
    (float32, ``d_model`` per cell) and ``n_genes`` (matched, expressed genes per cell).
    """

    model: str
    matrix: RowReader
    column_ids: np.ndarray
    cell_keys: np.ndarray
    batch_size: int = 64
    max_length: int = 1200
    n_bins: int | None = None
    seed: int = 0
    device: Any = None
    dtype: Any = None

    def setup(self):
        """Load the checkpoint once; return ``compute(start, stop)``."""
        from ..scgpt.encoder import ScGPTEncoder
        from ..scgpt.preprocessing import CHUNK_CELLS

        enc = ScGPTEncoder(self.model, device=self.device, dtype=self.dtype)
        matched = self.column_ids >= 0

        def compute(start: int, stop: int) -> dict[str, np.ndarray]:
            X = self.matrix.rows(start, stop)
            n = stop - start
            chunks = [(a, min(a + CHUNK_CELLS, n), X[a : a + CHUNK_CELLS]) for a in range(0, n, CHUNK_CELLS)]
            emb, _ = enc.embed(
                chunks,
                self.column_ids,
                stop - start,
                cell_keys=self.cell_keys[start:stop],
                batch_size=self.batch_size,
                max_length=self.max_length,
                n_bins=self.n_bins,
                seed=self.seed,
                progress=False,
            )
            expressed = X.copy()
            expressed.data = (expressed.data != 0) & matched[expressed.indices]
            return {"embedding": emb, "n_genes": np.asarray(expressed.sum(1)).ravel().astype(np.int32)}

        return compute
