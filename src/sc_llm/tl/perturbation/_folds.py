"""The folds of leave-one-cell-type-out: which types to hold out, each fold's task and what it is scored with."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ...core.distances import EXACT_OT_MAX_PAIRS
from ...core.perturbation import mean_shift_vector, predict_mean_shift
from ...metrics._generative import MIN_DE_CELLS
from ._inputs import dense
from ._task import PerturbationTask


def held_out_types(types: np.ndarray, is_ctrl: np.ndarray, is_pert: np.ndarray, held_out) -> list[str]:
    """The cell types to hold out in turn (``held_out``, or every type with enough cells), checked."""
    n_ctrl = pd.Series(types[is_ctrl]).value_counts()
    n_pert = pd.Series(types[is_pert]).value_counts()
    enough = [t for t in pd.unique(types) if n_ctrl.get(t, 0) >= MIN_DE_CELLS and n_pert.get(t, 0) >= MIN_DE_CELLS]
    if held_out is None:
        skipped = sorted(set(pd.unique(types)) - set(enough))
        if skipped:
            warnings.warn(
                f"Cell types {skipped} have fewer than {MIN_DE_CELLS} control or perturbed cells and are not held out.",
                UserWarning,
                stacklevel=3,
            )
        chosen = sorted(enough)
    else:
        chosen = [held_out] if isinstance(held_out, str) else list(held_out)
        unknown = [t for t in chosen if t not in set(types)]
        if unknown:
            msg = f"Unknown cell types in `held_out`: {unknown} (available: {sorted(set(types))})."
            raise ValueError(msg)
        few = {t: (int(n_ctrl.get(t, 0)), int(n_pert.get(t, 0))) for t in chosen if t not in enough}
        if few:
            msg = f"Too few cells for DEGs in {few} (control, perturbed); each needs at least {MIN_DE_CELLS} of both."
            raise ValueError(msg)
    if not chosen:
        msg = f"No cell type has at least {MIN_DE_CELLS} control and {MIN_DE_CELLS} perturbed cells to hold out."
        raise ValueError(msg)
    others = set(types[is_pert]) & set(types[is_ctrl])
    if any(not (others - {t}) for t in chosen):
        msg = "Leave-one-cell-type-out needs at least two cell types with both control and perturbed cells."
        raise ValueError(msg)
    return chosen


def fold_task(X, names, obs_names, types, is_ctrl, is_pert, t, *, perturbation, control, seed, options):
    """The task of the fold holding out type ``t``: train on every cell but its perturbed ones, predict its controls."""
    held = types == t
    train = np.flatnonzero((is_ctrl | is_pert) & ~(is_pert & held))
    q, r = np.flatnonzero(is_ctrl & held), np.flatnonzero(is_pert & held)
    return PerturbationTask(
        train_X=dense(X, train),
        train_perturbed=is_pert[train],
        train_cell_types=types[train],
        query_X=dense(X, q),
        query_cell_types=types[q],
        var_names=names,
        perturbation=perturbation,
        control=control,
        seed=seed,
        truth_X=dense(X, r),
        truth_cell_types=types[r],
        query_names=obs_names[q],
        options=dict(options),
    )


def without_truth(task: PerturbationTask) -> PerturbationTask:
    """The task as a method that must not see the real perturbed cells gets it."""
    sentences = {k: v for k, v in task._sentences.items() if k != "truth"}
    return replace(task, truth_X=None, truth_cell_types=None, _sentences=sentences)


def fold_context(task, effects: dict[str, np.ndarray], held_out: str, wasserstein_method: str) -> dict[str, Any]:
    """What every row of a fold is scored with beyond the cells: Systema's centroid, the groups' real effects."""
    c, p, ct, pt = task.split_train()
    centroid = predict_mean_shift(task.query_X, mean_shift_vector(c, p, ct, pt)).mean(0)
    own = [effects[held_out]] + [e for t, e in effects.items() if t != held_out]
    return {
        "centroid": centroid,
        "effects": np.vstack(own),
        "wasserstein_method": wasserstein_method,
    }


def wasserstein_for(method: str, types, is_ctrl, is_pert, chosen) -> str:
    """One Wasserstein estimator for the whole comparison: ``'exact'`` unless a fold exceeds the exact limit."""
    if method != "auto":
        return method
    sizes = [(int((is_ctrl & (types == t)).sum()), int((is_pert & (types == t)).sum())) for t in chosen]
    largest = max(max(q, r) * r for q, r in sizes)  # a prediction has as many cells as the query (or the truth)
    return "exact" if largest <= EXACT_OT_MAX_PAIRS else "sliced"


def real_effects(X, types, is_ctrl, is_pert, chosen) -> dict[str, np.ndarray]:
    """Every held-out type's real response (perturbed − control mean): the groups of the discrimination score."""
    return {
        t: dense(X, np.flatnonzero(is_pert & (types == t))).mean(0)
        - dense(X, np.flatnonzero(is_ctrl & (types == t))).mean(0)
        for t in chosen
    }
