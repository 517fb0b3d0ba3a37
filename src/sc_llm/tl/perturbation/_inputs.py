"""What ``perturb`` and ``compare_perturbation`` read from the user's AnnData: conditions, cell types, matrices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..._utils._expression import read_expression

if TYPE_CHECKING:
    from anndata import AnnData


def condition_masks(
    adata: AnnData, condition_key: str, control: str, perturbation: str
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the control and perturbed cells, with clear errors for unknown or empty conditions."""
    if condition_key not in adata.obs:
        msg = f"`{condition_key}` not found in `adata.obs` (available: {list(adata.obs.columns)})."
        raise KeyError(msg)
    cond = adata.obs[condition_key].astype(str).to_numpy()
    if control == perturbation:
        msg = f"`control` and `perturbation` are both {control!r}; name two different conditions."
        raise ValueError(msg)
    present = pd.unique(cond).tolist()
    known = list(adata.obs[condition_key].cat.categories) if hasattr(adata.obs[condition_key], "cat") else present
    for role, value in (("control", control), ("perturbation", perturbation)):
        if value not in known:
            msg = (
                f"Unknown {role} condition {value!r}: `adata.obs[{condition_key!r}]` holds {sorted(map(str, present))}."
            )
            raise ValueError(msg)
        if value not in present:
            msg = f"The {role} condition {value!r} has no cells in `adata`; there is nothing to learn it from."
            raise ValueError(msg)
    return cond == control, cond == perturbation


def cell_types(adata: AnnData, cell_type_key: str | None) -> np.ndarray | None:
    """``.obs[cell_type_key]`` as strings, or ``None``."""
    if cell_type_key is None:
        return None
    if cell_type_key not in adata.obs:
        msg = f"`{cell_type_key}` not found in `.obs` (available: {list(adata.obs.columns)})."
        raise KeyError(msg)
    return adata.obs[cell_type_key].astype(str).to_numpy()


def dense(X: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of a dense or sparse matrix as a dense float32 array."""
    X = X if rows is None else X[rows]
    return (X.toarray() if sparse.issparse(X) else np.asarray(X)).astype(np.float32, copy=False)


def query_matrix(query: AnnData, var_names: pd.Index, *, condition_key: str, control: str, layer, use_raw) -> Any:
    """The query's expression with columns in ``var_names`` order; errors for other genes or non-control cells."""
    if condition_key in query.obs:
        cond = query.obs[condition_key].astype(str)
        bad = cond[cond != control]
        if len(bad):
            msg = (
                f"`query` holds {len(bad)} cell(s) that are not control cells (`{condition_key}` values "
                f"{sorted(bad.unique())}); pass only the control cells to perturb."
            )
            raise ValueError(msg)
    X, var, _ = read_expression(query, layer=layer, use_raw=use_raw)
    qnames = pd.Index(var.index.astype(str))
    if not qnames.equals(var_names):
        missing, extra = var_names.difference(qnames), qnames.difference(var_names)
        if len(missing) or len(extra) or not qnames.is_unique:
            msg = (
                f"`query` and `adata` have different genes ({len(missing)} missing from the query, e.g. "
                f"{list(missing[:3])}; {len(extra)} extra, e.g. {list(extra[:3])}). Subset both to the same genes."
            )
            raise ValueError(msg)
        X = X[:, qnames.get_indexer(var_names)]
    if X.shape[0] == 0:
        msg = "`query` has no cells."
        raise ValueError(msg)
    return X
