"""Plotting."""

from ._ablation import ablation_study
from ._attributions import attributions
from ._cells import cells_with_real
from ._classification import confusion_matrix, reliability
from ._comparison import compare_annotators
from ._fusion import fusion_weights
from ._genes import gene_embedding
from ._perturbation import perturbation, perturbation_comparison
from ._rerank import rerank_changes

__all__ = [
    "ablation_study",
    "attributions",
    "cells_with_real",
    "compare_annotators",
    "confusion_matrix",
    "fusion_weights",
    "gene_embedding",
    "perturbation",
    "perturbation_comparison",
    "reliability",
    "rerank_changes",
]
