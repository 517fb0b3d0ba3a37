"""``sl.metrics.population_diagnostics``: where predicted perturbed cells differ from the real ones.

The scores of :func:`~sc_llm.metrics.perturbation_scores` say *how far* a predicted population is from the real
perturbed cells; these diagnostics say *where*: per cell (library size, expressed genes, the share of a cell's
expression outside its sentence) and per gene (mean, variance, detection), and how much of the error and of
the distance comes from the genes a generated sentence leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._utils._sentences import as_sentences
from .._utils._validation import check_count
from ..core import distances as D
from ..core.sentences.decoding import parse_sentences
from ._generative import _gene_index, _matrices, check_de_cells

_POPULATIONS = ("predicted", "real", "control")


def _cell_table(mats: dict[str, np.ndarray], sentence_genes: dict[str, list[np.ndarray] | None]) -> pd.DataFrame:
    """Per-population summaries of per-cell library size, expressed genes and expression outside the sentence."""
    from scipy import stats

    rows = {}
    real = mats["real"]
    for name, X in mats.items():
        lib, n_expr = X.sum(1), (X > 0).sum(1)
        genes = sentence_genes.get(name)
        outside = np.full(len(X), np.nan)
        if genes is not None:
            inside = np.array([X[i, g].sum() for i, g in enumerate(genes)])
            outside = np.where(lib > 0, 1.0 - inside / np.maximum(lib, 1e-12), np.nan)
        rows[name] = {
            "n_cells": len(X),
            "library_size_mean": lib.mean(),
            "library_size_sd": lib.std(ddof=1) if len(X) > 1 else 0.0,
            "n_expressed_mean": n_expr.mean(),
            "n_expressed_sd": n_expr.std(ddof=1) if len(X) > 1 else 0.0,
            "outside_share_mean": float(np.nanmean(outside)) if np.isfinite(outside).any() else np.nan,
            "ks_library_size": stats.ks_2samp(lib, real.sum(1)).statistic,
            "ks_n_expressed": stats.ks_2samp(n_expr, (real > 0).sum(1)).statistic,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _top_genes(X: np.ndarray, n: int) -> list[np.ndarray]:
    """Each cell's ``n`` most expressed genes (its sentence of length ``n``; ties by column order)."""
    order = np.argsort(-X, axis=1, kind="stable")[:, :n]
    return [o[X[i, o] > 0] for i, o in enumerate(order)]


def _gene_table(mats: dict[str, np.ndarray], names, in_sentence: np.ndarray, de: np.ndarray | None) -> pd.DataFrame:
    P, R = mats["predicted"], mats["real"]
    table = pd.DataFrame(
        {
            "mean_pred": P.mean(0),
            "mean_real": R.mean(0),
            "var_pred": P.var(0, ddof=1),
            "var_real": R.var(0, ddof=1),
            "frac_pred": (P > 0).mean(0),
            "frac_real": (R > 0).mean(0),
            "in_sentence": in_sentence,
        },
        index=pd.Index(names, name="gene"),
    )
    if "control" in mats:
        table.insert(2, "mean_control", mats["control"].mean(0))
    table["sq_error_mean"] = (table["mean_pred"] - table["mean_real"]) ** 2
    table["sq_error_var"] = (table["var_pred"] - table["var_real"]) ** 2
    table["is_de"] = False
    if de is not None:
        table.iloc[de, table.columns.get_loc("is_de")] = True
    return table


