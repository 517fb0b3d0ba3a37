"""``sl.tl.knn_annotate``: zero-shot k-NN label transfer on any embedding (GenePT's 10-NN)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obsm, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._readers import check_same_rep, labelled, read_labels, rep_identity
from ..._utils._validation import check_nonzero_rows, check_writes
from ...core.knn import knn_vote
from ...metrics import classification_scores

if TYPE_CHECKING:
    from anndata import AnnData

TOP = 3


@doc_params()
def knn_annotate(
    adata: AnnData,
    reference: AnnData | None = None,
    *,
    use_rep: str,
    label_key: str,
    truth_key: str | None = None,
    k: int = 10,
    method: str = "auto",
    mod: str | None = None,
    key_added: str = "knn_label",
    copy: bool = False,
) -> AnnData | None:
    """Transfer labels by a cosine k-nearest-neighbour majority vote, as in GenePT's zero-shot annotation.

    Each cell gets the label most frequent among its ``k`` most cosine-similar reference cells (ties go to
    the label with the larger summed similarity). The top-3 labels and their vote fractions are kept too,
    for example to hand to a generative LLM for re-ranking.

    Parameters
    ----------
    adata
        Query cells (or a MuData, see ``mod``).
    reference
        Labelled reference cells with the same representation. ``None``: the cells of ``adata`` whose
        ``label_key`` is set are the reference; unlabelled cells are predicted from them and labelled
        cells from the *other* labelled cells (leave-one-out).
    use_rep
        ``.obsm`` key of the embedding in both objects, e.g. ``'X_ember'``.
    label_key
        ``.obs`` column with the reference labels.
    truth_key
        ``.obs`` column of ``adata`` with the query's true labels, to score the prediction (``metrics``). Without
        ``reference`` (leave-one-out) it defaults to ``label_key``: the labelled cells are scored against their
        own labels. (Before 0.2, ``label_key`` in the query was read as the truth; that still works, with a
        ``FutureWarning``.)
    k
        Number of neighbours.
    method
        ``'exact'`` (blocked matrix products), ``'pynndescent'`` (approximate) or ``'auto'``
        (exact up to 50,000 reference cells).
    mod
        Modality to use when ``adata`` (and ``reference``) are MuData.
    key_added
        Prefix of the written keys.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obs[key_added]`` : :class:`pandas.Categorical`
        Predicted labels.
    ``adata.obs[key_added + '_confidence']`` : ``float``
        Vote fraction of the predicted label.
    ``adata.obsm[key_added + '_top3']`` : :class:`pandas.DataFrame`
        ``label_1..3`` (categorical) and ``score_1..3`` (vote fractions); missing ranks are NaN with score 0.
    ``adata.uns[key_added]`` : :class:`dict`
        ``params`` (``use_rep``, ``label_key``, ``truth_key``, ``k``, ``method``, ``reference``, ``n_reference``)
        and, with a truth column holding labels of predicted cells, ``metrics`` (accuracy, macro
        precision/recall/F1, ``n``; leave-one-out when ``reference`` is ``None``).
    """
    if k < 1:
        msg = f"`k` must be positive, got {k}."
        raise ValueError(msg)
    target = get_modality(adata, mod)
    query_X = check_obsm(target, use_rep)
    ref_X, ref_labels, where, is_ref = _reference(target, reference, mod, query_X, use_rep, label_key)
    reference = None if is_ref is not None else reference
    truth_key = _truth_key(target, truth_key, label_key, leave_one_out=reference is None)
    present = pd.unique(np.asarray(ref_labels))
    if len(present) < 2:
        msg = (
            f"`{where}` has a single class ({present[0]!r}): every cell would get it, with full confidence. "
            "kNN annotation needs a reference with at least two labels."
        )
        raise ValueError(msg)
    check_nonzero_rows(query_X, f"adata.obsm[{use_rep!r}]")
    check_nonzero_rows(ref_X, f"the reference's obsm[{use_rep!r}]")
    outputs = [key_added, f"{key_added}_confidence"]
    writes = {"obs": outputs, "obsm": [f"{key_added}_top3"], "uns": [key_added]}
    check_writes(target, writes, {"obs": [label_key, *([truth_key] if truth_key else [])], "obsm": [use_rep]})
    categories = ref_labels.categories
    ref_codes = ref_labels.codes

    start = logg.info(f"annotating {target.n_obs} cells by {k}-NN on {use_rep!r} from {len(ref_codes)} reference cells")
    loo = None if reference is not None else is_ref
    codes, scores = _vote_all(ref_X, ref_codes, query_X, k, len(categories), leave_one_out=loo, method=method)

    def to_cat(c: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(c, categories=categories)

    top = pd.DataFrame(index=target.obs_names)
    for j in range(TOP):
        top[f"label_{j + 1}"] = to_cat(codes[:, j])
        top[f"score_{j + 1}"] = scores[:, j]

    params = {"use_rep": use_rep, "label_key": label_key, "truth_key": truth_key, "k": k, "method": method}
    params |= {"reference": "adata" if reference is None else "external", "n_reference": len(ref_codes)}
    uns = {"params": h5ad_params(params)}
    if truth_key is not None:
        truth = read_labels(target, truth_key)
        has = truth.notna().to_numpy()
        if has.any():
            uns["metrics"] = classification_scores(truth[has], to_cat(codes[has, 0]))

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obs[key_added] = to_cat(codes[:, 0])
    target.obs[f"{key_added}_confidence"] = scores[:, 0]
    target.obsm[f"{key_added}_top3"] = top
    target.uns[key_added] = uns
    logg.info(
        "    finished",
        time=start,
        deep=f"added\n    '{key_added}', '{key_added}_confidence' (adata.obs)\n    '{key_added}_top3' (adata.obsm)",
    )
    return adata if copy else None


def _truth_key(target: AnnData, truth_key: str | None, label_key: str, *, leave_one_out: bool) -> str | None:
    """The query column scored against: ``truth_key``, or ``label_key`` leave-one-out (or, deprecated, present)."""
    if truth_key is not None:
        read_labels(target, truth_key)  # a clear error when it is missing
        return truth_key
    if leave_one_out:
        return label_key
    if label_key in target.obs:
        warnings.warn(
            f"Reading the query's truth from `label_key={label_key!r}` is deprecated: `label_key` names the "
            f"reference labels. Pass `truth_key={label_key!r}` to score the prediction.",
            FutureWarning,
            stacklevel=3,
        )
        return label_key
    return None


def _vote_all(
    ref_X: np.ndarray,
    ref_codes: np.ndarray,
    query_X: np.ndarray,
    k: int,
    n_classes: int,
    *,
    leave_one_out: np.ndarray | None,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-3 codes and vote fractions of every query cell.

    ``leave_one_out`` (the query is the reference): the mask of query cells that are reference cells too, voted
    on by the *other* reference cells; the rest are voted on by all of them.
    """
    n = len(query_X)
    codes = np.full((n, TOP), -1, dtype=np.int64)
    scores = np.zeros((n, TOP), dtype=np.float32)
    if leave_one_out is None:
        groups = [(np.arange(n), False)]
    else:
        groups = [(np.flatnonzero(~leave_one_out), False), (np.flatnonzero(leave_one_out), True)]
    for rows, loo in groups:
        if len(rows):
            codes[rows], scores[rows] = knn_vote(
                ref_X, ref_codes, query_X[rows], k, n_classes, top=TOP, exclude_self=loo, method=method
            )
    return codes, scores


