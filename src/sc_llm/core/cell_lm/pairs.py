"""Training pairs for cell language models, on plain arrays (no AnnData, no tensors).

- :func:`pair_with_controls`: every perturbed cell gets a control cell of the same cell type (seeded;
  without replacement while controls last, with replacement when a type has fewer controls than perturbed
  cells), for perturbation-response examples (control sentence + perturbation → perturbed sentence).
- :func:`pair_within_controls`: every control cell gets another control cell of its type as the prompt (seeded;
  identity examples: the control condition as a null perturbation), so a model also learns the control cells
  of every type, including the types whose perturbed cells are held out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pair_with_controls(
    cell_types: Sequence, is_control: Sequence[bool], *, seed: int = 0, missing: str = "raise"
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each perturbed cell with a control cell of the same type.

    Parameters
    ----------
    cell_types
        Cell type of every cell (any hashable labels).
    is_control
        ``True`` for control cells; every other cell is a perturbed cell to pair.
    seed
        Seed of the draw. Within a type, controls are drawn without replacement while there are at least as
        many controls as perturbed cells, else with replacement.
    missing
        What to do with perturbed cells of a type without any control: ``'raise'`` a ``ValueError`` naming
        the types, or ``'drop'`` them (they appear in neither output array).

    Returns
    -------
    perturbed, control : numpy.ndarray
        Equal-length integer arrays of row indices, perturbed cells in input order.
    """
    types = np.asarray(cell_types)
    ctrl = np.asarray(is_control, dtype=bool)
    if types.shape != ctrl.shape or types.ndim != 1:
        msg = f"cell_types and is_control must be 1-D and of equal length, got {types.shape} and {ctrl.shape}."
        raise ValueError(msg)
    if missing not in ("raise", "drop"):
        msg = f"missing must be 'raise' or 'drop', got {missing!r}."
        raise ValueError(msg)
    perturbed_rows = np.flatnonzero(~ctrl)
    uniques, codes = np.unique(types, return_inverse=True)
    lacking = [str(uniques[c]) for c in np.unique(codes[perturbed_rows]) if not ctrl[codes == c].any()]
    if lacking and missing == "raise":
        msg = (
            f"Cell types {lacking} have perturbed cells but no control cells to pair them with: add controls of "
            "those types, or drop them (missing='drop', or hold the types out)."
        )
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    controls = np.full(len(types), -1, dtype=np.int64)
    for c in range(len(uniques)):
        targets = perturbed_rows[codes[perturbed_rows] == c]
        pool = np.flatnonzero(ctrl & (codes == c))
        if len(targets) == 0 or len(pool) == 0:
            continue
        replace = len(pool) < len(targets)
        controls[targets] = rng.choice(pool, size=len(targets), replace=replace)
    keep = perturbed_rows[controls[perturbed_rows] >= 0]
    return keep, controls[keep]


def pair_within_controls(
    cell_types: Sequence, is_control: Sequence[bool], *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each control cell with another control cell of the same type (itself only when it is alone).

    Within a type, the controls are shuffled (seeded) and each is paired with the next one in that cyclic order,
    so every control cell is the target once and the prompt once, never of itself when its type has two or
    more controls. Returns ``(target, prompt)``: equal-length integer arrays of row indices, targets in input
    order.
    """
    types = np.asarray(cell_types)
    ctrl = np.asarray(is_control, dtype=bool)
    if types.shape != ctrl.shape or types.ndim != 1:
        msg = f"cell_types and is_control must be 1-D and of equal length, got {types.shape} and {ctrl.shape}."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    prompt = np.full(len(types), -1, dtype=np.int64)
    for t in np.unique(types[ctrl]):
        pool = rng.permutation(np.flatnonzero(ctrl & (types == t)))
        prompt[pool] = np.roll(pool, -1)
    target = np.flatnonzero(ctrl)
    return target, prompt[target]
