"""Evaluation metrics used by the papers, on plain arrays.

One private module per kind: ``_classification`` (accuracy, macro precision/recall/F1), ``_clustering``
(k-means ARI), ``_calibration`` (expected calibration error) and, for generated cells, ``_generative``.
"""

from ._calibration import expected_calibration_error
from ._classification import classification_scores
from ._clustering import kmeans_ari

__all__ = ["classification_scores", "expected_calibration_error", "kmeans_ari"]
