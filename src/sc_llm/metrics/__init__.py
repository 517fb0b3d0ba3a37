"""Evaluation metrics used by the papers, on plain arrays or AnnData objects.

One private module per kind: ``_classification`` (accuracy, macro precision/recall/F1), ``_clustering``
(k-means ARI), ``_calibration`` (expected calibration error) and, for generated cells, ``_generative``
(distances, mean-expression agreement) with ``_perturbation_scores`` bundling them, and ``_diagnostics`` (where a
predicted population differs from the real one).
"""

from ._calibration import expected_calibration_error
from ._classification import classification_scores
from ._clustering import kmeans_ari
from ._diagnostics import population_diagnostics
from ._generative import (
    de_genes,
    energy_distance,
    frechet_distance,
    kendall_tau,
    mmd,
    pearson_delta,
    r2_mean,
    wasserstein,
)
from ._perturbation_scores import perturbation_scores

__all__ = [
    "classification_scores",
    "de_genes",
    "energy_distance",
    "expected_calibration_error",
    "frechet_distance",
    "kendall_tau",
    "kmeans_ari",
    "mmd",
    "pearson_delta",
    "perturbation_scores",
    "population_diagnostics",
    "r2_mean",
    "wasserstein",
]
