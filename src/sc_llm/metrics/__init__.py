"""Evaluation metrics used by the papers, on plain arrays or AnnData objects."""

from ._classification import classification_scores, kmeans_ari
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
    "frechet_distance",
    "kendall_tau",
    "kmeans_ari",
    "mmd",
    "pearson_delta",
    "perturbation_scores",
    "r2_mean",
    "wasserstein",
]
