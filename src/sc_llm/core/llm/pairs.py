"""Training pairs for cell language models, on plain arrays (no AnnData, no tensors).

- :func:`pair_with_controls`: every perturbed cell gets a control cell of the same cell type (seeded;
  without replacement while controls last, with replacement when a type has fewer controls than perturbed
  cells), for perturbation-response examples (control sentence + perturbation → perturbed sentence).
- :func:`pair_within_controls`: every control cell gets another control cell of its type as the prompt (seeded;
  identity examples: the control condition as a null perturbation), so a model also learns the control cells
  of every type, including the types whose perturbed cells are held out.
- :func:`split_cells`: a seeded train/validation split by cell, optionally holding out whole cell types
  (leave-one-cell-type-out evaluation), for perturbation and conditional-generation examples alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRAIN, VALIDATION, HELD_OUT = "train", "validation", "held_out"


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


def split_cells(
    n_cells: int,
    *,
    test_size: float = 0.1,
    seed: int = 0,
    cell_types: Sequence | None = None,
    held_out_types: Sequence = (),
) -> np.ndarray:
    """Assign every cell to ``'train'``, ``'validation'`` or ``'held_out'`` (seeded).

    Cells whose type is in ``held_out_types`` are ``'held_out'``; of the others, a fraction ``test_size``
    (at least one cell when ``test_size > 0``) is ``'validation'``, chosen at random. Returns an array of
    those strings, one per cell.
    """
    if not 0.0 <= test_size < 1.0:
        msg = f"test_size must be in [0, 1), got {test_size!r}."
        raise ValueError(msg)
    split = np.full(n_cells, TRAIN, dtype=object)
    held = list(held_out_types)
    if held:
        if cell_types is None:
            msg = "held_out_types needs cell_types."
            raise ValueError(msg)
        types = np.asarray(cell_types)
        unknown = sorted(set(map(str, held)) - set(map(str, types)))
        if unknown:
            msg = f"held_out_types {unknown} are not among the cell types {sorted(set(map(str, types)))}."
            raise ValueError(msg)
        split[np.isin(types.astype(str), np.asarray(held, dtype=str))] = HELD_OUT
    pool = np.flatnonzero(split == TRAIN)
    n_val = round(test_size * len(pool))
    n_val = max(n_val, 1) if test_size > 0 and len(pool) > 1 else n_val
    if len(pool) - n_val < 1:
        msg = f"No training cells left ({len(pool)} cells not held out, {n_val} for validation): lower test_size."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    split[rng.choice(pool, size=n_val, replace=False)] = VALIDATION
    return split
