"""``sl.tl.perturb(..., method='llm')``: a cell language model writes each control cell's perturbed sentence.

The method behind the registry's ``'llm'`` entry (contract in ``sc_llm.tl.perturbation._methods``). ``model=``:

- a folder written by :meth:`sc_llm.tl.CellLM.save`: used as it is (trained with ``task='perturbation'``);
- any other checkpoint (hub id, ``save_pretrained`` folder, ``.gguf`` file): loaded with
  :meth:`~sc_llm.tl.CellLM.from_pretrained` and fine-tuned with LoRA on the training cells;
- ``None``: a small gene-token Llama built from scratch (:meth:`~sc_llm.tl.CellLM.from_scratch`) and trained in
  full on the training cells — the realistic option on a CPU.

Options (keyword arguments of ``sl.tl.perturb``):

- sentences and decoding: ``n_genes`` (genes per sentence, default 50); ``decode``: ``'relative'`` (default:
  each predicted cell is its control cell plus the change its generated sentence writes, see
  :mod:`sc_llm.core.sentences.relative`; with ``decoder_absent='expected'`` the genes outside both sentences
  also move by how the training cells' out-of-sentence genes change between the conditions) or ``'absolute'``
  (C2S: the generated sentence decoded on its own);
- model: ``gene_tokens`` (one token per gene for a pretrained model), ``hidden_size`` / ``num_layers``
  (from-scratch size, default 128/4), ``gene_embeddings`` (genes × dimensions table initialising the gene
  tokens, e.g. embeddings of gene descriptions: rows in the genes' order, or a DataFrame indexed by gene name);
- training: ``epochs``, ``max_steps``, ``lr``, ``batch_size``, ``warmup_steps``, ``lr_schedule``,
  ``weight_decay``, ``patience`` / ``eval_every`` (validation every this many steps, early stopping; the best
  weights are kept), ``validation_fraction`` (share of each cell type's training perturbed cells held out as validation
  pairs, default 0.1), ``cpu_threads``, ``gradient_accumulation_steps``, ``control_pairs`` (default True: also
  train on identity examples of the control cells, so the model learns the held-out types' control cells);
- ensembles: ``n_models`` (seed ensemble, default 1; member ``i`` is seeded ``seed + 1000 i``) and
  ``ensemble``: ``'mixture'`` (default: each cell is written by one member, chosen from its ``obs`` name, so
  the population is a sample of the members' mixture) or ``'mean'`` (every member writes every cell and the
  decoded cells are averaged; ``.obs['cell_sentence']`` holds the first member's sentence);
- generation: ``do_sample`` (default True), ``temperature``, ``top_k``, ``min_genes`` (sentence length at
  least this, up to ``n_genes``), ``tune_sampling`` (choose ``temperature`` and ``top_k`` among
  :data:`SAMPLING_GRID` by the energy distance of the validation pairs' predictions to their real perturbed
  cells), ``gen_batch_size``;
- ``save_model`` (a folder for the trained model; an ensemble writes ``member0``, ``member1``, … inside),
  ``progress``.
"""

from __future__ import annotations

import numpy as np

from ...core.base.cell_keys import obs_name_keys
from ...core.cell_lm.predict import perturbed_sentences
from ...core.sentences.decoding import parse_sentences
from ...core.sentences.relative import absent_shift, relative_decode
from ._llm_train import Split, fit_member, member_seed, saved_members, validation_pairs
from ._task import PerturbationResult, PerturbationTask

DECODES = ("relative", "absolute")
ENSEMBLES = ("mixture", "mean")
SAMPLING_GRID = ((1.0, None), (0.8, None), (1.0, 50), (0.8, 50))
"""``(temperature, top_k)`` settings ``tune_sampling=True`` chooses among."""


def _choice(opts: dict, name: str, allowed: tuple[str, ...]) -> str:
    value = opts.get(name, allowed[0])
    if value not in allowed:
        msg = f"Option `{name}` must be one of {allowed}, got {value!r}."
        raise ValueError(msg)
    return value


def _outside_shift(task: PerturbationTask, n_genes: int) -> np.ndarray:
    """How genes left out of ``n_genes``-gene sentences change between the training cells' two conditions."""
    parsed = parse_sentences(task.sentences("train"), task.var_names)
    rows = np.repeat(np.arange(len(task.train_X)), np.diff(parsed.indptr))
    values = task.train_X[rows, parsed.genes].astype(np.float64)
    pert = np.flatnonzero(task.train_perturbed)
    ctrl = np.flatnonzero(~task.train_perturbed)
    return absent_shift(parsed.indptr, parsed.ranks, parsed.genes, values, task.train_X, pert, ctrl, n_genes)


