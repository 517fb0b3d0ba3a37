"""Evaluation metrics used by the papers, on plain arrays."""

from ._classification import classification_scores, expected_calibration_error, kmeans_ari

__all__ = ["classification_scores", "expected_calibration_error", "kmeans_ari"]
