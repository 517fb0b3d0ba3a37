"""``sl.tl.compare_perturbation``: leave-one-cell-type-out evaluation of every perturbation method on every score."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_gene_names, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._expression import read_expression
from ..._utils._logging import logg
from ..._utils._validation import check_count, check_seed, check_writes
from ...core.distances import wilcoxon_z
from ...core.response_scores import deg_weights
from ...core.sentences.absent import check_absent
from ...metrics._perturbation_scores import SCORE_NAMES, check_wasserstein_method, pca_space, score_arrays
from ._calibrate import NEGATIVES, POSITIVE, add_normalised, calibrated_table, positive_control_row
from ._folds import fold_context, fold_task, held_out_types, real_effects, wasserstein_for, without_truth
from ._inputs import cell_types, condition_masks
from ._methods import get_method
from ._options import check_options, recordable
from ._perturb import run_method

if TYPE_CHECKING:
    from anndata import AnnData

SUMMARY_SCORES = ("r2_mean_all", "r2_mean_de", "pearson_delta_de", "energy_distance", "mmd2", "wasserstein")


def summarize_perturbation(
    table: pd.DataFrame, scores: Sequence[str] = SUMMARY_SCORES, digits: int = 3, wasserstein_method: str | None = None
) -> pd.DataFrame:
    """``'mean ± sd'`` strings of a :func:`compare_perturbation` table, for printing (stored as ``'summary'``).

    With ``wasserstein_method``, the Wasserstein column is named after its estimator (``'wasserstein (exact)'``).
    """
    cols = {}
    for s in scores:
        name = f"{s} ({wasserstein_method})" if s == "wasserstein" and wasserstein_method else s
        cols[name] = [
            f"{m:.{digits}f} ± {d:.{digits}f}" for m, d in zip(table[f"{s}_mean"], table[f"{s}_sd"], strict=True)
        ]
    return pd.DataFrame(cols, index=table.index)


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


def _score_fold(task, ms, held_out, *, n_de, n_comps, run, source_adata, seed, bar, context) -> list[dict]:
    """Run every method on one held-out cell type and score its predictions (one row per method).

    ``run``: the decoder options of :func:`run_method`; ``context``: :func:`_fold_context`, whose
    ``'calibrate'`` entry adds the positive control's row.
    """
    context = dict(context)
    calibrate = context.pop("calibrate")
    z = wilcoxon_z(task.truth_X, task.query_X)
    de = np.argsort(-np.abs(z), kind="stable")[:n_de]  # the top DEGs (largest |z|), as `top_de_genes` ranks them
    context["weights"] = deg_weights(z)
    pca, space = pca_space(task.truth_X, task.query_X, n_comps, seed) if n_comps is not None else (None, "genes")
    real_s = task.truth_X if pca is None else pca.transform(task.truth_X)
    rows = []
    for m in ms:
        tic = time.perf_counter()
        sub = task if m.needs_truth else without_truth(task)
        result = run_method(m, sub, source_adata=source_adata, **run)
        task.decoder = task.decoder or sub.decoder
        task._sentences.update({k: v for k, v in sub._sentences.items() if k != "truth"})
        seconds = time.perf_counter() - tic
        pred_s = result.X if pca is None else pca.transform(result.X)
        scores = score_arrays(
            result.X, task.truth_X, task.query_X, de, pred_s, real_s, space=space, seed=seed, **context
        )
        rows.append({"held_out": held_out, "method": m.name, **scores, "seconds": seconds})
        bar.update()
    if calibrate:
        scores = positive_control_row(task, de, pca, space=space, context=context, seed=seed)
        rows.append({"held_out": held_out, "method": POSITIVE, **scores, "seconds": 0.0})
    return rows


def _method_table(per: pd.DataFrame, methods: list[str], *, n_folds: int) -> pd.DataFrame:
    """Mean and sd over held-out cell types of every score, one row per method."""
    grouped = per.groupby("method", sort=False)
    table = pd.DataFrame(index=pd.Index(methods, name="method"))
    for s in (*SCORE_NAMES, "seconds"):
        table[f"{s}_mean"] = grouped[s].mean()
        table[f"{s}_sd"] = grouped[s].std(ddof=1) if n_folds > 1 else 0.0
    return table


def _for_fold(path: Any, held_out: str) -> Any:
    """A path with ``{held_out}`` filled in with the fold's cell type (one saved model per fold)."""
    return path.replace("{held_out}", held_out) if isinstance(path, str) else path