class _Decoder:
    """Sentences → predicted cells, plainly or relative to the control cells they were written from."""

    def __init__(self, task: PerturbationTask, decode: str, n_genes: int):
        self.task, self.decode, self.n_genes = task, decode, n_genes
        expected = task.decoder.absent == "expected"
        self.shift = _outside_shift(task, n_genes) if decode == "relative" and expected else None

    def __call__(self, sentences: list[str], control_X: np.ndarray) -> np.ndarray:
        dec, names = self.task.decoder, self.task.var_names
        if self.decode == "absolute":
            return dec.decode(sentences, names)[0].toarray()
        parsed = parse_sentences(sentences, names)
        genes = [parsed.genes[parsed.indptr[i] : parsed.indptr[i + 1]] for i in range(len(sentences))]

        def values_at(ranks, columns):
            return dec.predict_columns(ranks, columns, names)

        return relative_decode(control_X, genes, values_at, self.n_genes, outside_shift=self.shift)


def predict_cells(members, control_X, words, types, keys, *, opts, decoder, sampling, seed):
    """Every member's sentences for its cells (mixture) or for all cells (mean), decoded; and the generation results."""
    n_genes, ensemble = int(opts.get("n_genes", 50)), _choice(opts, "ensemble", ENSEMBLES)
    owner = keys % np.uint64(len(members)) if ensemble == "mixture" else None
    X = np.zeros((len(words), control_X.shape[1]), dtype=np.float32)
    sentences: list[str] = [""] * len(words)
    results = []
    for i, lm in enumerate(members):
        rows = np.arange(len(words)) if owner is None else np.flatnonzero(owner == i)
        if len(rows) == 0:
            continue
        res = perturbed_sentences(
            lm,
            [words[r] for r in rows],
            types[rows],
            decoder.task.perturbation,
            cell_keys=keys[rows],
            n_genes=n_genes,
            seed=seed,
            batch_size=int(opts.get("gen_batch_size", 32)),
            progress=bool(opts.get("progress", False)),
            **sampling,
        )
        written = [" ".join(g) for g in res.genes]
        decoded = decoder(written, control_X[rows])
        X[rows] += decoded / len(members) if owner is None else decoded
        if owner is not None or i == 0:
            for r, sentence in zip(rows, written, strict=True):
                sentences[r] = sentence
        results.append(res)
    return X, sentences, results


def _sampling(opts: dict, n_genes: int, setting: tuple | None = None) -> dict:
    """Generation settings from the options, or with ``setting = (temperature, top_k)`` of the grid instead."""
    temperature, top_k = (opts.get("temperature", 1.0), opts.get("top_k")) if setting is None else setting
    return {
        "do_sample": bool(opts.get("do_sample", True)),
        "temperature": float(temperature),
        "top_k": None if top_k is None else int(top_k),
        "min_genes": min(int(opts.get("min_genes", 1)), n_genes),
    }


def choose_sampling(members, task: PerturbationTask, split: Split, decoder: _Decoder, opts: dict) -> tuple[dict, dict]:
    """The :data:`SAMPLING_GRID` setting whose validation predictions are closest (energy distance) to the truth."""
    from ...core.distances import energy_distance
    from ...metrics._perturbation_scores import pca_space

    if len(split.val_perturbed) < 3:
        msg = "`tune_sampling=True` needs at least 3 validation pairs: raise `validation_fraction` or give more "
        msg += "perturbed cells."
        raise ValueError(msg)
    n_genes = int(opts.get("n_genes", 50))
    words = [s.split()[:n_genes] for s in task.sentences("train")]
    c, p = split.val_control, split.val_perturbed
    real, ctrl = task.train_X[p], task.train_X[c]
    pca, _ = pca_space(real, ctrl, 50, task.seed)
    types = (task.train_cell_types if task.train_cell_types is not None else np.full(len(words), "cell"))[c]
    keys = np.arange(len(c), dtype=np.uint64)
    scores = {}
    for setting in SAMPLING_GRID:
        sampling = _sampling(opts, n_genes, setting)
        X, _, _ = predict_cells(
            members,
            ctrl,
            [words[i] for i in c],
            types.astype(str),
            keys,
            opts=opts,
            decoder=decoder,
            sampling=sampling,
            seed=task.seed,
        )
        scores[setting] = energy_distance(pca.transform(X), pca.transform(real))
    best = min(scores, key=scores.get)
    info = {"tuned_temperature": best[0], "tuned_top_k": 0 if best[1] is None else best[1]}
    info["validation_energy"] = float(scores[best])
    return _sampling(opts, n_genes, best), info


