"""Plotting."""

from ._ablation import ablation_study
from ._attributions import attributions

__all__ = ["ablation_study", "attributions"]
