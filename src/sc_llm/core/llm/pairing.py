"""Pair perturbed cells with control cells of the same cell type, seeded (perturbation training examples)."""

from __future__ import annotations

import numpy as np


def pair_with_controls(cell_types: np.ndarray, is_control: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """For every perturbed cell, a random control cell of the same cell type.

    Parameters
    ----------
    cell_types
        Cell type of every cell.
    is_control
        True for control cells.
    seed
        Seeds the draw.

    Returns
    -------
    ``(n_pairs, 2)`` integer array of ``(perturbed index, control index)``; perturbed cells whose cell type has
    no control are left out.
    """
    rng = np.random.default_rng(seed)
    cell_types, is_control = np.asarray(cell_types), np.asarray(is_control, dtype=bool)
    pairs = []
    for ct in np.unique(cell_types):
        controls = np.flatnonzero((cell_types == ct) & is_control)
        perturbed = np.flatnonzero((cell_types == ct) & ~is_control)
        if len(controls) and len(perturbed):
            pairs.append(np.column_stack([perturbed, rng.choice(controls, size=len(perturbed))]))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
