"""Stacked scMPT fusion: cross-fitted branch classifiers combined as a weighted product of experts.

Each representation gets its own small classifier (:class:`~sc_llm.core.fusion.network.FusionClassifier` with one
input). The training cells are split into ``n_folds`` stratified folds; for every fold one member per
representation is trained on the other folds, early-stopped on that fold, and predicts it. Every training cell
thus gets an out-of-fold prediction from every representation, and the weights of the product of experts
(:func:`fit_expert_weights`) are learned on all of them rather than on a small validation split. At prediction
time each representation's expert is the mean probability of its ``n_folds`` members; the experts' log
probabilities are summed with the learned non-negative weights. A weight of 0 drops a representation, and the
weights' overall scale acts as a temperature, so the confidences are calibrated on out-of-fold cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..base.seeding import torch_seeded
from ..base.splits import fold_assignments
from .network import FusionClassifier


def _nll(weights: torch.Tensor, log_probs: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(sum(w * lp for w, lp in zip(weights, log_probs, strict=True)), y)


def fit_expert_weights(log_probs: Sequence[np.ndarray], codes: np.ndarray, *, max_iter: int = 200) -> np.ndarray:
    """Non-negative weights ``w`` minimising the cross-entropy of ``softmax(Σ w_i log_probs_i)`` on ``codes``.

    Parameters
    ----------
    log_probs
        One ``(n, n_classes)`` array of log probabilities (or logits) per expert, for the same cells.
    codes
        True class codes of those cells.
    max_iter
        L-BFGS iterations.

    Returns
    -------
    ``(n_experts,)`` float64 weights; their sum is also the inverse temperature of the combination.
    """
    y = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    lps = [torch.as_tensor(np.asarray(z), dtype=torch.float64) for z in log_probs]
    if not lps or any(z.shape != (len(y), lps[0].shape[1]) for z in lps):
        msg = "Every expert needs an (n_cells, n_classes) array for the same cells and classes."
        raise ValueError(msg)
    # softplus(raw) / log 2 = 1 at raw = 0: the search starts from the plain product of experts
    raw = torch.zeros(len(lps), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([raw], max_iter=max_iter, line_search_fn="strong_wolfe")

    def weights() -> torch.Tensor:
        return nn.functional.softplus(raw) / math.log(2.0)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(weights(), lps, y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    w = weights().detach()
    if not torch.isfinite(w).all():
        w = torch.ones_like(w)
    return w.numpy()


def class_evidence(log_probs: Sequence[np.ndarray], codes: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Each expert's weighted evidence for the true class, per class: ``(n_classes, n_experts)``.

    Entry ``(c, i)`` is ``w_i · mean(log p_i(c | x) + log C)`` over the cells ``x`` of class ``c`` (NaN for a class
    without cells): expert ``i``'s share of the fused logit of the right class, relative to a uniform guess
    over the ``C`` classes. Positive: the expert points to the right class; 0: it does not tell; negative: it
    points away. The experts' weights are shared by all classes; this shows what they amount to per class.
    """
    codes = np.asarray(codes)
    n_classes = np.asarray(log_probs[0]).shape[1]
    out = np.full((n_classes, len(log_probs)), np.nan)
    for c in np.unique(codes):
        rows = codes == c
        for i, (w, lp) in enumerate(zip(weights, log_probs, strict=True)):
            out[c, i] = float(w) * float(np.mean(np.asarray(lp)[rows, c] + math.log(n_classes)))
    return out


