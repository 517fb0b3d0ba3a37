"""The contract between ``sl.tl.perturb`` and a perturbation method: the task it gets, the result it returns.

See :mod:`sc_llm.tl.perturbation._methods` for the contract in full and how to register a method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.sentences.decoding import SentenceDecoder


@dataclass
class PerturbationTask:
    """Everything a perturbation method may use (see the module docstring for each field)."""

    train_X: np.ndarray
    train_perturbed: np.ndarray
    train_cell_types: np.ndarray | None
    query_X: np.ndarray
    query_cell_types: np.ndarray | None
    var_names: np.ndarray
    perturbation: str
    control: str
    seed: int = 0
    model: str | None = None
    decoder: SentenceDecoder | None = None
    truth_X: np.ndarray | None = None
    truth_cell_types: np.ndarray | None = None
    query_names: np.ndarray | None = None
    options: dict[str, Any] = field(default_factory=dict)
    _sentences: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def sentences(self, which: str) -> list[str]:
        """Cell sentences of the ``'train'``, ``'query'`` or ``'truth'`` cells (cached)."""
        if which not in self._sentences:
            X = {"train": self.train_X, "query": self.query_X, "truth": self.truth_X}.get(which)
            if X is None:
                msg = f"No {which!r} cells in this task (choose 'train', 'query' or, for evaluation, 'truth')."
                raise ValueError(msg)
            self._sentences[which] = sentences_of(X, self.var_names, self.options.get("n_genes"))
        return self._sentences[which]

    def split_train(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(control X, perturbed X, control cell types, perturbed cell types)`` of the training cells."""
        p = self.train_perturbed
        types = self.train_cell_types
        return (
            self.train_X[~p],
            self.train_X[p],
            None if types is None else types[~p],
            None if types is None else types[p],
        )


@dataclass
class PerturbationResult:
    """What a perturbation method returns (see the module docstring)."""

    X: np.ndarray
    source: np.ndarray
    from_truth: bool = False
    sentences: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PerturbationMethod:
    """A registered method and what ``sl.tl.perturb`` must prepare for it."""

    name: str
    predict: Callable[[PerturbationTask], PerturbationResult]
    uses_sentences: bool = False
    needs_truth: bool = False
    needs_model: bool = False
    description: str = ""
    options: Mapping[str, str] = field(default_factory=dict)  # name -> kind (see ``_options.KINDS``)

    def declared(self) -> dict[str, str]:
        """Every option the method takes: its own, plus ``n_genes`` for the methods that use sentences."""
        from ._options import SENTENCE_OPTIONS

        return {**(SENTENCE_OPTIONS if self.uses_sentences else {}), **self.options}


def sentences_of(X: np.ndarray, var_names: np.ndarray, n_genes: int | None = None) -> list[str]:
    """Cell sentences of a cells × genes matrix, through the public :func:`sc_llm.pp.cell_sentences`."""
    import warnings

    import anndata as ad
    import pandas as pd
    from scipy import sparse

    from ...pp import cell_sentences

    tmp = ad.AnnData(sparse.csr_matrix(np.asarray(X, dtype=np.float32)), var=pd.DataFrame(index=pd.Index(var_names)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no expressed gene.*", category=UserWarning)
        cell_sentences(tmp, use_raw=False, n_genes=n_genes)
    return tmp.obs["cell_sentence"].tolist()
