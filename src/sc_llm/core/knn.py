"""Cosine k-nearest-neighbour search and label voting (NumPy; pynndescent for large references)."""

from __future__ import annotations

import numpy as np

EXACT_MAX_REFERENCE = 50_000
_QUERY_CHUNK = 2048


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def cosine_knn(
    reference: np.ndarray,
    query: np.ndarray,
    k: int,
    *,
    exclude_self: bool = False,
    method: str = "auto",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` nearest reference rows for each query row.

    Parameters
    ----------
    reference, query
        Row vectors of equal dimension.
    k
        Number of neighbours.
    exclude_self
        ``query`` is ``reference`` itself: drop each row's own index (leave-one-out).
    method
        ``'exact'`` (blocked matrix products), ``'pynndescent'`` (approximate), or ``'auto'``:
        exact up to 50,000 reference rows.
    seed
        Random state of pynndescent.

    Returns
    -------
    ``(indices, similarities)``, each ``(n_query, k)``, nearest first.
    """
    ref, qry = _unit(reference), _unit(query)
    k_eff = k + int(exclude_self)
    if k_eff > len(ref):
        msg = f"k={k} neighbours requested but the reference has {len(ref) - int(exclude_self)} usable cells."
        raise ValueError(msg)
    if method == "auto":
        method = "exact" if len(ref) <= EXACT_MAX_REFERENCE else "pynndescent"
    if method == "exact":
        idx = np.empty((len(qry), k_eff), dtype=np.int64)
        sim = np.empty((len(qry), k_eff), dtype=np.float32)
        for s in range(0, len(qry), _QUERY_CHUNK):
            S = qry[s : s + _QUERY_CHUNK] @ ref.T
            if exclude_self:
                rows = np.arange(S.shape[0])
                S[rows, s + rows] = np.inf  # own row first, dropped below
            part = np.argpartition(-S, k_eff - 1, axis=1)[:, :k_eff]
            ps = np.take_along_axis(S, part, axis=1)
            order = np.lexsort((part, -ps), axis=1)  # by similarity, ties by index
            idx[s : s + len(S)] = np.take_along_axis(part, order, axis=1)
            sim[s : s + len(S)] = np.take_along_axis(ps, order, axis=1)
    elif method == "pynndescent":
        from pynndescent import NNDescent

        index = NNDescent(ref, metric="cosine", n_neighbors=max(30, k_eff), random_state=seed)
        idx, dist = index.query(qry, k=k_eff)
        sim = (1.0 - dist).astype(np.float32)
        if exclude_self:
            own = np.arange(len(qry))[:, None]
            # put the own index (if found) first so it is the one dropped
            is_own = idx == own
            missing = ~is_own.any(axis=1)
            is_own[missing, -1] = True  # not found: drop the farthest instead
            order = np.argsort(~is_own, axis=1, kind="stable")
            idx, sim = np.take_along_axis(idx, order, 1), np.take_along_axis(sim, order, 1)
    else:
        msg = f"`method` must be 'auto', 'exact' or 'pynndescent', got {method!r}."
        raise ValueError(msg)
    if exclude_self:
        idx, sim = idx[:, 1:], sim[:, 1:]
    return idx, sim


def vote(neighbor_codes: np.ndarray, similarities: np.ndarray, n_classes: int, top: int = 3):
    """Majority vote over neighbour labels.

    Ties between labels with equal votes go to the larger summed similarity, then the lower class code.

    Returns
    -------
    ``(codes, scores)``, each ``(n_query, top)``: the best ``top`` class codes and their vote fractions.
    Classes with no vote get code ``-1`` and score 0.
    """
    n, k = neighbor_codes.shape
    rows = np.repeat(np.arange(n), k)
    counts = np.zeros((n, n_classes), dtype=np.float64)
    np.add.at(counts, (rows, neighbor_codes.ravel()), 1.0)
    sims = np.zeros((n, n_classes), dtype=np.float64)
    np.add.at(sims, (rows, neighbor_codes.ravel()), similarities.ravel().astype(np.float64))
    classes = np.broadcast_to(np.arange(n_classes), (n, n_classes))
    order = np.lexsort((classes, -sims, -counts), axis=1)[:, :top]
    frac = np.take_along_axis(counts, order, 1) / k
    codes = np.where(frac > 0, order, -1)
    if codes.shape[1] < top:  # fewer classes than `top`
        pad = top - codes.shape[1]
        codes = np.hstack([codes, np.full((n, pad), -1)])
        frac = np.hstack([frac, np.zeros((n, pad))])
    return codes, frac.astype(np.float32)


def knn_vote(
    reference: np.ndarray,
    reference_codes: np.ndarray,
    query: np.ndarray,
    k: int,
    n_classes: int,
    *,
    top: int = 1,
    exclude_self: bool = False,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Label ``query`` rows by a cosine ``k``-NN majority vote among ``reference`` rows (class codes).

    :func:`cosine_knn` then :func:`vote`; the one kNN classifier of sc_llm (``sl.tl.knn_annotate``,
    ``compare_annotators``' baseline, ``ablation_study``'s score).

    Returns
    -------
    ``(codes, scores)``, each ``(n_query, top)``, as :func:`vote`.
    """
    idx, sim = cosine_knn(reference, query, k, exclude_self=exclude_self, method=method)
    return vote(np.asarray(reference_codes)[idx], sim, n_classes, top)
