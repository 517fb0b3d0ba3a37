"""The methods behind ``sl.tl.perturb`` and ``sl.tl.compare_perturbation``, and how to add one.

Contract for a perturbation method
----------------------------------
A method is a function ``predict(task: PerturbationTask) -> PerturbationResult`` registered under a name
with :func:`register_perturbation_method`. ``sl.tl.perturb`` and ``sl.tl.compare_perturbation`` validate
the user's AnnData, build the :class:`PerturbationTask` (arrays only) and turn the
:class:`PerturbationResult` into an AnnData; the method never sees or writes an AnnData.

The task holds:

- ``train_X`` (dense float32, training cells × genes: the control and perturbed cells the method may learn
  from), ``train_perturbed`` (bool per training cell), ``train_cell_types`` (str per cell, or ``None``);
- ``query_X`` / ``query_cell_types``: the control cells to perturb;
- ``var_names``: the gene names of the columns, as used in cell sentences;
- ``perturbation`` and ``control`` (condition names), ``seed``, ``model`` (a pretrained checkpoint: hub id or
  folder, or ``None``) and ``options`` (the extra keyword arguments the user passed);
- ``decoder``: a fitted :class:`~sc_llm.core.sentences.decoding.SentenceDecoder` when the method was
  registered with ``uses_sentences=True`` (the user's, or one fitted on the training cells), else ``None``;
- ``truth_X`` / ``truth_cell_types``: the real perturbed cells of the query's cell types, only for methods
  registered with ``needs_truth=True`` (evaluation ceilings such as ``'sentence_oracle'``);
- ``task.sentences(which)`` for ``which`` in ``'train'``, ``'query'``, ``'truth'``: the cells' sentences
  (built once with :func:`sc_llm.pp.cell_sentences`; ``options['n_genes']`` caps their length).

The result holds ``X`` (predicted cells × genes, finite, same columns as the task), ``source`` (for every
predicted cell, the row of ``query_X`` it came from, or of ``truth_X`` when ``from_truth=True``), optional
``sentences`` (one per predicted cell; written to ``.obs['cell_sentence']``) and ``info`` (a small dict of
strings and numbers stored in ``.uns['perturb']['info']``).

A sentence-generating method (e.g. a cell language model) reads ``task.sentences('query')``, generates one
perturbed sentence per control cell with ``task.model``, and returns ``task.decoder.decode(generated,
task.var_names)`` as ``X`` with the generated sentences. ``method='llm'`` is that method
(registered by ``sc_llm.tl._perturb_llm``); a name no module registered raises an error listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.perturbation import mean_shift_vector, predict_control, predict_mean_shift, predict_pca_shift
from ..core.sentences.decoding import SentenceDecoder


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


PERTURBATION_METHODS: dict[str, PerturbationMethod] = {}
PLANNED = {
    "llm": "a cell language model that writes the perturbed cell's sentence from the control cell's sentence and "
    "the perturbation name (pass it as `model=`); no module providing it is installed in this sc_llm",
}


def register_perturbation_method(
    name: str,
    predict: Callable[[PerturbationTask], PerturbationResult],
    *,
    uses_sentences: bool = False,
    needs_truth: bool = False,
    needs_model: bool = False,
    description: str = "",
    overwrite: bool = False,
) -> PerturbationMethod:
    """Make ``predict`` available as ``sl.tl.perturb(..., method=name)`` and in ``sl.tl.compare_perturbation``."""
    if name in PERTURBATION_METHODS and not overwrite:
        msg = f"A perturbation method {name!r} is already registered; pass `overwrite=True` to replace it."
        raise ValueError(msg)
    method = PerturbationMethod(name, predict, uses_sentences, needs_truth, needs_model, description)
    PERTURBATION_METHODS[name] = method
    return method


def get_method(name: str) -> PerturbationMethod:
    """The registered method ``name``, or an error naming what is missing / what exists."""
    if name in PERTURBATION_METHODS:
        return PERTURBATION_METHODS[name]
    if name in PLANNED:
        msg = f"`method={name!r}` needs {PLANNED[name]}. Available methods: {sorted(PERTURBATION_METHODS)}."
        raise NotImplementedError(msg)
    msg = f"Unknown perturbation method {name!r}; choose one of {sorted(PERTURBATION_METHODS)}."
    raise ValueError(msg)


def sentences_of(X: np.ndarray, var_names: np.ndarray, n_genes: int | None = None) -> list[str]:
    """Cell sentences of a cells × genes matrix, through the public :func:`sc_llm.pp.cell_sentences`."""
    import warnings

    import anndata as ad
    import pandas as pd
    from scipy import sparse

    from ..pp import cell_sentences

    tmp = ad.AnnData(sparse.csr_matrix(np.asarray(X, dtype=np.float32)), var=pd.DataFrame(index=pd.Index(var_names)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no expressed gene.*", category=UserWarning)
        cell_sentences(tmp, use_raw=False, n_genes=n_genes)
    return tmp.obs["cell_sentence"].tolist()


def _control(task: PerturbationTask) -> PerturbationResult:
    return PerturbationResult(predict_control(task.query_X), np.arange(len(task.query_X)))


def _mean_shift(task: PerturbationTask) -> PerturbationResult:
    c, p, ct, pt = task.split_train()
    shift = mean_shift_vector(c, p, ct, pt)
    return PerturbationResult(predict_mean_shift(task.query_X, shift), np.arange(len(task.query_X)))


def _pca_shift(task: PerturbationTask) -> PerturbationResult:
    c, p, ct, pt = task.split_train()
    n_comps = int(task.options.get("n_comps", 50))
    X = predict_pca_shift(c, p, task.query_X, control_groups=ct, perturbed_groups=pt, n_comps=n_comps, seed=task.seed)
    return PerturbationResult(X, np.arange(len(task.query_X)), info={"n_comps": n_comps})


def _sentence_oracle(task: PerturbationTask) -> PerturbationResult:
    sentences = task.sentences("truth")
    X, _ = task.decoder.decode(sentences, task.var_names)
    return PerturbationResult(X.toarray(), np.arange(len(sentences)), from_truth=True, sentences=sentences)


register_perturbation_method("control", _control, description="the control cells unchanged")
register_perturbation_method(
    "mean_shift", _mean_shift, description="control + mean perturbed − control shift of the training cell types"
)
register_perturbation_method("pca_shift", _pca_shift, description="the mean shift in a PCA space, mapped back")
register_perturbation_method(
    "sentence_oracle",
    _sentence_oracle,
    uses_sentences=True,
    needs_truth=True,
    description="the real perturbed cells through sentences and the decoder: the ceiling of sentence methods",
)
