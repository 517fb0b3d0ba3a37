"""Why a text-encoder classifier decides as it does: gene attributions and the papers' sentence ablations."""

from ._ablation_study import ablation_study
from ._attributions import attributions

__all__ = ["ablation_study", "attributions"]
