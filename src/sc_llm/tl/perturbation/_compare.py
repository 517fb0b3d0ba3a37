"""``sl.tl.compare_perturbation``: leave-one-cell-type-out evaluation of every perturbation method on every score."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_gene_names, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._expression import read_expression
from ..._utils._logging import logg
from ..._utils._validation import check_count, check_seed, check_writes
from ...core.distances import top_de_genes
from ...metrics._generative import MIN_DE_CELLS
from ...metrics._perturbation_scores import SCORE_NAMES, pca_space, score_arrays
from ._inputs import cell_types, condition_masks, dense
from ._methods import PerturbationTask, get_method
from ._options import check_options
from ._perturb import run_method

if TYPE_CHECKING:
    from anndata import AnnData

SUMMARY_SCORES = ("r2_mean_all", "r2_mean_de", "pearson_delta_de", "energy_distance", "mmd2", "wasserstein")


def summarize_perturbation(
    table: pd.DataFrame, scores: Sequence[str] = SUMMARY_SCORES, digits: int = 3
) -> pd.DataFrame:
    """``'mean ± sd'`` strings of a :func:`compare_perturbation` table, for printing (stored as ``'summary'``)."""
    cols = {}
    for s in scores:
        cols[s] = [
            f"{m:.{digits}f} ± {d:.{digits}f}" for m, d in zip(table[f"{s}_mean"], table[f"{s}_sd"], strict=True)
        ]
    return pd.DataFrame(cols, index=table.index)


def _held_out_types(types: np.ndarray, is_ctrl: np.ndarray, is_pert: np.ndarray, held_out) -> list[str]:
    n_ctrl = pd.Series(types[is_ctrl]).value_counts()
    n_pert = pd.Series(types[is_pert]).value_counts()
    enough = [t for t in pd.unique(types) if n_ctrl.get(t, 0) >= MIN_DE_CELLS and n_pert.get(t, 0) >= MIN_DE_CELLS]
    if held_out is None:
        skipped = sorted(set(pd.unique(types)) - set(enough))
        if skipped:
            warnings.warn(
                f"Cell types {skipped} have fewer than {MIN_DE_CELLS} control or perturbed cells and are not held out.",
                UserWarning,
                stacklevel=3,
            )
        chosen = sorted(enough)
    else:
        chosen = [held_out] if isinstance(held_out, str) else list(held_out)
        unknown = [t for t in chosen if t not in set(types)]
        if unknown:
            msg = f"Unknown cell types in `held_out`: {unknown} (available: {sorted(set(types))})."
            raise ValueError(msg)
        few = {t: (int(n_ctrl.get(t, 0)), int(n_pert.get(t, 0))) for t in chosen if t not in enough}
        if few:
            msg = f"Too few cells for DEGs in {few} (control, perturbed); each needs at least {MIN_DE_CELLS} of both."
            raise ValueError(msg)
    if not chosen:
        msg = f"No cell type has at least {MIN_DE_CELLS} control and {MIN_DE_CELLS} perturbed cells to hold out."
        raise ValueError(msg)
    others = set(types[is_pert]) & set(types[is_ctrl])
    if any(not (others - {t}) for t in chosen):
        msg = "Leave-one-cell-type-out needs at least two cell types with both control and perturbed cells."
        raise ValueError(msg)
    return chosen


def _fold_task(X, names, obs_names, types, is_ctrl, is_pert, t, *, perturbation, control, seed, options):
    held = types == t
    train = np.flatnonzero((is_ctrl | is_pert) & ~(is_pert & held))
    q, r = np.flatnonzero(is_ctrl & held), np.flatnonzero(is_pert & held)
    return PerturbationTask(
        train_X=dense(X, train),
        train_perturbed=is_pert[train],
        train_cell_types=types[train],
        query_X=dense(X, q),
        query_cell_types=types[q],
        var_names=names,
        perturbation=perturbation,
        control=control,
        seed=seed,
        truth_X=dense(X, r),
        truth_cell_types=types[r],
        query_names=obs_names[q],
        options=dict(options),
    )


def _check_methods(methods: str | Sequence[str], model: str | None) -> list:
    """The registered methods named, with clear errors for none, repeats or a missing checkpoint."""
    ms = [get_method(m) for m in ([methods] if isinstance(methods, str) else methods)]
    if not ms or len({m.name for m in ms}) != len(ms):
        msg = f"`methods` must name at least one method, without repeats; got {list(methods)}."
        raise ValueError(msg)
    if any(m.needs_model for m in ms) and model is None:
        msg = f"Methods {[m.name for m in ms if m.needs_model]} need a pretrained checkpoint: pass `model=`."
        raise ValueError(msg)
    return ms


def _without_truth(task: PerturbationTask) -> PerturbationTask:
    """The task as a method that must not see the real perturbed cells gets it."""
    sentences = {k: v for k, v in task._sentences.items() if k != "truth"}
    return replace(task, truth_X=None, truth_cell_types=None, _sentences=sentences)


def _score_fold(task, ms, held_out, *, n_de, n_comps, decoder, decoder_kind, source_adata, seed, bar) -> list[dict]:
    """Run every method on one held-out cell type and score its predictions (one row per method)."""
    de = top_de_genes(task.truth_X, task.query_X, n_de)
    pca, space = pca_space(task.truth_X, task.query_X, n_comps, seed) if n_comps is not None else (None, "genes")
    real_s = task.truth_X if pca is None else pca.transform(task.truth_X)
    rows = []
    for m in ms:
        tic = time.perf_counter()
        sub = task if m.needs_truth else _without_truth(task)
        result = run_method(m, sub, decoder=decoder, decoder_kind=decoder_kind, source_adata=source_adata)
        task.decoder = task.decoder or sub.decoder
        task._sentences.update({k: v for k, v in sub._sentences.items() if k != "truth"})
        seconds = time.perf_counter() - tic
        pred_s = result.X if pca is None else pca.transform(result.X)
        scores = score_arrays(result.X, task.truth_X, task.query_X, de, pred_s, real_s, space=space, seed=seed)
        rows.append({"held_out": held_out, "method": m.name, **scores, "seconds": seconds})
        bar.update()
    return rows


def _method_table(per: pd.DataFrame, methods: list[str], *, n_folds: int) -> pd.DataFrame:
    """Mean and sd over held-out cell types of every score, one row per method."""
    grouped = per.groupby("method", sort=False)
    table = pd.DataFrame(index=pd.Index(methods, name="method"))
    for s in (*SCORE_NAMES, "seconds"):
        table[f"{s}_mean"] = grouped[s].mean()
        table[f"{s}_sd"] = grouped[s].std(ddof=1) if n_folds > 1 else 0.0
    return table


@doc_params()
def compare_perturbation(
    adata: AnnData,
    *,
    condition_key: str,
    control: str,
    perturbation: str,
    cell_type_key: str,
    methods: Sequence[str] = ("control", "mean_shift", "pca_shift", "sentence_oracle"),
    held_out: str | Sequence[str] | None = None,
    model: str | None = None,
    n_de: int = 100,
    n_comps: int | None = 50,
    decoder: Any = None,
    decoder_kind: str = "per_gene",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    mod: str | None = None,
    seed: int = 0,
    progress: bool = True,
    key_added: str = "perturbation_comparison",
    copy: bool = False,
    **method_kwargs: Any,
) -> AnnData | None:
    """Leave-one-cell-type-out benchmark of perturbation methods (scGen's protocol), scored on every metric.

    For each held-out cell type, its perturbed cells are hidden; every method learns from the remaining
    cells and predicts the held-out type's control cells, and :func:`sc_llm.metrics.perturbation_scores`
    compares the prediction with the hidden perturbed cells (DEGs from those and the type's control cells).

    Parameters
    ----------
    adata
        Control and perturbed cells of several cell types.
    condition_key
        ``.obs`` column of conditions.
    control
        Value of ``condition_key`` for control cells.
    perturbation
        Value of ``condition_key`` for perturbed cells.
    cell_type_key
        ``.obs`` column of cell types.
    methods
        Registered method names (see :func:`sc_llm.tl.perturb`).
    held_out
        Cell types to hold out in turn; default every type with ≥ 3 control and ≥ 3 perturbed cells.
    model
        Pretrained checkpoint for methods that need one.
    n_de
        Number of DEGs for the DEG scores.
    n_comps
        Principal components in which distribution distances are measured (``None``: all genes).
    decoder
        Sentence decoder for sentence methods (key of ``adata.uns``, dict or ``SentenceDecoder``); default
        one fitted per fold on that fold's training cells.
    decoder_kind
        Kind of that default decoder.
    layer
        Layer holding expression.
    use_raw
        Read ``.raw``; defaults to ``True`` when ``.raw`` exists and no ``layer`` is given.
    gene_symbols
        ``.var`` column of the gene names used in sentences, when they are not ``var_names``.
    {mod}
    seed
        Seed of the methods, the PCA of the scores and sliced Wasserstein.
    progress
        Show a progress bar over (cell type, method) runs.
    key_added
        ``.uns`` key of the results.
    {copy}
    **method_kwargs
        Options passed to every method (e.g. ``n_genes``; ``n_comps`` is shared with the scores).

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets ``adata.uns[key_added]``, a dict with:

    ``'table'`` : :class:`pandas.DataFrame`
        One row per method: ``<score>_mean`` and ``<score>_sd`` (sample sd over held-out cell types) for
        every score of :func:`sc_llm.metrics.perturbation_scores`, and ``seconds_mean``.
    ``'summary'`` : :class:`pandas.DataFrame`
        ``'mean ± sd'`` strings of the main scores, for printing.
    ``'per_cell_type'`` : :class:`pandas.DataFrame`
        ``held_out``, ``method``, every score, cell counts and ``seconds`` of every run.
    ``'params'`` : dict
        The arguments, the held-out types and the space of the distances.
    """
    from tqdm.auto import tqdm

    ms = _check_methods(methods, model)
    n_de, n_comps = check_count(n_de, "n_de"), check_count(n_comps, "n_comps", allow_none=True)
    seed = check_seed(seed)
    out = adata.copy() if copy else adata
    adata = get_modality(out, mod)
    is_ctrl, is_pert = condition_masks(adata, condition_key, control, perturbation)
    types = cell_types(adata, cell_type_key)
    chosen = _held_out_types(types, is_ctrl, is_pert, held_out)
    X, var, _ = read_expression(adata, layer=layer, use_raw=use_raw)
    names = np.asarray(get_gene_names(var, gene_symbols), dtype=object)
    obs_names = np.asarray(adata.obs_names.astype(str))
    declared = {k: v for m in ms for k, v in m.declared().items()}
    options = check_options(method_kwargs, declared, [m.name for m in ms])
    options |= {"n_comps": n_comps} if n_comps is not None else {}
    check_writes(adata, {"uns": [key_added]}, {})

    start = logg.info(f"comparing {len(ms)} perturbation methods over {len(chosen)} held-out cell types")
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(chosen) * len(ms), desc="perturbation", unit="run", disable=not progress)
    fold = {"perturbation": perturbation, "control": control, "seed": seed, "options": options}
    score = {"n_de": n_de, "n_comps": n_comps, "decoder": decoder, "decoder_kind": decoder_kind, "seed": seed}
    for t in chosen:
        task = _fold_task(X, names, obs_names, types, is_ctrl, is_pert, t, **fold)
        task.model = model
        rows += _score_fold(task, ms, t, source_adata=adata, bar=bar, **score)
    bar.close()

    per = pd.DataFrame(rows)
    table = _method_table(per, [m.name for m in ms], n_folds=len(chosen))
    adata.uns[key_added] = {
        "table": table,
        "summary": summarize_perturbation(table),
        "per_cell_type": per,
        "params": h5ad_params(
            {
                "condition_key": condition_key,
                "control": control,
                "perturbation": perturbation,
                "cell_type_key": cell_type_key,
                "methods": [m.name for m in ms],
                "held_out": list(chosen),
                "model": model,
                "n_de": n_de,
                "n_comps": n_comps,
                "options": {k: v for k, v in options.items() if k != "n_comps"},
                "decoder_kind": decoder_kind,
                "layer": layer,
                "use_raw": use_raw,
                "gene_symbols": gene_symbols,
                "seed": seed,
                "mod": mod,
                "space": str(per["space"].iloc[0]),
            }
        ),
    }
    logg.info("    finished", time=start, deep=f"added '{key_added}' (adata.uns)\n{adata.uns[key_added]['summary']}")
    return out if copy else None
