"""``sl.tl.perturb(..., method='llm')``: a cell language model writes each control cell's perturbed sentence.

The method behind the registry's ``'llm'`` entry (contract in ``sc_llm.tl.perturbation._methods``). ``model=``:

- a folder written by :meth:`sc_llm.tl.CellLM.save`: used as it is (trained with ``task='perturbation'``);
- any other checkpoint (hub id, ``save_pretrained`` folder, ``.gguf`` file): loaded with
  :meth:`~sc_llm.tl.CellLM.from_pretrained` and fine-tuned with LoRA on the training cells;
- ``None``: a small gene-token Llama built from scratch (:meth:`~sc_llm.tl.CellLM.from_scratch`) and trained in
  full on the training cells — the realistic option on a CPU.

Options (keyword arguments of ``sl.tl.perturb``): ``n_genes`` (genes per sentence, default 50),
``gene_tokens`` (one token per gene for a pretrained model, default False), ``hidden_size``/``num_layers``
(from-scratch size, default 128/4), ``epochs``, ``max_steps``, ``lr``, ``batch_size`` (training),
``warmup_steps``, ``lr_schedule``, ``weight_decay``, ``test_size`` (validation share for early stopping,
default 0.1), ``patience``, ``cpu_threads``, ``control_pairs`` (default True: also train on identity examples,
each control cell's sentence as the answer to another control cell of its type with the control condition as
the perturbation, so the model learns the control cells of the held-out types too), ``do_sample`` /
``temperature`` (generation; sampled at temperature 1 by default, seeded: a population of cells is predicted,
and greedy decoding writes every cell's most likely sentence, which collapses the spread of the cells and
biases the per-gene means), ``gen_batch_size``, ``save_model`` (a folder to save the trained model to),
``progress``.
"""

from __future__ import annotations

import numpy as np

from ...core.base.cell_keys import obs_name_keys
from ...core.cell_lm.predict import perturbed_sentences
from ...core.checkpoints import checkpoint_kind
from ..llm._cell_lm import CellLM
from ._task import PerturbationResult, PerturbationTask

_TRAIN_KEYS = (
    "epochs",
    "max_steps",
    "lr",
    "batch_size",
    "patience",
    "cpu_threads",
    "gradient_accumulation_steps",
    "warmup_steps",
    "lr_schedule",
    "weight_decay",
)


def _model(task: PerturbationTask, opts: dict) -> tuple[CellLM, bool]:
    """The cell LM to use and whether it still needs training."""
    genes = [str(g) for g in task.var_names]
    if task.model is not None and checkpoint_kind(task.model) == "cell_lm":
        return CellLM.load(task.model), False
    if task.model is not None:
        lm = CellLM.from_pretrained(task.model, genes=genes, gene_tokens=bool(opts.get("gene_tokens", False)))
        return lm, True
    types = [] if task.train_cell_types is None else sorted(set(task.train_cell_types.tolist()))
    if task.query_cell_types is not None:
        types = sorted(set(types) | set(task.query_cell_types.tolist()))
    lm = CellLM.from_scratch(
        genes,
        cell_types=types,
        perturbations=[task.perturbation],
        hidden_size=int(opts.get("hidden_size", 128)),
        num_layers=int(opts.get("num_layers", 4)),
        seed=task.seed,
    )
    return lm, True


def _train(lm: CellLM, task: PerturbationTask, opts: dict, n_genes: int) -> None:
    words = [s.split() for s in task.sentences("train")]
    types = task.train_cell_types if task.train_cell_types is not None else np.array(["cell"] * len(words))
    conditions = np.where(task.train_perturbed, task.perturbation, task.control)
    examples = lm.examples(
        words,
        types,
        task="perturbation",
        conditions=conditions,
        control=task.control,
        n_genes=n_genes,
        seed=task.seed,
        control_pairs=bool(opts.get("control_pairs", True)),
    )
    config = {k: opts[k] for k in _TRAIN_KEYS if k in opts}
    config |= {"seed": task.seed, "progress": bool(opts.get("progress", False))}
    if "patience" in config:
        config["eval_every"] = int(opts.get("eval_every", 50))
    lm.fit_examples(examples, test_size=float(opts.get("test_size", 0.1)), seed=task.seed, config=config)
    lm.decoder = task.decoder
    if opts.get("save_model"):
        lm.save(opts["save_model"])


def predict_llm(task: PerturbationTask) -> PerturbationResult:
    """Train (or load) the cell LM, write each query cell's perturbed sentence, decode it."""
    opts = task.options
    n_genes = int(opts.get("n_genes", 50))
    lm, needs_training = _model(task, opts)
    if needs_training:
        _train(lm, task, opts, n_genes)
    query = [s.split() for s in task.sentences("query")]
    types = task.query_cell_types if task.query_cell_types is not None else np.array(["cell"] * len(query))
    keys = np.arange(len(query), dtype=np.uint64) if task.query_names is None else obs_name_keys(task.query_names)
    res = perturbed_sentences(
        lm,
        query,
        types,
        task.perturbation,
        cell_keys=keys,
        n_genes=n_genes,
        do_sample=bool(opts.get("do_sample", True)),
        temperature=float(opts.get("temperature", 1.0)),
        seed=task.seed,
        batch_size=int(opts.get("gen_batch_size", 32)),
        progress=bool(opts.get("progress", False)),
    )
    sentences = [" ".join(g) for g in res.genes]
    X, _ = task.decoder.decode(sentences, task.var_names)
    hist = lm.history or {}
    info = {
        "valid_gene_share": res.valid_share,
        "tokens_per_second": res.tokens_per_second,
        "gene_mode": lm.vocab.mode,
        "trained_here": needs_training,
        "mean_genes_per_sentence": float(np.mean(res.n_valid)) if len(query) else 0.0,
        "n_train_examples": int(hist.get("n_train", 0)),
        "train_seconds": float(hist.get("train_seconds") or 0.0),
        "best_val_loss": float(hist.get("best_val_loss") or np.nan),
        "n_steps": int(hist.get("n_steps", 0)),
    }
    return PerturbationResult(X.toarray(), np.arange(len(query)), sentences=sentences, info=info)
