"""Classification and clustering scores: accuracy, macro precision/recall/F1, k-means ARI."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_scores(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1, as in both papers.

    Macro averages run over the classes present in ``y_true`` or ``y_pred``; a class never predicted
    has precision 0.

    Returns
    -------
    ``{'accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'n'}``.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    if len(y_true) != len(y_pred):
        msg = f"y_true has {len(y_true)} entries but y_pred has {len(y_pred)}."
        raise ValueError(msg)
    if len(y_true) == 0:
        msg = "No cells to score."
        raise ValueError(msg)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
        "n": len(y_true),
    }


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


def expected_calibration_error(y_true: Sequence, y_pred: Sequence, confidence: Sequence, *, n_bins: int = 15) -> float:
    """Top-label expected calibration error (Guo et al. 2017): ``Σ_b |B_b|/n · |accuracy(B_b) − confidence(B_b)|``.

    Cells are binned by the confidence of their predicted label into ``n_bins`` equal-width bins
    ``(0, 1/n_bins], …``; a confidence of 0 goes to the first bin. 0 means the confidences are calibrated.

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels.
    confidence
        Probability the classifier gave its predicted label, in [0, 1].
    n_bins
        Number of bins.
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    conf = np.asarray(confidence, dtype=np.float64)
    if not len(y_true) == len(y_pred) == len(conf):
        msg = f"Got {len(y_true)} true labels, {len(y_pred)} predictions and {len(conf)} confidences."
        raise ValueError(msg)
    if len(conf) == 0:
        msg = "No cells to score."
        raise ValueError(msg)
    if n_bins < 1 or not np.isfinite(conf).all() or (conf < 0).any() or (conf > 1 + 1e-6).any():
        msg = f"`confidence` must hold probabilities in [0, 1] and `n_bins` be positive (got n_bins={n_bins})."
        raise ValueError(msg)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    correct = (y_true == y_pred).astype(np.float64)
    n = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, correct, n_bins) - np.bincount(bins, conf, n_bins))
    return float(gap.sum() / len(conf)) if n.sum() else 0.0
