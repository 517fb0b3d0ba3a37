"""Plotting."""

from ._ablation import ablation_study
from ._attributions import attributions
from ._perturbation import perturbation, perturbation_comparison

__all__ = ["ablation_study", "attributions", "perturbation", "perturbation_comparison"]
