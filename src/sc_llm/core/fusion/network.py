"""scMPT's fusion network (tensors only; no AnnData in here). Training lives in :mod:`.fusion_training`.

The network follows the first paper's design: one small feature-extractor MLP per frozen representation,
the features concatenated, and a linear classifier on top. With one representation it is the paper's
single-encoder MLP baseline. Inputs are standardised inside the module (per-feature mean and scale stored as
buffers), so callers pass raw embeddings and gradients are taken with respect to them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .defaults import TRAIN_DEFAULTS


class FusionClassifier(nn.Module):
    """Feature extractor per representation → concatenation → linear classifier.

    Parameters
    ----------
    in_dims
        Dimension of each input representation, in the order they are passed to :meth:`forward`.
    n_classes
        Number of output classes.
    hidden
        Width of each feature extractor's output.
    dropout
        Dropout rate of each feature extractor's output.
    scaling
        How :meth:`set_input_scaling` standardises each representation: ``'representation'`` centres every
        feature and divides the whole representation by one number (its root mean feature variance), keeping
        the relative scale of its dimensions (e.g. leading principal components stay dominant);
        ``'feature'`` scales every feature to unit variance.
    input_dropout
        Dropout rate on the (standardised) input features, a strong regulariser for wide embeddings.
    temperature
        The logits are divided by it (1 while training; set afterwards by
        :func:`~sc_llm.core.fusion.stacking.fit_temperature` so that the probabilities are calibrated).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        n_classes: int,
        hidden: int = TRAIN_DEFAULTS["hidden"],
        dropout: float = TRAIN_DEFAULTS["dropout"],
        scaling: str = TRAIN_DEFAULTS["scaling"],
        input_dropout: float = TRAIN_DEFAULTS["input_dropout"],
        temperature: float = 1.0,
    ):
        super().__init__()
        in_dims = [int(d) for d in in_dims]
        if not in_dims or any(d < 1 for d in in_dims):
            msg = f"`in_dims` must list at least one positive dimension, got {in_dims}."
            raise ValueError(msg)
        if n_classes < 2:
            msg = f"A classifier needs at least 2 classes, got {n_classes}."
            raise ValueError(msg)
        if hidden < 1 or not 0.0 <= dropout < 1.0:
            msg = f"`hidden` must be positive and `dropout` in [0, 1); got hidden={hidden}, dropout={dropout}."
            raise ValueError(msg)
        if scaling not in ("representation", "feature"):
            msg = f"`scaling` must be 'representation' or 'feature', got {scaling!r}."
            raise ValueError(msg)
        self.in_dims, self.n_classes, self.hidden, self.dropout = in_dims, int(n_classes), int(hidden), float(dropout)
        if not 0.0 <= input_dropout < 1.0:
            msg = f"`input_dropout` must be in [0, 1), got {input_dropout}."
            raise ValueError(msg)
        self.input_dropout = float(input_dropout)
        if not (math.isfinite(temperature) and temperature > 0):
            msg = f"`temperature` must be positive, got {temperature}."
            raise ValueError(msg)
        self.temperature = float(temperature)
        self.scaling = scaling
        self.extractors = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(input_dropout), nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)
            )
            for d in in_dims
        )
        self.head = nn.Linear(hidden * len(in_dims), n_classes)
        for i, d in enumerate(in_dims):
            self.register_buffer(f"mean_{i}", torch.zeros(d))
            self.register_buffer(f"scale_{i}", torch.ones(d))

    def config(self) -> dict[str, Any]:
        """Return the constructor arguments, JSON-serialisable."""
        return {
            "in_dims": self.in_dims,
            "n_classes": self.n_classes,
            "hidden": self.hidden,
            "dropout": self.dropout,
            "scaling": self.scaling,
            "input_dropout": self.input_dropout,
            "temperature": self.temperature,
        }

    @torch.no_grad()
    def set_input_scaling(self, reps: Sequence[np.ndarray | torch.Tensor]) -> None:
        """Store each representation's centre and scale (from training cells), as set by ``scaling``."""
        for i, X in enumerate(reps):
            X = torch.as_tensor(np.asarray(X, dtype=np.float32) if not torch.is_tensor(X) else X, dtype=torch.float64)
            mean, sd = X.mean(0), X.std(0, unbiased=False)
            if self.scaling == "representation":
                sd = torch.full_like(sd, float(sd.pow(2).mean().sqrt()))
            getattr(self, f"mean_{i}").copy_(mean.float())
            getattr(self, f"scale_{i}").copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)).float())

    def features(self, *reps: torch.Tensor) -> torch.Tensor:
        """Concatenated extracted features, ``(batch, hidden * n_reps)``."""
        if len(reps) != len(self.extractors):
            msg = f"Expected {len(self.extractors)} representation tensors, got {len(reps)}."
            raise ValueError(msg)
        parts = []
        for i, (X, extractor) in enumerate(zip(reps, self.extractors, strict=True)):
            if X.ndim != 2 or X.shape[1] != self.in_dims[i]:
                msg = f"Representation {i} must have shape (batch, {self.in_dims[i]}), got {tuple(X.shape)}."
                raise ValueError(msg)
            parts.append(extractor((X - getattr(self, f"mean_{i}")) / getattr(self, f"scale_{i}")))
        return torch.cat(parts, dim=1)

    def forward(self, *reps: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)`` from float32 tensors ``(batch, in_dims[i])``."""
        logits = self.head(self.features(*reps))
        return logits if self.temperature == 1.0 else logits / self.temperature