def _with_controls(methods: str | Sequence[str], calibrate: bool) -> list[str]:
    names = [methods] if isinstance(methods, str) else list(methods)
    return names + [n for n in NEGATIVES if n not in names] if calibrate else names


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
    calibrate: bool = True,
    wasserstein_method: str = "auto",
    decoder: Any = None,
    decoder_kind: str = "per_gene",
    decoder_absent: str = "zero",
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
    compares the prediction with the hidden perturbed cells (DEGs from those and the type's control cells;
    Systema's centroid: the type's control mean plus the training types' mean response; the discrimination
    score's groups: the real responses of every held-out type).

    ``'sentence_oracle'`` is the held-out oracle of sentence methods in one call: in every fold, the hidden
    perturbed cells written as sentences (``n_genes=`` long) and decoded with the decoder fitted on that fold's
    training cells only (``decoder_kind``, ``decoder_absent``), the ceiling of any method that generates
    sentences, measured without ever fitting on the cells it scores. (``sl.tl.perturb`` refuses it on an
    AnnData without the real perturbed cells, which a training AnnData is by design.)

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
        Pretrained checkpoint for methods that need one, or for ``'llm'``; ``{held_out}`` in it is replaced
        by each fold's held-out cell type (e.g. models saved per fold with ``save_model='models/{held_out}'``,
        which is filled in the same way).
    n_de
        Number of DEGs for the DEG scores.
    n_comps
        Principal components in which distribution distances are measured (``None``: all genes).
    calibrate
        Add the controls and the calibrated scores (kernels in :mod:`sc_llm.core.response_scores`): the
        negative controls ``'control'`` and ``'mean_shift'`` (run when not in ``methods``), the positive control
        ``'positive_control'`` (half of the real perturbed cells predicting the other half), and every score
        normalised per fold to 0 at the negative and 1 at the positive control.
    wasserstein_method
        One estimator for every row: ``'auto'`` (exact optimal transport unless a fold exceeds
        :data:`~sc_llm.core.distances.EXACT_OT_MAX_PAIRS` cell pairs, then sliced for every fold), ``'exact'``
        or ``'sliced'`` (the same seeded projections for every row). Recorded in ``params`` and the summary.
    decoder
        Sentence decoder for sentence methods (key of ``adata.uns``, dict or ``SentenceDecoder``); default
        one fitted per fold on that fold's training cells.
    decoder_kind
        Kind of that default decoder.
    decoder_absent
        What genes left out of a sentence decode to in that default decoder (``'zero'`` or ``'expected'``;
        see :func:`sc_llm.tl.perturb`).
    layer
        Layer holding expression.
    use_raw
        Read ``.raw``; defaults to ``True`` when ``.raw`` exists and no ``layer`` is given.
    gene_symbols
        ``.var`` column of the gene names used in sentences, when they are not ``var_names``.
    {mod}
    seed
        Seed of the methods, the PCA of the scores, the positive control's halves and sliced Wasserstein.
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
        One row per method (and ``'positive_control'`` with ``calibrate``): ``<score>_mean`` and
        ``<score>_sd`` (sample sd over held-out cell types) for every score of
        :func:`sc_llm.metrics.perturbation_scores`, and ``seconds_mean``.
    ``'summary'`` : :class:`pandas.DataFrame`
        ``'mean ± sd'`` strings of the main scores, for printing (the Wasserstein column names its estimator).
    ``'calibrated'`` : :class:`pandas.DataFrame`
        With ``calibrate``: the mean over held-out types of every normalised score, one row per method.
    ``'per_cell_type'`` : :class:`pandas.DataFrame`
        ``held_out``, ``method``, every score (and ``<score>_norm`` with ``calibrate``), cell counts and
        ``seconds`` of every run.
    ``'params'`` : dict
        The arguments, the held-out types, the space of the distances, ``'wasserstein_method'`` (the
        estimator used), the methods added as controls and ``'normalised_against'`` (each score's negative).
    """
    from tqdm.auto import tqdm

    names_asked = _with_controls(methods, calibrate)
    ms = _check_methods(names_asked, model)
    n_de, n_comps = check_count(n_de, "n_de"), check_count(n_comps, "n_comps", allow_none=True)
    seed = check_seed(seed)
    check_wasserstein_method(wasserstein_method)
    check_absent(decoder_absent, "decoder_absent")
    out = adata.copy() if copy else adata
    adata = get_modality(out, mod)
    is_ctrl, is_pert = condition_masks(adata, condition_key, control, perturbation)
    types = cell_types(adata, cell_type_key)
    chosen = held_out_types(types, is_ctrl, is_pert, held_out)
    X, var, _ = read_expression(adata, layer=layer, use_raw=use_raw)
    names = np.asarray(get_gene_names(var, gene_symbols), dtype=object)
    obs_names = np.asarray(adata.obs_names.astype(str))
    declared = {k: v for m in ms for k, v in m.declared().items()}
    options = check_options(method_kwargs, declared, [m.name for m in ms])
    options |= {"n_comps": n_comps} if n_comps is not None else {}
    check_writes(adata, {"uns": [key_added]}, {})

    w_method = wasserstein_for(wasserstein_method, types, is_ctrl, is_pert, chosen)
    start = logg.info(f"comparing {len(ms)} perturbation methods over {len(chosen)} held-out cell types")
    bar = tqdm(total=len(chosen) * len(ms), desc="perturbation", unit="run", disable=not progress)
    data = (X, names, obs_names, types, is_ctrl, is_pert)
    fold = {"perturbation": perturbation, "control": control, "seed": seed, "options": options}
    run = {"decoder": decoder, "decoder_kind": decoder_kind, "decoder_absent": decoder_absent}
    score = {"n_de": n_de, "n_comps": n_comps, "run": run, "seed": seed, "source_adata": adata, "bar": bar}
    rows = _run_folds(data, chosen, ms, fold=fold, score=score, model=model, calibrate=calibrate, w_method=w_method)
    bar.close()
    adata.uns[key_added] = _results(pd.DataFrame(rows), ms, chosen, calibrate=calibrate, w_method=w_method)
    adata.uns[key_added]["params"] = h5ad_params(
        {
            "condition_key": condition_key,
            "control": control,
            "perturbation": perturbation,
            "cell_type_key": cell_type_key,
            "methods": [m.name for m in ms],
            "added_controls": [n for n in names_asked if n not in ([methods] if isinstance(methods, str) else methods)],
            "held_out": list(chosen),
            "model": model,
            "n_de": n_de,
            "n_comps": n_comps,
            "calibrate": calibrate,
            "options": recordable({k: v for k, v in options.items() if k != "n_comps"}),
            "decoder_kind": decoder_kind,
            "decoder_absent": decoder_absent,
            "layer": layer,
            "use_raw": use_raw,
            "gene_symbols": gene_symbols,
            "seed": seed,
            "mod": mod,
            "space": str(rows[0]["space"]),
            "wasserstein_method": w_method,
            **adata.uns[key_added].pop("_params"),
        }
    )
    logg.info("    finished", time=start, deep=f"added '{key_added}' (adata.uns)\n{adata.uns[key_added]['summary']}")
    return out if copy else None


def _run_folds(data, chosen, ms, *, fold, score, model, calibrate: bool, w_method: str) -> list[dict[str, Any]]:
    """Every held-out type in turn: its task (per-fold model paths filled in), its methods run and scored."""
    X, names, obs_names, types, is_ctrl, is_pert = data
    effects = real_effects(X, types, is_ctrl, is_pert, chosen)
    rows: list[dict[str, Any]] = []
    for t in chosen:
        task = fold_task(X, names, obs_names, types, is_ctrl, is_pert, t, **fold)
        task.model = _for_fold(model, t)
        task.options = {k: _for_fold(v, t) if k == "save_model" else v for k, v in task.options.items()}
        context = {**fold_context(task, effects, t, w_method), "calibrate": calibrate}
        rows += _score_fold(task, ms, t, context=context, **score)
    return rows


def _results(per: pd.DataFrame, ms, chosen, *, calibrate: bool, w_method: str) -> dict[str, Any]:
    """The tables of :func:`compare_perturbation` from its per-fold rows (params completed by the caller)."""
    names = [m.name for m in ms] + ([POSITIVE] if calibrate else [])
    extra: dict[str, Any] = {}
    if calibrate:
        per, negatives = add_normalised(per)
        extra = {"calibrated": calibrated_table(per, names)}
    table = _method_table(per, names, n_folds=len(chosen))
    return {
        "table": table,
        "summary": summarize_perturbation(table, wasserstein_method=w_method),
        **extra,
        "per_cell_type": per,
        "_params": {"normalised_against": negatives} if calibrate else {},
    }
