"""AnnData glue for cell-language-model training examples: which cells pair with which, and the split.

These read ``.obs`` only and return tables; the AnnData is never modified. The array work is in
:mod:`sc_llm.core.llm.pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from ..core.llm.pairs import HELD_OUT, TRAIN, VALIDATION, pair_with_controls, split_cells

_SPLITS = [TRAIN, VALIDATION, HELD_OUT]


def _obs_column(adata: AnnData, key: str, what: str) -> pd.Series:
    if key not in adata.obs.columns:
        columns = list(adata.obs.columns)
        msg = f"Did not find adata.obs[{key!r}] ({what}); pass the right column name (columns: {columns})."
        raise KeyError(msg)
    column = adata.obs[key]
    if column.isna().any():
        msg = f"adata.obs[{key!r}] has {int(column.isna().sum())} missing values; fill or drop those cells first."
        raise ValueError(msg)
    return column


def perturbation_pairs(
    adata: AnnData,
    *,
    condition_key: str,
    control: str,
    cell_type_key: str,
    test_size: float = 0.1,
    held_out_cell_types: Sequence[str] = (),
    seed: int = 0,
    missing: str = "raise",
) -> pd.DataFrame:
    """Pair every perturbed cell with a control cell of its type and split the pairs by perturbed cell.

    Parameters
    ----------
    adata
        Cells with a condition and a cell-type column in ``.obs``.
    condition_key, control
        ``.obs`` column of conditions and its value for control cells; every other value is a perturbation.
    cell_type_key
        ``.obs`` column of cell types; controls are drawn within a type (seeded; with replacement when a type
        has fewer controls than perturbed cells).
    test_size
        Fraction of the perturbed cells (outside held-out types) whose pairs go to validation.
    held_out_cell_types
        Cell types whose pairs are all ``'held_out'`` (never trained or validated on).
    seed
        Seed of the control draw and of the split.
    missing
        Perturbed cells of a type without controls: ``'raise'`` or ``'drop'``.

    Returns
    -------
    A :class:`pandas.DataFrame` indexed by the perturbed cells' ``obs_names``, with columns ``control_cell``
    (the paired control's ``obs_name``), ``cell_type``, ``perturbation`` (the condition value) and ``split``
    (categorical: ``'train'``, ``'validation'``, ``'held_out'``).
    """
    conditions = _obs_column(adata, condition_key, "conditions").astype(str)
    types = _obs_column(adata, cell_type_key, "cell types").astype(str)
    is_control = (conditions == str(control)).to_numpy()
    if not is_control.any():
        msg = f"No cell has adata.obs[{condition_key!r}] == {control!r}; values there: {sorted(set(conditions))}."
        raise ValueError(msg)
    if is_control.all():
        msg = f"Every cell is a control ({condition_key!r} == {control!r}): there is no perturbation to learn."
        raise ValueError(msg)
    perturbed, controls = pair_with_controls(types.to_numpy(), is_control, seed=seed, missing=missing)
    split = split_cells(
        len(perturbed),
        test_size=test_size,
        seed=seed,
        cell_types=types.to_numpy()[perturbed],
        held_out_types=held_out_cell_types,
    )
    table = pd.DataFrame(
        {
            "control_cell": adata.obs_names[controls].to_numpy(),
            "cell_type": types.to_numpy()[perturbed],
            "perturbation": conditions.to_numpy()[perturbed],
            "split": pd.Categorical(split, categories=_SPLITS),
        },
        index=pd.Index(adata.obs_names[perturbed], name=None),
    )
    return table


def generation_examples(
    adata: AnnData,
    *,
    cell_type_key: str,
    test_size: float = 0.1,
    held_out_cell_types: Sequence[str] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """Cells for conditional generation (cell type → cell sentence), split by cell.

    Returns
    -------
    A :class:`pandas.DataFrame` indexed by ``obs_names`` with columns ``cell_type`` and ``split``
    (categorical: ``'train'``, ``'validation'``, ``'held_out'``); see :func:`perturbation_pairs`.
    """
    types = _obs_column(adata, cell_type_key, "cell types").astype(str).to_numpy()
    split = split_cells(
        adata.n_obs, test_size=test_size, seed=seed, cell_types=types, held_out_types=held_out_cell_types
    )
    return pd.DataFrame(
        {"cell_type": types, "split": pd.Categorical(split, categories=_SPLITS)},
        index=pd.Index(np.asarray(adata.obs_names), name=None),
    )