def _same_cells(a: AnnData, b: AnnData) -> bool:
    """``a`` and ``b`` are the same object, or hold the same cells (identical ``obs_names``, same order)."""
    return a is b or (a.n_obs == b.n_obs and a.obs_names.equals(b.obs_names))


def _reference(target: AnnData, reference: AnnData | None, mod: str | None, query_X, use_rep: str, label_key: str):
    """``(reference embedding, its labels, where the labels come from, leave-one-out mask or None)``.

    A reference holding the same cells as the query becomes leave-one-out (with a warning): otherwise each
    cell would find itself as its nearest neighbour and vote for its own label.
    """
    labels_from = target
    if reference is not None and _same_cells(target, get_modality(reference, mod)):
        warnings.warn(
            "`reference` holds the same cells as `adata`: each cell is predicted from the other cells "
            "(leave-one-out), not from itself.",
            UserWarning,
            stacklevel=3,
        )
        labels_from, reference = get_modality(reference, mod), None
    if reference is None:
        where = f"adata.obs[{label_key!r}]"
        is_ref, ref_labels = labelled(read_labels(labels_from, label_key), where, keep_categories=True)
        return query_X[is_ref], ref_labels.remove_unused_categories(), where, is_ref
    ref = get_modality(reference, mod)
    check_same_rep(rep_identity(target, use_rep), rep_identity(ref, use_rep), use_rep, "the reference")
    where = f"reference.obs[{label_key!r}]"
    keep, ref_labels = labelled(read_labels(ref, label_key), where, keep_categories=True)
    ref_labels = ref_labels.remove_unused_categories()  # a class with no reference cell is never predicted
    ref_X = check_obsm(ref, use_rep)[keep]
    if ref_X.shape[1] != query_X.shape[1]:
        msg = (
            f"`obsm[{use_rep!r}]` has {query_X.shape[1]} dimensions in adata but {ref_X.shape[1]} in the "
            "reference; embed both with the same model."
        )
        raise ValueError(msg)
    return ref_X, ref_labels, where, None
