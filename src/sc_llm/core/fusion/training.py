"""Training and inference for :class:`~sc_llm.core.fusion.network.FusionClassifier` (arrays and tensors only).

Seeded, early-stopped training on a stratified validation split, optional class weights, and scMPT's
branch pretraining (:func:`train_fusion`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..base.seeding import torch_seeded
from ..base.threads import cpu_threads
from .defaults import TRAIN_DEFAULTS
from .network import FusionClassifier


def balanced_class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (n_classes * count_c)`` per class (0 for classes without cells)."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(codes) / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _as_tensors(reps: Sequence[np.ndarray]) -> list[torch.Tensor]:
    return [torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)) for X in reps]


def _evaluate(module, reps, codes, loss_fn, device, batch_size) -> tuple[float, float]:
    """Mean loss and accuracy of ``module`` on ``reps``/``codes`` (eval mode)."""
    module.eval()
    total, correct = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(codes), batch_size):
            xb = [X[s : s + batch_size].to(device) for X in reps]
            yb = codes[s : s + batch_size].to(device)
            logits = module(*xb)
            total += float(loss_fn(logits, yb)) * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
    return total / len(codes), correct / len(codes)


def _train_epoch(module, X_train, y_train, order, optimizer, loss_fn, device, batch_size: int) -> float:
    """One pass over the training cells in ``order``; the summed (not averaged) training loss."""
    module.train()
    total = 0.0
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        xb = [X[idx].to(device, non_blocking=True) for X in X_train]
        yb = y_train[idx].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(module(*xb), yb)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total


def train_classifier(
    module: FusionClassifier,
    reps: Sequence[np.ndarray],
    codes: np.ndarray,
    *,
    val_reps: Sequence[np.ndarray] | None = None,
    val_codes: np.ndarray | None = None,
    class_weights: np.ndarray | None = None,
    max_epochs: int = TRAIN_DEFAULTS["max_epochs"],
    patience: int = TRAIN_DEFAULTS["patience"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    lr: float = TRAIN_DEFAULTS["lr"],
    weight_decay: float = TRAIN_DEFAULTS["weight_decay"],
    device: Any = None,
    seed: int = TRAIN_DEFAULTS["seed"],
    progress: bool = False,
    keep_initial: bool = False,
) -> dict[str, Any]:
    """Train ``module`` in place with AdamW and cross-entropy; early stopping on the validation loss.

    Standardisation statistics are taken from the training ``reps``. With a validation set, training stops
    after ``patience`` epochs without improvement of the validation loss and the best weights are restored;
    without one, it runs ``max_epochs`` epochs. ``keep_initial``: the weights before training compete too
    (``best_epoch`` 0), for a module initialised from trained parts. Random state (shuffling,
    dropout) comes from ``seed`` alone and
    the global torch RNG is left untouched, so runs on CPU are reproducible. On CPU, training uses one thread.

    Returns
    -------
    History: ``train_loss``, ``val_loss``, ``val_accuracy`` (per epoch lists), ``best_epoch``, ``n_epochs``,
    ``stopped_early``, ``device``.
    """
    from tqdm.auto import tqdm

    from ..base.device import resolve_device

    if max_epochs < 1 or batch_size < 1 or patience < 1:
        msg = f"`max_epochs`, `batch_size` and `patience` must be positive; got {max_epochs}, {batch_size}, {patience}."
        raise ValueError(msg)
    device = resolve_device(device)
    X_train, y_train = _as_tensors(reps), torch.as_tensor(np.asarray(codes), dtype=torch.long)
    has_val = val_reps is not None and val_codes is not None and len(val_codes) > 0
    if has_val:
        X_val, y_val = _as_tensors(val_reps), torch.as_tensor(np.asarray(val_codes), dtype=torch.long)
    module.set_input_scaling(X_train)
    module.to(device)
    weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    n = len(y_train)
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    best_loss, best_state, best_epoch, waited = math.inf, None, 0, 0
    if keep_initial and has_val:
        best_loss = _evaluate(module, X_val, y_val, loss_fn, device, 4 * batch_size)[0]
        best_state, best_epoch = copy.deepcopy(module.state_dict()), -1
    # one thread: on a busy 2-core machine this tiny network trains ~15x faster than on two
    with torch_seeded(seed, device), cpu_threads(1, device=device, at_most=True):  # seeded dropout masks
        bar = tqdm(range(max_epochs), desc="training", unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            order = torch.randperm(n, generator=generator)
            total = _train_epoch(module, X_train, y_train, order, optimizer, loss_fn, device, batch_size)
            history["train_loss"].append(total / n)
            if not has_val:
                continue
            val_loss, val_acc = _evaluate(module, X_val, y_val, loss_fn, device, 4 * batch_size)
            history["val_loss"].append(val_loss)
            history["val_accuracy"].append(val_acc)
            bar.set_postfix(loss=f"{total / n:.3f}", val_loss=f"{val_loss:.3f}", val_acc=f"{val_acc:.3f}")
            if val_loss < best_loss - 1e-4:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                waited += 1
                if waited >= patience:
                    break
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    n_epochs = len(history["train_loss"])
    history.update(
        best_epoch=(best_epoch if has_val else n_epochs - 1) + 1,
        n_epochs=n_epochs,
        stopped_early=bool(has_val and n_epochs < max_epochs),
        device=str(device),
    )
    return history


def predict_proba(
    module: FusionClassifier, reps: Sequence[np.ndarray], *, batch_size: int = 1024, device: Any = None
) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` (float32) of a trained module, in eval mode."""
    from ..base.device import resolve_device

    device = resolve_device(device)
    module.to(device).eval()
    X = _as_tensors(reps)
    n = len(X[0])
    out = np.empty((n, module.n_classes), dtype=np.float32)
    with torch.inference_mode(), cpu_threads(1, device=device, at_most=True):
        for s in range(0, n, batch_size):
            logits = module(*[x[s : s + batch_size].to(device) for x in X])
            out[s : s + batch_size] = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return out


