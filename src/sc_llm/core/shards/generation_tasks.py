"""Sharded generation of cell sentences with a saved cell language model (tensor-level, no AnnData).

A shard's sentences are stored as gene indices into the model's vocabulary (``gene_ids``, ``-1`` after a
sentence's last gene), with the words written per sentence (``n_words``) and the cell type's code
(``cell_type``), so the store holds plain arrays and the sentences are rebuilt exactly. Every cell is sampled
from its own stream (its 64-bit key and the seed, :class:`~sc_llm.core.cell_lm.sampling.CellSampler`), so a
cell's sentence does not depend on its shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .tasks import SentenceReader

GENERATION_TASKS = ("conditional_generation", "perturbation")


@dataclass
class SentenceGenerationTask:
    """Write one cell sentence per row with a cell LM folder (:meth:`~sc_llm.tl.CellLM.save`), shard by shard.

    ``task='conditional_generation'``: the prompt is row ``i``'s cell type. ``task='perturbation'``: the
    prompt is row ``i``'s control sentence (``sentences``), its cell type and ``perturbation``.
    ``cell_type_codes`` index ``cell_type_names``; ``cell_keys`` are the rows' 64-bit identities.
    """

    model: str
    task: str
    cell_type_codes: np.ndarray
    cell_type_names: list[str]
    cell_keys: np.ndarray
    n_genes: int = 100
    sentences: SentenceReader | None = None
    perturbation: str | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    batch_size: int = 16
    device: Any = None
    dtype: Any = None

    def __post_init__(self):
        if self.task not in GENERATION_TASKS:
            msg = f"`task` must be one of {GENERATION_TASKS}, got {self.task!r}."
            raise ValueError(msg)
        if self.task == "perturbation" and (self.sentences is None or not self.perturbation):
            msg = "A perturbation task needs the control cells' `sentences` and the `perturbation`'s name."
            raise ValueError(msg)

    def setup(self):
        """Load the cell LM once; return ``compute(start, stop)``."""
        from ..cell_lm.model import CellLanguageModel
        from ..cell_lm.predict import generated_sentences, perturbed_sentences

        lm = CellLanguageModel.load(self.model, device=self.device, dtype=self.dtype)
        sampling = {"do_sample": self.do_sample, "temperature": self.temperature, "top_k": self.top_k}
        sampling |= {"top_p": self.top_p, "seed": self.seed, "batch_size": self.batch_size}

        def compute(start: int, stop: int) -> dict[str, np.ndarray]:
            types = [self.cell_type_names[c] for c in self.cell_type_codes[start:stop]]
            keys = self.cell_keys[start:stop]
            if self.task == "conditional_generation":
                res = generated_sentences(lm, types, cell_keys=keys, n_genes=self.n_genes, **sampling)
            else:
                controls = [s.split() for s in self.sentences.read(start, stop)]
                res = perturbed_sentences(
                    lm, controls, types, self.perturbation, cell_keys=keys, n_genes=self.n_genes, **sampling
                )
            return {
                "gene_ids": gene_index_rows(res.genes, lm.vocab.position, self.n_genes),
                "n_words": res.n_words.astype(np.int32),
                "cell_type": np.asarray(self.cell_type_codes[start:stop], dtype=np.int32),
            }

        return compute


def gene_index_rows(genes: list[list[str]], position: dict[str, int], width: int) -> np.ndarray:
    """Sentences (gene lists) → an int32 matrix of vocabulary indices, ``-1`` after each sentence's end."""
    out = np.full((len(genes), width), -1, dtype=np.int32)
    for i, g in enumerate(genes):
        out[i, : len(g)] = [position[x] for x in g[:width]]
    return out


def gene_index_sentences(gene_ids: np.ndarray, vocab_genes: list[str]) -> list[list[str]]:
    """The inverse of :func:`gene_index_rows`."""
    names = np.asarray(vocab_genes, dtype=object)
    return [names[row[row >= 0]].tolist() for row in np.asarray(gene_ids)]
