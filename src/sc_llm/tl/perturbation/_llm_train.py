"""Training the cell LMs of ``method='llm'``: held-out pairs, ensemble members and their initialisation.

- :func:`validation_pairs`: a seeded share of the training perturbed cells of every cell type is held out,
  each paired with a control cell of its type: the validation loss (early stopping, the best weights kept) and
  the choice of sampling settings are measured on these pairs, never on the cells being predicted.
- :func:`fit_member`: one cell LM (loaded, fine-tuned with LoRA, or built from scratch and trained in full) with
  its own seed; ``n_models`` of them make a seed ensemble. Gene tokens of a model built from scratch (or of a
  pretrained one with ``gene_tokens=True``) can start from a genes × dimensions table (``gene_embeddings``,
  e.g. embeddings of gene descriptions) instead of random rows or subword means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.base.splits import validation_split
from ...core.cell_lm.gene_vocab import init_gene_embeddings
from ...core.cell_lm.pairs import pair_with_controls
from ...core.checkpoints import checkpoint_kind
from ..llm._cell_lm import CellLM
from ._task import PerturbationTask

TRAIN_KEYS = (
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
MEMBER_SEED_STEP = 1000  # member i of an ensemble run with seed s is seeded s + 1000 i: runs never share members


@dataclass
class Split:
    """Rows of ``task.train_X`` to train on, and the held-out (perturbed, control) validation pairs."""

    train: np.ndarray
    val_perturbed: np.ndarray
    val_control: np.ndarray


def _types(task: PerturbationTask) -> np.ndarray:
    n = len(task.train_X)
    return task.train_cell_types if task.train_cell_types is not None else np.full(n, "cell", dtype=object)


def validation_pairs(task: PerturbationTask, validation_fraction: float, seed: int) -> Split:
    """Hold out ``validation_fraction`` of each cell type's training perturbed cells, each paired with a control."""
    types, pert = _types(task).astype(str), task.train_perturbed
    held = []
    for t in np.unique(types[pert]):
        rows = np.flatnonzero(pert & (types == t))
        _, val = validation_split(len(rows), validation_fraction, seed)
        held.append(rows[val])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(types)), val)
    if len(val) == 0:
        return Split(train, val, val)
    sub = np.concatenate([val, np.flatnonzero(~pert)])
    p, c = pair_with_controls(types[sub], ~pert[sub], seed=seed, missing="drop")
    return Split(train, sub[p], sub[c])


def saved_members(model) -> list | None:
    """The member folders (``member0``, ``member1``, …) of an ensemble saved with ``save_model``, else ``None``."""
    from pathlib import Path

    from ...core.cell_lm.saved import CONFIG_FILE

    if not isinstance(model, str) or not Path(model).expanduser().is_dir():
        return None
    folders = []
    while (Path(model).expanduser() / f"member{len(folders)}" / CONFIG_FILE).is_file():
        folders.append(Path(model).expanduser() / f"member{len(folders)}")
    return folders or None


def member_seed(seed: int, i: int) -> int:
    """The seed of member ``i`` of an ensemble run with ``seed`` (member 0 is the run's own seed)."""
    return int(seed) + MEMBER_SEED_STEP * int(i)


def _gene_vectors(task: PerturbationTask, table) -> np.ndarray:
    """The ``gene_embeddings`` option as rows in ``task.var_names`` order (genes missing from a DataFrame: NaN)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table.reindex(pd.Index(np.asarray(task.var_names, dtype=str))).to_numpy(dtype=np.float64)
    table = np.asarray(table, dtype=np.float64)
    if table.shape[0] != len(task.var_names):
        msg = (
            f"`gene_embeddings` has {table.shape[0]} rows for {len(task.var_names)} genes: give one row per gene "
            "in the order of the genes, or a DataFrame indexed by gene names."
        )
        raise ValueError(msg)
    return table


def build_member(task: PerturbationTask, opts: dict, seed: int) -> tuple[CellLM, bool]:
    """The cell LM of one member and whether it still needs training (a saved cell LM is used as it is)."""
    genes = [str(g) for g in task.var_names]
    if task.model is not None and checkpoint_kind(task.model) == "cell_lm":
        return CellLM.load(task.model), False
    if task.model is not None:
        lm = CellLM.from_pretrained(task.model, genes=genes, gene_tokens=bool(opts.get("gene_tokens", False)))
    else:
        types = sorted(set(_types(task).astype(str).tolist()))
        if task.query_cell_types is not None:
            types = sorted(set(types) | set(task.query_cell_types.astype(str).tolist()))
        lm = CellLM.from_scratch(
            genes,
            cell_types=types,
            perturbations=[task.perturbation],
            hidden_size=int(opts.get("hidden_size", 128)),
            num_layers=int(opts.get("num_layers", 4)),
            seed=seed,
        )
    if opts.get("gene_embeddings") is not None:
        init_gene_embeddings(lm.model, lm.vocab, _gene_vectors(task, opts["gene_embeddings"]))
    return lm, True


def fit_member(task: PerturbationTask, opts: dict, n_genes: int, split: Split, seed: int) -> tuple[CellLM, bool]:
    """Build one member and, unless it was loaded trained, train it on ``split.train`` (validated on the pairs)."""
    lm, needs_training = build_member(task, opts, seed)
    if not needs_training:
        return lm, False
    words = [s.split()[:n_genes] for s in task.sentences("train")]
    types = _types(task).astype(str)
    conditions = np.where(task.train_perturbed, task.perturbation, task.control)
    rows = split.train
    examples = lm.examples(
        [words[i] for i in rows],
        types[rows],
        task="perturbation",
        conditions=conditions[rows],
        control=task.control,
        n_genes=n_genes,
        seed=seed,
        control_pairs=bool(opts.get("control_pairs", True)),
    )
    if not examples:
        msg = "No training examples: no perturbed cell has a control cell of the same cell type."
        raise ValueError(msg)
    validation = [
        (
            lm.prompt_ids("perturbation", words[c], cell_type=types[p], perturbation=task.perturbation),
            lm.answer_ids(words[p]),
        )
        for p, c in zip(split.val_perturbed, split.val_control, strict=True)
    ]
    config = {k: opts[k] for k in TRAIN_KEYS if k in opts}
    config |= {"seed": seed, "progress": bool(opts.get("progress", False))}
    if "patience" in config or "eval_every" in opts:
        config["eval_every"] = int(opts.get("eval_every", 50))
    history = lm.finetune(examples, validation or None, config=config)
    lm.history = {**history, "n_train": len(examples), "n_validation": len(validation)}
    lm.decoder = task.decoder
    return lm, True
