"""``sl.tl.knn_annotate``: zero-shot k-NN label transfer on any embedding (GenePT's 10-NN)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils._anndata import check_obs, check_obsm, get_modality
from .._utils._logging import logg
from ..core.knn import cosine_knn, vote
from ..metrics import classification_scores

if TYPE_CHECKING:
    from anndata import AnnData

TOP = 3


def _labels(adata: AnnData, label_key: str, where: str) -> pd.Categorical:
    labels = check_obs(adata, label_key)
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.astype("category")
    if labels.notna().sum() == 0:
        msg = f"`{where}.obs[{label_key!r}]` has no labelled cell."
        raise ValueError(msg)
    return pd.Categorical(labels)


def knn_annotate(
    adata: AnnData,
    reference: AnnData | None = None,
    *,
    use_rep: str,
    label_key: str,
    k: int = 10,
    method: str = "auto",
    mod: str | None = None,
    key_added: str = "knn_label",
    copy: bool = False,
) -> AnnData | None:
    """Transfer labels by a cosine k-nearest-neighbour majority vote, as in GenePT's zero-shot annotation.

    Each cell gets the label most frequent among its ``k`` most cosine-similar reference cells (ties go to
    the label with the larger summed similarity). The top-3 labels and their vote fractions are kept too,
    for example to hand to a generative LLM (:func:`sc_llm.tl.llm_rerank`).

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
        ``.obs`` column with the reference labels (and, in ``adata``, the truth used for ``metrics``).
    k
        Number of neighbours.
    method
        ``'exact'`` (blocked matrix products), ``'pynndescent'`` (approximate) or ``'auto'``
        (exact up to 50,000 reference cells).
    mod
        Modality to use when ``adata`` (and ``reference``) are MuData.
    key_added
        Prefix of the written keys.
    copy
        Return a copy instead of writing to ``adata``.

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
        ``params`` (``use_rep``, ``label_key``, ``k``, ``method``, ``reference``, ``n_reference``) and, when
        ``adata.obs[label_key]`` holds truth for predicted cells, ``metrics`` (accuracy, macro
        precision/recall/F1, ``n``; leave-one-out when ``reference`` is ``None``).
    """
    if k < 1:
        msg = f"`k` must be positive, got {k}."
        raise ValueError(msg)
    target = get_modality(adata, mod)
    query_X = check_obsm(target, use_rep)
    if reference is None:
        labels = _labels(target, label_key, "adata")
        is_ref = ~pd.isna(labels)
        ref_X, ref_labels = query_X[is_ref], labels[is_ref]
    else:
        ref = get_modality(reference, mod)
        ref_X = check_obsm(ref, use_rep)
        labels = _labels(ref, label_key, "reference")
        keep = ~pd.isna(labels)
        ref_X, ref_labels = ref_X[keep], labels[keep]
        if ref_X.shape[1] != query_X.shape[1]:
            msg = (
                f"`obsm[{use_rep!r}]` has {query_X.shape[1]} dimensions in adata but {ref_X.shape[1]} in the "
                "reference; embed both with the same model."
            )
            raise ValueError(msg)
    categories = ref_labels.categories
    ref_codes = ref_labels.codes

    start = logg.info(f"annotating {target.n_obs} cells by {k}-NN on {use_rep!r} from {len(ref_codes)} reference cells")
    codes = np.full((target.n_obs, TOP), -1, dtype=np.int64)
    scores = np.zeros((target.n_obs, TOP), dtype=np.float32)
    groups = (
        [(np.arange(target.n_obs), False)]
        if reference is not None
        else [(np.flatnonzero(~is_ref), False), (np.flatnonzero(is_ref), True)]
    )
    for rows, loo in groups:
        if len(rows) == 0:
            continue
        idx, sim = cosine_knn(ref_X, query_X[rows], k, exclude_self=loo, method=method)
        codes[rows], scores[rows] = vote(ref_codes[idx], sim, len(categories), TOP)

    def to_cat(c: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(c, categories=categories)

    top = pd.DataFrame(index=target.obs_names)
    for j in range(TOP):
        top[f"label_{j + 1}"] = to_cat(codes[:, j])
        top[f"score_{j + 1}"] = scores[:, j]

    uns = {
        "params": {
            "use_rep": use_rep,
            "label_key": label_key,
            "k": k,
            "method": method,
            "reference": "adata" if reference is None else "external",
            "n_reference": len(ref_codes),
        }
    }
    if label_key in target.obs:
        truth = target.obs[label_key]
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
