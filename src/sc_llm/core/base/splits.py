"""Seeded splits of cells: the one home of every train / held-out / fold assignment in sc_llm.

Each split draws from its own ``numpy.random.default_rng(seed)``, never from a global generator, so the same
seed gives the same split in any process.
"""

from __future__ import annotations

import numpy as np


def split_cells(n_cells: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``n_cells`` into (training, held-out) indices, sorted; both sides non-empty."""
    if not 0.0 < test_size < 1.0:
        msg = f"`test_size` must be in (0, 1), got {test_size}."
        raise ValueError(msg)
    n_test = round(n_cells * test_size)
    if n_cells < 2 or not 0 < n_test < n_cells:
        msg = f"Cannot hold out {test_size:.0%} of {n_cells} cell(s); give more cells or another `test_size`."
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n_cells)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def stratified_split(codes: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into ``(train, held_out)`` with about ``fraction`` of every class held out.

    Every class keeps at least one cell on each side, so every class needs at least two cells.
    """
    codes = np.asarray(codes)
    if not 0.0 < fraction < 1.0:
        msg = f"The held-out fraction must be in (0, 1), got {fraction}."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == c))
        if len(rows) < 2:
            msg = f"Class code {c} has {len(rows)} cell; a stratified split needs at least 2 per class."
            raise ValueError(msg)
        n_held = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        held.append(rows[:n_held])
        train.append(rows[n_held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def fold_assignments(codes: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index ``0 … n_folds - 1`` of every cell, stratified: each class is dealt round-robin from a shuffle.

    A class with fewer cells than folds is absent from some folds; every class needs at least two cells so
    that each of its cells has a training fold with another cell of its class.
    """
    codes = np.asarray(codes)
    if n_folds < 2:
        msg = f"`n_folds` must be at least 2, got {n_folds}."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(codes), dtype=np.int64)
    for c in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == c))
        if len(rows) < 2:
            msg = f"Class code {c} has {len(rows)} cell; cross-fitting needs at least 2 per class."
            raise ValueError(msg)
        folds[rows] = (np.arange(len(rows)) + int(rng.integers(n_folds))) % n_folds
    return folds


def validation_split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` positions of ``n`` examples in a seeded random order; no validation when ``n`` < 2.

    ``round(test_size * n)`` examples validate (possibly none); both parts keep the shuffled order.
    """
    if not 0 <= test_size < 1:
        msg = f"`test_size` must be in [0, 1), got {test_size}."
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(test_size * n) if n > 1 else 0
    return order[n_val:], order[:n_val]