def _members(task: PerturbationTask, opts: dict, n_genes: int, split: Split) -> list[tuple]:
    """``(cell LM, trained here)`` of every member: a saved ensemble's, else ``n_models`` fitted ones."""
    from ..llm._cell_lm import CellLM

    n_models = int(opts.get("n_models", 1))
    folders = saved_members(task.model)
    if folders is not None:
        if "n_models" in opts and n_models != len(folders):
            msg = f"`model=` holds an ensemble of {len(folders)} members; `n_models={n_models}` asks for another size."
            raise ValueError(msg)
        return [(CellLM.load(f), False) for f in folders]
    if n_models > 1 and task.model is not None:
        msg = "`n_models` > 1 trains a seed ensemble from scratch; with `model=` pass a saved ensemble's folder."
        raise ValueError(msg)
    return [fit_member(task, opts, n_genes, split, member_seed(task.seed, i)) for i in range(n_models)]


def _save(members, opts: dict) -> None:
    from pathlib import Path

    if not opts.get("save_model"):
        return
    if len(members) == 1:
        members[0].save(opts["save_model"])
        return
    for i, lm in enumerate(members):
        lm.save(Path(opts["save_model"]) / f"member{i}")


def predict_llm(task: PerturbationTask) -> PerturbationResult:
    """Train (or load) the cell LMs, write each query cell's perturbed sentence, decode it."""
    opts = task.options
    n_genes, decode = int(opts.get("n_genes", 50)), _choice(opts, "decode", DECODES)
    _choice(opts, "ensemble", ENSEMBLES)
    split = validation_pairs(task, float(opts.get("validation_fraction", 0.1)), task.seed)
    fitted = _members(task, opts, n_genes, split)
    members = [lm for lm, _ in fitted]
    _save([lm for lm, trained in fitted if trained], opts)
    decoder = _Decoder(task, decode, n_genes)
    info: dict = {}
    sampling = _sampling(opts, n_genes)
    if opts.get("tune_sampling"):
        sampling, info = choose_sampling(members, task, split, decoder, opts)
    words = [s.split() for s in task.sentences("query")]
    types = task.query_cell_types if task.query_cell_types is not None else np.array(["cell"] * len(words))
    keys = np.arange(len(words), dtype=np.uint64) if task.query_names is None else obs_name_keys(task.query_names)
    X, sentences, results = predict_cells(
        members,
        task.query_X,
        words,
        np.asarray(types).astype(str),
        keys,
        opts=opts,
        decoder=decoder,
        sampling=sampling,
        seed=task.seed,
    )
    return PerturbationResult(X, np.arange(len(words)), sentences=sentences, info=_info(members, fitted, results, info))


def _info(members, fitted, results, tuned: dict) -> dict:
    n_valid = np.concatenate([r.n_valid for r in results]) if results else np.zeros(0)
    n_words = sum(int(r.n_words.sum()) for r in results)
    tokens = sum(r.n_new_tokens for r in results)
    seconds = sum(r.seconds for r in results)
    hists = [lm.history or {} for lm in members]
    return {
        "valid_gene_share": float(n_valid.sum() / max(n_words, 1)),
        "tokens_per_second": tokens / max(seconds, 1e-9),
        "gene_mode": members[0].vocab.mode,
        "trained_here": bool(fitted[0][1]),
        "n_models": len(members),
        "mean_genes_per_sentence": float(n_valid.mean()) if len(n_valid) else 0.0,
        "n_train_examples": int(hists[0].get("n_train", 0)),
        "n_validation_pairs": int(hists[0].get("n_validation", 0)),
        "train_seconds": float(sum(h.get("train_seconds") or 0.0 for h in hists)),
        "best_val_loss": float(np.mean([h.get("best_val_loss") or np.nan for h in hists])),
        "n_steps": int(hists[0].get("n_steps", 0)),
        **tuned,
    }
