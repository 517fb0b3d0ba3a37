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
- ``query_X`` / ``query_cell_types`` / ``query_names``: the control cells to perturb and their ``obs`` names
  (the identity a sampling method draws each cell's random numbers from, so a cell's prediction does not
  depend on the other cells of the query);
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
(registered here, implemented in ``sc_llm.tl.perturbation._llm`` and imported when it runs); an unknown name
raises an error listing the registered ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ...core.perturbation import mean_shift_vector, predict_control, predict_mean_shift, predict_pca_shift
from ._task import PerturbationMethod, PerturbationResult, PerturbationTask

PERTURBATION_METHODS: dict[str, PerturbationMethod] = {}


def register_perturbation_method(
    name: str,
    predict: Callable[[PerturbationTask], PerturbationResult],
    *,
    uses_sentences: bool = False,
    needs_truth: bool = False,
    needs_model: bool = False,
    description: str = "",
    options: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> PerturbationMethod:
    """Make ``predict`` available as ``sl.tl.perturb(..., method=name)`` and in ``sl.tl.compare_perturbation``.

    ``options`` declares the keyword arguments the method reads from ``task.options`` (name → kind, one of
    ``sc_llm.tl.perturbation._options.KINDS``); others are refused before the method runs.
    """
    if name in PERTURBATION_METHODS and not overwrite:
        msg = f"A perturbation method {name!r} is already registered; pass `overwrite=True` to replace it."
        raise ValueError(msg)
    from ._options import KINDS

    bad = {k: v for k, v in (options or {}).items() if v not in KINDS}
    if bad:
        msg = f"Option kinds must be among {KINDS}; got {bad}."
        raise ValueError(msg)
    method = PerturbationMethod(
        name, predict, uses_sentences, needs_truth, needs_model, description, dict(options or {})
    )
    PERTURBATION_METHODS[name] = method
    return method


def get_method(name: str) -> PerturbationMethod:
    """The registered method ``name``, or an error naming what is missing / what exists."""
    if name in PERTURBATION_METHODS:
        return PERTURBATION_METHODS[name]
    msg = f"Unknown perturbation method {name!r}; choose one of {sorted(PERTURBATION_METHODS)}."
    raise ValueError(msg)


def _control(task: PerturbationTask) -> PerturbationResult:
    return PerturbationResult(predict_control(task.query_X), np.arange(len(task.query_X)))


def _mean_shift(task: PerturbationTask) -> PerturbationResult:
    c, p, ct, pt = task.split_train()
    shift = mean_shift_vector(c, p, ct, pt)
    return PerturbationResult(predict_mean_shift(task.query_X, shift), np.arange(len(task.query_X)))


def _pca_shift(task: PerturbationTask) -> PerturbationResult:
    c, p, ct, pt = task.split_train()
    asked = int(task.options.get("n_comps", 50))
    n_comps = min(asked, len(c) + len(p) - 1, task.train_X.shape[1])  # what a PCA of the training cells can hold
    X = predict_pca_shift(c, p, task.query_X, control_groups=ct, perturbed_groups=pt, n_comps=n_comps, seed=task.seed)
    return PerturbationResult(X, np.arange(len(task.query_X)), info={"n_comps": n_comps, "n_comps_asked": asked})


def _sentence_oracle(task: PerturbationTask) -> PerturbationResult:
    sentences = task.sentences("truth")
    X, _ = task.decoder.decode(sentences, task.var_names)
    return PerturbationResult(X.toarray(), np.arange(len(sentences)), from_truth=True, sentences=sentences)


register_perturbation_method("control", _control, description="the control cells unchanged")
register_perturbation_method(
    "mean_shift", _mean_shift, description="control + mean perturbed − control shift of the training cell types"
)
register_perturbation_method(
    "pca_shift", _pca_shift, description="the mean shift in a PCA space, mapped back", options={"n_comps": "count"}
)
register_perturbation_method(
    "sentence_oracle",
    _sentence_oracle,
    uses_sentences=True,
    needs_truth=True,
    description="the real perturbed cells through sentences and the decoder: the ceiling of sentence methods",
)


def _llm(task: PerturbationTask) -> PerturbationResult:
    from ._llm import predict_llm  # torch, transformers and the cell LM load only when the method runs

    return predict_llm(task)


LLM_OPTIONS = {
    **dict.fromkeys(("hidden_size", "num_layers", "epochs", "max_steps", "batch_size", "patience"), "count"),
    **dict.fromkeys(("cpu_threads", "gradient_accumulation_steps", "eval_every", "gen_batch_size"), "count"),
    **dict.fromkeys(("n_models", "min_genes", "top_k"), "count"),
    **dict.fromkeys(("gene_tokens", "control_pairs", "do_sample", "progress", "tune_sampling"), "bool"),
    "warmup_steps": "count0",
    "lr": "positive",
    "temperature": "positive",
    "weight_decay": "nonnegative",
    "validation_fraction": "fraction",
    **dict.fromkeys(("lr_schedule", "decode", "ensemble"), "text"),
    "gene_embeddings": "array",
    "save_model": "path",
}
register_perturbation_method(
    "llm",
    _llm,
    uses_sentences=True,
    description="a cell language model writes the perturbed sentence from the control sentence (see CellLM)",
    options=LLM_OPTIONS,
)