class StackedFusion(nn.Module):
    """Weighted product of experts, one expert per representation, each the mean of its cross-fitted members.

    Parameters
    ----------
    in_dims
        Dimension of each representation.
    n_classes
        Number of classes.
    n_folds
        Members per representation.
    weights
        Expert weights (default 1 each); stored as a buffer, so they are saved with the module.
    **architecture
        Arguments of every member :class:`~sc_llm.core.fusion.network.FusionClassifier` (``hidden``, ``dropout`` …).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        n_classes: int,
        n_folds: int = 5,
        weights: Sequence[float] | None = None,
        **architecture: Any,
    ):
        super().__init__()
        self.in_dims, self.n_classes, self.n_folds = [int(d) for d in in_dims], int(n_classes), int(n_folds)
        if n_folds < 1:
            msg = f"`n_folds` must be positive, got {n_folds}."
            raise ValueError(msg)
        self.architecture = dict(architecture)
        self.members = nn.ModuleList(
            nn.ModuleList(FusionClassifier([d], n_classes, **architecture) for _ in range(n_folds))
            for d in self.in_dims
        )
        w = torch.ones(len(self.in_dims)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (len(self.in_dims),) or (w < 0).any():
            msg = f"`weights` must list one non-negative weight per representation, got {list(w.tolist())}."
            raise ValueError(msg)
        self.register_buffer("weights", w.float())

    @property
    def hidden(self) -> int:
        """Width of every member's feature extractor."""
        return self.members[0][0].hidden

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable (``kind`` tells :func:`build_module` which class to build)."""
        return {
            "kind": "stacked",
            "in_dims": self.in_dims,
            "n_classes": self.n_classes,
            "n_folds": self.n_folds,
            "weights": [float(w) for w in self.weights],
            **self.architecture,
        }

    def expert_log_probs(self, *reps: torch.Tensor) -> list[torch.Tensor]:
        """Each representation's expert: log of the mean class probability of its members."""
        if len(reps) != len(self.in_dims):
            msg = f"Expected {len(self.in_dims)} representation tensors, got {len(reps)}."
            raise ValueError(msg)
        out = []
        for X, members in zip(reps, self.members, strict=True):
            probs = torch.stack([torch.softmax(m(X).float(), dim=1) for m in members]).mean(0)
            out.append(torch.log(probs.clamp_min(1e-12)))
        return out

    def forward(self, *reps: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, n_classes)``: the weighted sum of the experts' log probabilities."""
        return sum(w * lp for w, lp in zip(self.weights, self.expert_log_probs(*reps), strict=True))


def build_module(config: dict[str, Any]) -> nn.Module:
    """Rebuild a fusion module from its ``config()`` (a ``StackedFusion`` or a ``FusionClassifier``)."""
    config = dict(config)
    kind = config.pop("kind", "network")
    if kind == "stacked":
        return StackedFusion(**config)
    if kind != "network":
        msg = f"Unknown fusion module kind {kind!r}; this version of sc_llm knows 'network' and 'stacked'."
        raise ValueError(msg)
    return FusionClassifier(**config)


def train_stacked_fusion(
    reps: Sequence[np.ndarray],
    codes: np.ndarray,
    n_classes: int,
    *,
    n_folds: int = 5,
    architecture: dict[str, Any] | None = None,
    seed: int = 0,
    **fit: Any,
) -> tuple[StackedFusion, dict[str, Any]]:
    """Cross-fit every representation's members and learn the expert weights on the out-of-fold predictions.

    ``fit`` goes to :func:`~sc_llm.core.fusion.training.train_classifier` (``class_weights``, ``lr`` …);
    member ``k`` of representation ``i`` is trained (shuffling, dropout) with seed ``seed * 1000 + 100 * i + k``,
    so that even two copies of one representation give differently trained members (the ensemble control of
    :func:`sc_llm.tl.compare_annotators`).

    Returns
    -------
    ``(module, history)``; history: ``weights`` (per representation), ``class_evidence`` (per class and
    representation, out of fold: ``class_evidence``, as nested lists), ``oof_loss`` (out-of-fold
    cross-entropy of the weighted combination), ``oof_accuracy``, ``n_epochs`` and ``best_epoch`` (mean over
    members), ``member_epochs`` and ``device``.
    """
    from tqdm.auto import tqdm

    from .training import train_classifier

    codes = np.asarray(codes)
    folds = fold_assignments(codes, n_folds, seed)
    with torch_seeded(seed):  # seeded initial weights; the caller's RNG is left alone
        module = StackedFusion([X.shape[1] for X in reps], n_classes, n_folds, **dict(architecture or {}))
    progress = bool(fit.pop("progress", False))
    oof = [np.zeros((len(codes), n_classes)) for _ in reps]
    epochs, best, device = [], [], None
    bar = tqdm(total=len(reps) * n_folds, desc="cross-fitting", unit="member", disable=not progress, leave=False)
    for i, X in enumerate(reps):
        for k in range(n_folds):
            tr, va = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            member = module.members[i][k]
            hist = train_classifier(
                member, [X[tr]], codes[tr], val_reps=[X[va]], val_codes=codes[va], seed=seed * 1000 + 100 * i + k, **fit
            )
            epochs.append(hist["n_epochs"])
            best.append(hist["best_epoch"])
            device = hist["device"]
            with torch.inference_mode():
                logits = member(torch.as_tensor(np.ascontiguousarray(X[va], dtype=np.float32)).to(device))
                oof[i][va] = torch.log_softmax(logits.double(), dim=1).cpu().numpy()
            bar.update()
    bar.close()
    weights = fit_expert_weights(oof, codes)
    module.weights.copy_(torch.as_tensor(weights, dtype=torch.float32))
    z = torch.as_tensor(sum(w * lp for w, lp in zip(weights, oof, strict=True)))
    y = torch.as_tensor(codes, dtype=torch.long)
    history = {
        "weights": [float(w) for w in weights],
        "class_evidence": class_evidence(oof, codes, weights).tolist(),
        "oof_loss": float(nn.functional.cross_entropy(z, y)),
        "oof_accuracy": float((z.argmax(1) == y).double().mean()),
        "n_epochs": float(np.mean(epochs)),
        "best_epoch": float(np.mean(best)),
        "member_epochs": [int(e) for e in epochs],
        "device": str(device),
    }
    return module.eval(), history


