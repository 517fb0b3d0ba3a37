"""The one place that holds scMPT's training defaults (no torch here, so AnnData-facing modules can import it).

:class:`~sc_llm.core.fusion.network.FusionClassifier`, :func:`~sc_llm.core.fusion.training.train_classifier`,
:class:`sc_llm.tl.ScMPT`, :func:`sc_llm.tl.scmpt_annotate` and :func:`sc_llm.tl.compare_annotators` all take
their defaults from :data:`TRAIN_DEFAULTS`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

#: Architecture (``hidden``, ``dropout``, ``scaling``, ``input_dropout``), recipe (``fusion``, ``n_folds``,
#: ``validation_fraction``, ``class_weight``) and optimisation (the rest) defaults of scMPT training.
TRAIN_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "hidden": 128,
        "dropout": 0.3,
        "scaling": "representation",
        "input_dropout": 0.0,
        "fusion": "stacked",
        "n_folds": 5,
        "validation_fraction": 0.1,
        "class_weight": None,
        "max_epochs": 200,
        "patience": 15,
        "batch_size": 64,
        "lr": 1e-3,
        "weight_decay": 1e-2,
        "seed": 0,
    }
)
ARCHITECTURE_KEYS = ("hidden", "dropout", "scaling", "input_dropout")
FIT_KEYS = ("max_epochs", "patience", "batch_size", "lr", "weight_decay", "seed")
#: How :class:`sc_llm.tl.ScMPT` combines two or more representations (see
#: :func:`sc_llm.core.fusion.stacking.train_any_fusion`).
FUSIONS = ("stacked", "pretrained", "concat")