def _split_summary(mats: dict[str, np.ndarray], genes: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """Shares of the mean and variance errors, and energy distances, of genes inside vs outside the sentences."""
    P, R = mats["predicted"], mats["real"]
    out: dict[str, Any] = {
        "library_size_ratio": float(P.sum(1).mean() / max(R.sum(1).mean(), 1e-12)),
        "n_expressed_ratio": float((P > 0).sum(1).mean() / max((R > 0).sum(1).mean(), 1e-12)),
        "sq_error_mean": float(genes["sq_error_mean"].sum()),
        "sq_error_var": float(genes["sq_error_var"].sum()),
        "energy_distance_genes": D.energy_distance(P, R),
    }
    if genes["in_sentence"].isna().all():
        return out
    inside = (genes["in_sentence"] >= threshold).to_numpy()
    for err in ("sq_error_mean", "sq_error_var"):
        total = genes[err].sum()
        out[f"{err}_outside_share"] = float(genes.loc[~inside, err].sum() / total) if total > 0 else np.nan
    if genes["is_de"].any():
        de = genes["is_de"].to_numpy()
        total = genes.loc[de, "sq_error_mean"].sum()
        out["sq_error_mean_de_outside_share"] = (
            float(genes.loc[de & ~inside, "sq_error_mean"].sum() / total) if total > 0 else np.nan
        )
        out["de_in_sentences"] = int((de & inside).sum())
    out["n_sentence_genes"] = int(inside.sum())
    out["energy_distance_sentence_genes"] = D.energy_distance(P[:, inside], R[:, inside]) if inside.any() else 0.0
    out["energy_distance_outside_genes"] = D.energy_distance(P[:, ~inside], R[:, ~inside]) if (~inside).any() else 0.0
    return out


def _sentence_genes(pred: Any, sentences, sentence_key: str, names, n_cells: int) -> list[np.ndarray] | None:
    """Gene indices of every predicted cell's sentence (``sentences=``, else ``.obs[sentence_key]``), or ``None``."""
    if sentences is None and hasattr(pred, "obs") and sentence_key in pred.obs:
        sentences = pred.obs[sentence_key]
    if sentences is None:
        return None
    sentences = as_sentences(sentences, "the predicted cells' sentences")
    if len(sentences) != n_cells:
        msg = f"{len(sentences)} sentences for {n_cells} predicted cells; pass one sentence per predicted cell."
        raise ValueError(msg)
    if names is None:
        msg = "Sentences name genes: pass AnnData inputs (their `var_names` are the genes), not arrays."
        raise TypeError(msg)
    parsed = parse_sentences(sentences, np.asarray(names, dtype=object))
    if parsed.n_unknown:
        msg = f"{parsed.n_unknown} sentence words are not genes of the inputs (e.g. {parsed.unknown_examples[:3]})."
        raise ValueError(msg)
    return [parsed.genes[parsed.indptr[i] : parsed.indptr[i + 1]] for i in range(n_cells)]


def population_diagnostics(
    pred: Any,
    real: Any,
    control: Any = None,
    *,
    sentences: Sequence[str] | None = None,
    sentence_key: str = "cell_sentence",
    layer: str | None = None,
    use_raw: bool | None = None,
    n_de: int = 100,
    de_genes: Sequence | None = None,
    in_sentence_threshold: float = 0.5,
) -> dict[str, Any]:
    """Per-cell and per-gene comparison of predicted and real perturbed cells, and where the distance comes from.

    For a sentence-generating method (``sl.tl.perturb(method='llm')`` writes ``.obs['cell_sentence']``), each
    gene's ``in_sentence`` share is the fraction of predicted cells whose sentence holds it; genes at or above
    ``in_sentence_threshold`` are the *sentence genes*, the others the *outside genes* (what the decoder, not
    the model, sets). The errors and distances are then split between the two sets.

    Parameters
    ----------
    pred, real, control
        Predicted perturbed cells, real perturbed cells and (optional) control cells of the same type: AnnData
        objects over the same genes (needed to read sentences), or cells × genes arrays.
    sentences
        The predicted cells' sentences, one per cell; default ``pred.obs[sentence_key]`` when present.
    sentence_key
        ``.obs`` column of ``pred`` holding its sentences.
    layer, use_raw
        Which expression matrix of AnnData inputs to read (as in :func:`perturbation_scores`).
    n_de
        Number of DEGs (real vs control, Wilcoxon) flagged in the gene table; needs ``control``.
    de_genes
        DEGs to flag instead (names for AnnData inputs, column indices for arrays).
    in_sentence_threshold
        Share of predicted sentences above which a gene counts as a sentence gene.

    Returns
    -------
    A dict with:

    ``'per_cell'`` : :class:`pandas.DataFrame`
        One row per population (``'predicted'``, ``'real'``, ``'control'``): ``n_cells``, ``library_size_mean``
        / ``_sd`` (sum of each cell's expression), ``n_expressed_mean`` / ``_sd`` (genes above 0),
        ``outside_share_mean`` (share of a cell's expression in genes outside its sentence; for real and control
        cells their own top genes, as many as the predicted sentences' median length; ``nan`` without
        sentences), ``ks_library_size`` and ``ks_n_expressed`` (two-sample Kolmogorov–Smirnov statistics
        against the real cells).
    ``'per_gene'`` : :class:`pandas.DataFrame`
        One row per gene: ``mean_pred``, ``mean_real``, ``mean_control`` (with ``control``), ``var_pred``,
        ``var_real``, ``frac_pred``, ``frac_real`` (share of cells expressing it), ``in_sentence``,
        ``sq_error_mean``, ``sq_error_var`` (squared differences of means and variances) and ``is_de``.
    ``'summary'`` : dict
        ``library_size_ratio`` and ``n_expressed_ratio`` (predicted / real means), ``sq_error_mean`` and
        ``sq_error_var`` (sums over genes), ``energy_distance_genes`` (energy distance on all genes); with
        sentences also ``sq_error_mean_outside_share``, ``sq_error_var_outside_share``,
        ``sq_error_mean_de_outside_share`` and ``de_in_sentences`` (with DEGs), ``n_sentence_genes``,
        ``energy_distance_sentence_genes`` and ``energy_distance_outside_genes`` (energy distance on each set of
        genes alone).
    """
    n_de = check_count(n_de, "n_de")
    if not 0 < in_sentence_threshold <= 1:
        msg = f"`in_sentence_threshold` must be in (0, 1], got {in_sentence_threshold!r}."
        raise ValueError(msg)
    datas = (pred, real) if control is None else (pred, real, control)
    mats_list, names = _matrices(*datas, layer=layer, use_raw=use_raw, whats=list(_POPULATIONS[: len(datas)]))
    mats = dict(zip(_POPULATIONS, mats_list, strict=False))
    if min(len(m) for m in mats.values()) < 2:
        msg = "Every population needs at least 2 cells."
        raise ValueError(msg)
    genes_of = _sentence_genes(pred, sentences, sentence_key, names, len(mats["predicted"]))
    n_genes = mats["predicted"].shape[1]
    in_sentence = np.full(n_genes, np.nan)
    per_cell_genes: dict[str, list[np.ndarray] | None] = {}
    if genes_of is not None:
        counts = np.bincount(np.concatenate([*genes_of, np.zeros(0, np.int64)]), minlength=n_genes)
        in_sentence = counts / len(genes_of)
        length = int(np.median([len(g) for g in genes_of])) or 1
        per_cell_genes = {"predicted": genes_of} | {k: _top_genes(mats[k], length) for k in mats if k != "predicted"}
    de = None
    if de_genes is not None:
        de = _gene_index(de_genes, names, n_genes)
    elif control is not None:
        check_de_cells(len(mats["real"]), len(mats["control"]))
        de = D.top_de_genes(mats["real"], mats["control"], n_de)
    labels = names if names is not None else np.arange(n_genes).astype(str)
    genes = _gene_table(mats, labels, in_sentence, de)
    return {
        "per_cell": _cell_table(mats, per_cell_genes),
        "per_gene": genes,
        "summary": _split_summary(mats, genes, in_sentence_threshold),
    }