def fit_temperature(logits: np.ndarray, codes: np.ndarray, *, max_iter: int = 100) -> float:
    """Temperature ``T > 0`` minimising the cross-entropy of ``softmax(logits / T)`` on ``codes`` (Guo et al. 2017).

    Dividing by ``T`` leaves every prediction unchanged and only rescales the confidences.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and t > 0 else 1.0


def train_any_fusion(
    reps: Sequence[np.ndarray],
    codes: np.ndarray,
    n_classes: int,
    *,
    fusion: str = "stacked",
    val_reps: Sequence[np.ndarray] | None = None,
    val_codes: np.ndarray | None = None,
    n_folds: int = 5,
    architecture: dict[str, Any] | None = None,
    calibrate: bool = True,
    **fit: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train scMPT with the chosen ``fusion`` of two or more representations (one: a single network).

    ``'stacked'`` (:func:`train_stacked_fusion` on the training cells plus any validation cells: the folds take
    the validation split's role); ``'pretrained'`` (:func:`~sc_llm.core.fusion.training.train_fusion` with branch
    pretraining) and ``'concat'`` (the first paper's network: concatenated features, trained end to end from
    a random start). With ``calibrate`` and validation cells, a network's temperature is then fitted on them
    (:func:`fit_temperature`); the stacked fusion is calibrated by its out-of-fold weights.

    Returns
    -------
    ``(module, history)``; ``history['fusion']`` names the recipe used, ``history['temperature']`` the
    temperature of a network.
    """
    from .defaults import FUSIONS
    from .training import predict_proba, train_fusion

    if fusion not in FUSIONS:
        msg = f"`fusion` must be one of {list(FUSIONS)}, got {fusion!r}."
        raise ValueError(msg)
    has_val = val_reps is not None and val_codes is not None and len(val_codes) > 0
    if fusion == "stacked" and len(reps) > 1:
        if has_val:
            reps = [np.concatenate([X, V]) for X, V in zip(reps, val_reps, strict=True)]
            codes = np.concatenate([codes, val_codes])
        module, history = train_stacked_fusion(
            reps, codes, n_classes, n_folds=n_folds, architecture=architecture, **fit
        )
        return module, {**history, "fusion": "stacked"}
    module, history = train_fusion(
        reps,
        codes,
        n_classes,
        val_reps=val_reps,
        val_codes=val_codes,
        pretrain=fusion == "pretrained",
        architecture=architecture,
        **fit,
    )
    history["fusion"] = fusion if len(reps) > 1 else "single"
    if calibrate and has_val:
        proba = predict_proba(module, val_reps, device=fit.get("device"))
        module.temperature = fit_temperature(np.log(np.clip(proba, 1e-12, None)), val_codes)
    history["temperature"] = module.temperature
    return module, history
