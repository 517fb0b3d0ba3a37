"""``sl.tl.perturb``: predict how control cells respond to a perturbation, as a new AnnData of predicted cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..._utils._anndata import get_gene_names, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._expression import read_expression
from ..._utils._logging import logg
from ..._utils._validation import check_seed
from ...core.sentences.absent import check_absent
from ..decoding._fit import fit_decoder_arrays, resolve_decoder
from ._inputs import cell_types, condition_masks, dense, query_matrix
from ._methods import PerturbationMethod, PerturbationResult, PerturbationTask, get_method
from ._options import check_options, recordable

if TYPE_CHECKING:
    from anndata import AnnData


def run_method(
    method: PerturbationMethod,
    task: PerturbationTask,
    *,
    decoder: Any,
    decoder_kind: str,
    source_adata: Any,
    decoder_absent: str = "zero",
) -> PerturbationResult:
    """Prepare what ``method`` needs (a decoder), run it, and check its result against the contract."""
    if method.uses_sentences and task.decoder is None:
        if decoder is not None:
            task.decoder = resolve_decoder(source_adata, decoder)
        else:
            train_sentences = task.sentences("train")
            task.decoder = fit_decoder_arrays(
                task.train_X,
                task.var_names,
                train_sentences,
                kind=decoder_kind,
                max_rank=1000,
                shrinkage=1.0,
                test_size=0.2,
                seed=task.seed,
                absent=decoder_absent,
                absent_rows=np.flatnonzero(task.train_perturbed),  # the decoded cells are perturbed ones
                where="the training cells",
            )
    result = method.predict(task)
    X = np.asarray(result.X.toarray() if sparse.issparse(result.X) else result.X, dtype=np.float32)
    n_from = len(task.truth_X) if result.from_truth else len(task.query_X)
    source = np.asarray(result.source, dtype=np.int64)
    if X.ndim != 2 or X.shape[1] != len(task.var_names) or len(source) != len(X) or not np.all(np.isfinite(X)):
        msg = f"Method {method.name!r} returned a malformed prediction (shape {X.shape}, {len(source)} sources)."
        raise RuntimeError(msg)
    if len(source) and (source.min() < 0 or source.max() >= n_from):
        msg = f"Method {method.name!r} returned source rows outside its {n_from} input cells."
        raise RuntimeError(msg)
    if result.sentences is not None and len(result.sentences) != len(X):
        msg = f"Method {method.name!r} returned {len(result.sentences)} sentences for {len(X)} cells."
        raise RuntimeError(msg)
    result.X, result.source = X, source
    return result


@doc_params()
def perturb(
    adata: AnnData,
    *,
    condition_key: str,
    control: str,
    perturbation: str,
    cell_type_key: str | None = None,
    query: AnnData | None = None,
    method: str = "mean_shift",
    model: str | None = None,
    decoder: Any = None,
    decoder_kind: str = "per_gene",
    decoder_absent: str = "zero",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    mod: str | None = None,
    seed: int = 0,
    **method_kwargs: Any,
) -> AnnData:
    """Predict the response of control cells to a perturbation; returns a new AnnData of predicted cells.

    ``adata`` holds control and perturbed cells to learn from; ``query`` holds control cells to perturb
    (default: the control cells of ``adata``'s cell types that have no perturbed cells, the unseen-cell-type
    task). Methods: ``'control'`` (no change: the baseline every method must beat), ``'mean_shift'``
    (control plus the mean perturbed − control shift, averaged over the training cell types),
    ``'pca_shift'`` (that shift in a PCA space fitted on the training cells, mapped back: scGen's latent
    arithmetic without its VAE; ``n_comps=`` sets the components) and ``'sentence_oracle'`` (evaluation
    only: the real perturbed cells of the query's cell types written as sentences and decoded, the ceiling
    of any method that generates sentences). ``'llm'`` generates perturbed cell sentences with a cell
    language model (``model=``: a saved :class:`~sc_llm.tl.CellLM` folder, a checkpoint fine-tuned with LoRA
    first, or ``None`` for a small gene-token model trained from scratch) and decodes them; see
    ``sc_llm.tl.perturbation._methods`` for the contract a new method implements.

    Parameters
    ----------
    adata
        Training cells: control and perturbed cells (other conditions are ignored), expression in ``.X``,
        ``layer`` or ``.raw`` (log-normalised).
    condition_key
        ``.obs`` column naming each cell's condition.
    control
        Value of ``condition_key`` for control cells.
    perturbation
        Value of ``condition_key`` for the perturbed cells (the perturbation's name).
    cell_type_key
        ``.obs`` column of cell types: shifts are averaged per cell type, and the default query needs it.
    query
        Control cells to perturb, over the same genes as ``adata``.
    method
        A registered method name (see above).
    model
        A pretrained checkpoint (hub id or folder) for methods that need one.
    decoder
        Sentence decoder for sentence methods: a key of ``adata.uns`` (from
        :func:`sc_llm.tl.fit_sentence_decoder`), its dict, or a ``SentenceDecoder``; default fitted on the
        training cells.
    decoder_kind
        Kind of that default decoder.
    decoder_absent
        What genes left out of a sentence decode to in that default decoder: ``'zero'`` (C2S) or
        ``'expected'``: their mean over the training cells of ``perturbation`` (the kind of cell being
        predicted) whose top genes left them out; right for truncated sentences such as the ``'llm'``
        method's (see :func:`sc_llm.tl.fit_sentence_decoder`).
    layer
        Layer holding expression.
    use_raw
        Read ``.raw``; defaults to ``True`` when ``.raw`` exists and no ``layer`` is given.
    gene_symbols
        ``.var`` column of the gene names used in sentences, when they are not ``var_names``.
    {mod}
    seed
        Seed of the method (and of the default decoder's held-out split).
    **method_kwargs
        Options of the method (e.g. ``n_comps`` for ``'pca_shift'``, ``n_genes`` to cap sentence length).

    Returns
    -------
    A new :class:`~anndata.AnnData` of predicted cells × ``adata``'s genes with:

    ``.X``
        Predicted expression (dense float32, on the scale of the input).
    ``.obs``
        ``'source_cell'`` (the query cell, or for ``'sentence_oracle'`` the real perturbed cell, it came
        from), ``cell_type_key`` (or ``'cell_type'``), ``condition_key`` (the perturbation), ``'method'``,
        and ``'cell_sentence'`` for methods that produce sentences.
    ``.uns['perturb']``
        ``'params'`` (condition_key, control, perturbation, cell_type_key, method, model, seed, layer,
        use_raw, decoder kind and absent mode, options, cell counts) and ``'info'`` (what the method reported).
    """
    check_absent(decoder_absent, "decoder_absent")
    method_kwargs = check_options(method_kwargs, get_method(method).declared(), [method])
    seed = check_seed(seed)
    adata = get_modality(adata, mod)
    query = None if query is None else get_modality(query, mod)
    task, out_var, obs_names = build_task(
        adata,
        condition_key=condition_key,
        control=control,
        perturbation=perturbation,
        cell_type_key=cell_type_key,
        query=query,
        method=method,
        model=model,
        layer=layer,
        use_raw=use_raw,
        gene_symbols=gene_symbols,
        seed=seed,
        options=method_kwargs,
    )
    m = get_method(method)
    start = logg.info(f"predicting {perturbation!r} for {len(task.query_X)} cells with {method!r}")
    result = run_method(
        m, task, decoder=decoder, decoder_kind=decoder_kind, source_adata=adata, decoder_absent=decoder_absent
    )
    out = assemble(
        result, task, out_var, obs_names, condition_key=condition_key, cell_type_key=cell_type_key, method=method
    )
    out.uns["perturb"] = {
        "params": h5ad_params(
            {
                "condition_key": condition_key,
                "control": control,
                "perturbation": perturbation,
                "cell_type_key": cell_type_key,
                "method": method,
                "model": model,
                "seed": seed,
                "layer": layer,
                "use_raw": use_raw,
                "gene_symbols": gene_symbols,
                "mod": mod,
                "decoder_kind": None if task.decoder is None else task.decoder.kind,
                "decoder_absent": None if task.decoder is None else task.decoder.absent,
                # the values used: as checked, and as the method reports them (e.g. `n_comps` a PCA could hold)
                "options": recordable(
                    {**method_kwargs, **{k: v for k, v in result.info.items() if k in method_kwargs}}
                ),
                "n_train_cells": len(task.train_X),
                "n_query_cells": len(task.query_X),
            }
        ),
        "info": dict(result.info),
    }
    logg.info("    finished", time=start, deep=f"{out.n_obs} predicted cells")
    return out


def _unseen_control_cells(X, types, is_ctrl, is_pert, obs_names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The default query: control cells of the cell types that have no perturbed cells in `adata`."""
    if types is None:
        msg = "Pass `query=` (control cells to perturb) or `cell_type_key=` to predict the unseen cell types."
        raise ValueError(msg)
    unseen = sorted(set(types[is_ctrl]) - set(types[is_pert]))
    if not unseen:
        msg = (
            "Every cell type in `adata` has perturbed cells, so there is no unseen cell type to predict. Pass "
            "`query=` with the control cells to perturb (or use `sl.tl.compare_perturbation` to evaluate)."
        )
        raise ValueError(msg)
    q_rows = np.flatnonzero(is_ctrl & np.isin(types, unseen))
    return dense(X, q_rows), types[q_rows], obs_names[q_rows]


def build_task(
    adata: AnnData,
    *,
    condition_key: str,
    control: str,
    perturbation: str,
    cell_type_key: str | None,
    query: AnnData | None,
    method: str,
    model: str | None,
    layer,
    use_raw,
    gene_symbols,
    seed: int,
    options: dict[str, Any],
) -> tuple[PerturbationTask, pd.DataFrame, dict[str, np.ndarray]]:
    """Validate everything, then gather the arrays of a :class:`PerturbationTask` (nothing is written)."""
    m = get_method(method)
    if m.needs_model and model is None:
        msg = f"`method={method!r}` needs a pretrained checkpoint: pass `model=` (a hub id or a local folder)."
        raise ValueError(msg)
    is_ctrl, is_pert = condition_masks(adata, condition_key, control, perturbation)
    X, var, _ = read_expression(adata, layer=layer, use_raw=use_raw)
    names = np.asarray(get_gene_names(var, gene_symbols), dtype=object)
    types = cell_types(adata, cell_type_key)
    obs_names = np.asarray(adata.obs_names.astype(str))
    if query is None:
        query_X, query_types, query_names = _unseen_control_cells(X, types, is_ctrl, is_pert, obs_names)
    else:
        qX = query_matrix(
            query,
            pd.Index(var.index.astype(str)),
            condition_key=condition_key,
            control=control,
            layer=layer,
            use_raw=use_raw,
        )
        query_X, query_names = dense(qX), np.asarray(query.obs_names.astype(str))
        query_types = cell_types(query, cell_type_key) if cell_type_key in query.obs else None
    truth_X = truth_types = truth_names = None
    if m.needs_truth:
        if query_types is None or types is None:
            msg = (
                f"`method={method!r}` compares with the real perturbed cells of the query's cell types: "
                "pass `cell_type_key=` (present in `adata` and in `query`)."
            )
            raise ValueError(msg)
        t_rows = np.flatnonzero(is_pert & np.isin(types, np.unique(query_types)))
        if len(t_rows) == 0:
            msg = f"`method={method!r}` needs real perturbed cells of the query's cell types; `adata` has none."
            raise ValueError(msg)
        truth_X, truth_types, truth_names = dense(X, t_rows), types[t_rows], obs_names[t_rows]
    train_rows = np.flatnonzero(is_ctrl | is_pert)
    task = PerturbationTask(
        train_X=dense(X, train_rows),
        train_perturbed=is_pert[train_rows],
        train_cell_types=None if types is None else types[train_rows],
        query_X=query_X,
        query_cell_types=query_types,
        var_names=names,
        perturbation=perturbation,
        control=control,
        seed=seed,
        model=model,
        truth_X=truth_X,
        truth_cell_types=truth_types,
        query_names=query_names,
        options=dict(options),
    )
    return task, var.copy(), {"query": query_names, "truth": truth_names}


def assemble(
    result: PerturbationResult,
    task: PerturbationTask,
    var: pd.DataFrame,
    obs_names: dict[str, np.ndarray],
    *,
    condition_key: str,
    cell_type_key: str | None,
    method: str,
) -> AnnData:
    """The predicted cells as an AnnData (``.obs``: source cell, cell type, perturbation, method, sentence)."""
    import anndata as ad

    which = "truth" if result.from_truth else "query"
    types = task.truth_cell_types if result.from_truth else task.query_cell_types
    source = obs_names[which][result.source]
    obs = pd.DataFrame(index=pd.Index([f"{s}-{method}" for s in source], dtype=str))
    obs["source_cell"] = source
    obs[cell_type_key or "cell_type"] = pd.Categorical(
        types[result.source] if types is not None else np.full(len(source), "unknown")
    )
    obs[condition_key] = pd.Categorical(np.full(len(source), task.perturbation))
    obs["method"] = pd.Categorical(np.full(len(source), method))
    if result.sentences is not None:
        obs["cell_sentence"] = pd.Series(list(result.sentences), index=obs.index, dtype=object)
    out = ad.AnnData(result.X, obs=obs, var=var)
    out.obs_names_make_unique()
    return out
