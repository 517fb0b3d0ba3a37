"""Calibration of predicted probabilities: top-label expected calibration error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
    gap = np.abs(np.bincount(bins, correct, n_bins) - np.bincount(bins, conf, n_bins))
    return float(gap.sum() / len(conf))
