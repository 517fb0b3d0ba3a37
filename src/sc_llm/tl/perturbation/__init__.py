"""Perturbation response: predicted cells (``perturb``) and the leave-one-cell-type-out yardstick.

``_task`` is the contract between the tool and a method, ``_methods`` the registry and the baselines, ``_llm``
the cell-LM method, ``_perturb`` the tool, ``_compare`` (``compare_perturbation``) the benchmark.
"""

from ._compare import compare_perturbation
from ._perturb import perturb

__all__ = ["compare_perturbation", "perturb"]
