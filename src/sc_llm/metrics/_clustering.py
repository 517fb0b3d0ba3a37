"""Clustering scores: k-means adjusted Rand index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def kmeans_ari(X: np.ndarray, labels: Sequence, *, n_clusters: int | None = None, seed: int = 0) -> float:
    """Adjusted Rand index between k-means clusters of ``X`` and ``labels``.

    ``n_clusters`` defaults to the number of distinct labels, as in the first paper's clustering evaluation.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    labels = np.asarray(labels, dtype=object).astype(str)
    k = n_clusters or len(np.unique(labels))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(X, dtype=np.float32))
    return float(adjusted_rand_score(labels, clusters))
