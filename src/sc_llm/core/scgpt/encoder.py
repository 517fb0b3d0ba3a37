"""A pretrained scGPT checkpoint as one object: match genes to its vocabulary, then embed CSR chunks of cells."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from .checkpoint import CLS_TOKEN, check_folder, load_encoder, read_config, read_vocab
from .inference import EmbeddingStats, embed_cells
from .preprocessing import match_genes

DEFAULT_MAX_LENGTH = 1200  # tokens per cell, <cls> included: scGPT's embed_data default


@dataclass(frozen=True)
class GeneMatch:
    """How the genes of a matrix map to the checkpoint's vocabulary."""

    column_ids: np.ndarray  # vocabulary id per column, -1 for genes outside the vocabulary
    n_genes: int
    n_matched: int
    n_vocab_genes: int  # genes in the vocabulary (special tokens excluded)
    hint: str  # what to check when coverage is low

    @property
    def coverage(self) -> float:
        """Share of the matrix's genes found in the vocabulary."""
        return self.n_matched / self.n_genes if self.n_genes else 0.0


class ScGPTEncoder:
    """A pretrained scGPT checkpoint that turns expression into cell embeddings, as scGPT's ``embed_data`` does.

    ``args.json`` and ``vocab.json`` are read and checked on construction; the weights (``best_model.pt``) are
    loaded on first use, so that input errors surface before any weights are read.

    Parameters
    ----------
    model
        Checkpoint folder holding ``args.json``, ``vocab.json`` and ``best_model.pt``.
    device
        ``None`` picks CUDA, then MPS, then CPU.
    dtype
        Autocast dtype on CUDA (default bf16, fp16 without bf16 support); fp32 elsewhere.
    """

    def __init__(self, model: str | Path, *, device: Any = None, dtype: Any = None):
        from ..base.device import autocast_dtype, resolve_device

        self.folder = check_folder(model)
        self.config = read_config(self.folder)
        self.vocab = read_vocab(self.folder, self.config.pad_token)
        self.device = resolve_device(device)
        self.compute_dtype = autocast_dtype(self.device, dtype, work="scgpt")
        self._module = None

    @property
    def module(self):
        """The network (``sc_llm.core.scgpt.model.ScGPTCellEncoder``), loaded on first access."""
        if self._module is None:
            self._module = load_encoder(self.folder, self.config, self.vocab).to(self.device)
        return self._module

    def match_genes(self, names: Sequence[str]) -> GeneMatch:
        """Match gene symbols to the vocabulary (exact, case-sensitive); an error when none matches."""
        specials = {self.config.pad_token, CLS_TOKEN, "<eoc>"}
        column_ids = match_genes(names, self.vocab, exclude=sorted(specials))
        n_matched = int((column_ids >= 0).sum())
        hint = self._coverage_hint(names, n_matched)
        found = GeneMatch(column_ids, len(names), n_matched, len(set(self.vocab) - specials), hint)
        if n_matched == 0:
            msg = (
                f"None of the {found.n_genes} genes is in the scGPT vocabulary ({found.n_vocab_genes} genes), e.g. "
                f"{list(names[:3])} vs {list(self.vocab)[:3]}.{hint}"
            )
            raise ValueError(msg)
        return found

    def _coverage_hint(self, names: Sequence[str], n_matched: int) -> str:
        upper = {k.upper() for k in self.vocab}
        if sum(1 for g in names if g.upper() in upper) > 2 * max(n_matched, 1):
            return (
                " Gene symbols differ in case from the vocabulary (mouse data?); scGPT's human vocabulary is "
                "upper-case."
            )
        return " Check that `gene_symbols` names a `.var` column of gene symbols."

    def embed(
        self,
        chunks: Iterable[tuple[int, int, sparse.csr_matrix]],
        column_ids: np.ndarray,
        n_cells: int,
        *,
        cell_keys: np.ndarray | None = None,
        batch_size: int = 64,
        max_length: int = DEFAULT_MAX_LENGTH,
        n_bins: int | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> tuple[np.ndarray, EmbeddingStats]:
        """L2-normalised ``<cls>`` embeddings ``(n_cells, d_model)`` of cells given as CSR row chunks.

        See ``sc_llm.core.scgpt.inference.embed_cells``; ``n_bins`` defaults to the checkpoint's.
        """
        n_bins = self.config.n_bins if n_bins is None else n_bins
        module = self.module
        if self.config.input_emb_style == "category" and n_bins > module.value_encoder.embedding.num_embeddings:
            n_rows = module.value_encoder.embedding.num_embeddings
            msg = f"`n_bins={n_bins}` exceeds the {n_rows} value bins of the checkpoint."
            raise ValueError(msg)
        return embed_cells(
            module,
            chunks,
            column_ids,
            n_cells,
            cell_keys=cell_keys,
            cls_id=self.vocab[CLS_TOKEN],
            pad_id=self.vocab[self.config.pad_token],
            pad_value=self.config.pad_value,
            batch_size=batch_size,
            max_length=max_length,
            n_bins=n_bins,
            seed=seed,
            device=self.device,
            dtype=self.compute_dtype,
            progress=progress,
        )

    def params(self) -> dict[str, Any]:
        """Settings worth recording next to the embeddings."""
        from ..base.device import dtype_name
        from ..base.identity import fingerprint_folder

        return {
            "model": str(self.folder),
            "fingerprint": fingerprint_folder(self.folder),
            "input_emb_style": self.config.input_emb_style,
            "d_model": self.config.d_model,
            "dtype": dtype_name(self.compute_dtype),
            "device": self.device.type,
        }