def init_from_branches(
    fused: FusionClassifier, branches: Sequence[FusionClassifier], weights: Sequence[float] | None = None
) -> None:
    """Initialise ``fused`` as a weighted sum of the logits of trained single-representation ``branches``.

    Feature extractors and input scaling are copied; the head concatenates the branch heads' weights (times
    ``weights``, default 1) and sums their weighted biases, so before any further training ``fused`` predicts
    like a weighted product of the branches' experts.
    """
    weights = [1.0] * len(branches) if weights is None else [float(w) for w in weights]
    if [b.in_dims[0] for b in branches] != fused.in_dims or any(b.hidden != fused.hidden for b in branches):
        msg = "Each branch must be a single-representation classifier matching the fused module's input and width."
        raise ValueError(msg)
    with torch.no_grad():
        for i, branch in enumerate(branches):
            fused.extractors[i].load_state_dict(branch.extractors[0].state_dict())
            getattr(fused, f"mean_{i}").copy_(branch.mean_0)
            getattr(fused, f"scale_{i}").copy_(branch.scale_0)
        fused.head.weight.copy_(torch.cat([w * b.head.weight for w, b in zip(weights, branches, strict=True)], dim=1))
        fused.head.bias.copy_(torch.stack([w * b.head.bias for w, b in zip(weights, branches, strict=True)]).sum(0))


def choose_branch_weights(
    branches: Sequence[FusionClassifier],
    val_reps: Sequence[np.ndarray],
    val_codes: np.ndarray,
    *,
    grid: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    device: Any = None,
) -> list[float]:
    """Relative weights of the branches' logits (from ``grid``, the largest 1) minimising validation cross-entropy.

    The most trusted branch keeps its own logits (each branch was calibrated by early stopping on the same
    validation cells); a weight of 0 drops a branch that only adds noise. Ties go to the combination found
    first. The search is exhaustive (``len(grid) ** n_branches`` sums of precomputed logits), which stays
    cheap for the handful of representations a fusion has.
    """
    import itertools

    from ..base.device import resolve_device

    device = resolve_device(device)
    y = torch.as_tensor(np.asarray(val_codes), dtype=torch.long)
    with torch.inference_mode(), cpu_threads(1, device=device, at_most=True):
        logits = [
            b.to(device).eval()(torch.as_tensor(np.asarray(X, dtype=np.float32)).to(device)).cpu()
            for b, X in zip(branches, val_reps, strict=True)
        ]
        best, best_loss = None, math.inf
        for combo in itertools.product(grid, repeat=len(branches)):
            if max(combo) != 1.0:  # relative weights: the most trusted branch keeps its own logits
                continue
            loss = float(nn.functional.cross_entropy(sum(w * z for w, z in zip(combo, logits, strict=True)), y))
            if loss < best_loss - 1e-6:
                best, best_loss = list(combo), loss
    return best


def train_fusion(
    reps: Sequence[np.ndarray],
    codes: np.ndarray,
    n_classes: int,
    *,
    val_reps: Sequence[np.ndarray] | None = None,
    val_codes: np.ndarray | None = None,
    pretrain: bool = True,
    architecture: dict[str, Any] | None = None,
    seed: int = TRAIN_DEFAULTS["seed"],
    **fit: Any,
) -> tuple[FusionClassifier, dict[str, Any]]:
    """Build and train a :class:`FusionClassifier` on ``reps``: scMPT's training recipe.

    With ``pretrain`` and two or more representations: each representation's single-input classifier is
    trained first (the baselines), the fused module starts as their weighted logit sum, with branch weights
    chosen on the validation cells (:func:`choose_branch_weights`), and is then fine-tuned end to end, keeping
    the starting weights if fine-tuning does not lower the validation loss. Otherwise the fused module is
    trained from a seeded random start. ``fit`` goes to :func:`train_classifier`.

    Returns
    -------
    ``(module, history)``; with pretraining, ``history['branch_weights']`` too.
    """
    architecture = dict(architecture or {})
    has_val = val_reps is not None and val_codes is not None and len(val_codes) > 0

    def build(dims: list[int]) -> FusionClassifier:
        with torch_seeded(seed):
            return FusionClassifier(dims, n_classes, **architecture)

    module = build([X.shape[1] for X in reps])
    pretrain = pretrain and len(reps) > 1
    weights = None
    if pretrain:
        branches = []
        for i, X in enumerate(reps):
            branch = build([X.shape[1]])
            train_classifier(
                branch,
                [X],
                codes,
                val_reps=[val_reps[i]] if has_val else None,
                val_codes=val_codes if has_val else None,
                seed=seed,
                **fit,
            )
            branches.append(branch)
        if has_val:
            weights = choose_branch_weights(branches, val_reps, val_codes, device=fit.get("device"))
        init_from_branches(module, branches, weights)
    history = train_classifier(
        module, reps, codes, val_reps=val_reps, val_codes=val_codes, seed=seed, keep_initial=pretrain, **fit
    )
    if pretrain:
        history["branch_weights"] = [1.0] * len(reps) if weights is None else weights
    return module, history
