"""The one check of expression values, at every entry that reads a cells × genes matrix.

Tools that rank, decode, perturb or score expression read one matrix (``.X``, a layer or ``.raw``, chosen by
:func:`~sc_llm._utils._anndata.choose_matrix`) and check it here before computing anything, so that a bad
matrix gives an error naming the matrix, how many values are wrong, in which cells and genes, and the fix —
never a silent wrong answer:

- booleans are not expression;
- NaN or infinite values are refused;
- negative values (scaled or centred data) are refused: expression is counts or log-normalised;
- integer values that look like raw counts give a warning (``counts='warn'``) naming the normalisation, for
  tools whose results are on the scale of their input (predicted cells, decoders, scores).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

COUNTS_MAX = 30  # an all-integer matrix whose values reach this is taken for raw counts
_SHOW = 3


def _values_and_positions(X: Any) -> tuple[np.ndarray, Any]:
    """The stored values of ``X`` and a function from value positions to ``(rows, columns)``."""
    if sparse.issparse(X):
        csr = X.tocsr() if X.format != "csr" else X

        def where(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return np.searchsorted(csr.indptr, pos, side="right") - 1, csr.indices[pos]

        return np.asarray(csr.data), where
    dense = np.asarray(X)

    def where_dense(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.unravel_index(pos, dense.shape)

    return dense.ravel(), where_dense


def _named(index: np.ndarray, names: Sequence | None, what: str, offset: int = 0) -> str:
    unique = list(dict.fromkeys(int(i) for i in index))
    kind = "row" if what == "cell" else "column"
    shown = [str(names[i]) if names is not None else f"{kind} {i + offset}" for i in unique[:_SHOW]]
    return f"{len(unique)} {what}{'s' if len(unique) != 1 else ''} (e.g. {', '.join(shown)})"


def _count(mask: np.ndarray, what: str) -> str:
    n = int(mask.sum())
    return f"{n} {what}{'s' if n != 1 else ''}"


def _locate(mask: np.ndarray, where_fn, obs_names, var_names, offset: int) -> str:
    rows, cols = where_fn(np.flatnonzero(mask))
    return f"{_named(rows, obs_names, 'cell', offset)} and {_named(cols, var_names, 'gene')}"


def check_expression(
    X: Any,
    where: str,
    *,
    obs_names: Sequence | None = None,
    var_names: Sequence | None = None,
    counts: str = "warn",
    row_offset: int = 0,
    stacklevel: int = 3,
) -> None:
    """Refuse booleans, NaN/inf and negative values in an expression matrix; warn on raw counts.

    ``where`` names the matrix in messages (e.g. ``"adata.raw.X"``); ``obs_names`` / ``var_names`` name the
    cells and genes holding bad values (without ``obs_names``, cells are named by row, plus ``row_offset`` for a
    block of a larger matrix). ``counts``: ``'warn'`` on an all-integer matrix reaching
    ``COUNTS_MAX``, or ``'ignore'`` (tools that only rank genes, such as cell sentences).
    """
    dtype = getattr(X, "dtype", None)
    if dtype is not None and np.dtype(dtype) == np.bool_:
        msg = f"{where} holds booleans, not expression values; pass counts or log-normalised expression."
        raise TypeError(msg)
    values, where_fn = _values_and_positions(X)
    if values.size == 0:
        return
    values = values.astype(np.float64, copy=False) if values.dtype.kind not in "fc" else values
    locate = {"where_fn": where_fn, "obs_names": obs_names, "var_names": var_names, "offset": row_offset}
    bad = ~np.isfinite(values)
    if bad.any():
        msg = (
            f"{where} holds {_count(bad, 'NaN or infinite value')}, in {_locate(bad, **locate)}. "
            "Drop or repair those cells (or genes), or recompute the matrix."
        )
        raise ValueError(msg)
    negative = values < 0
    if negative.any():
        msg = (
            f"{where} holds {_count(negative, 'negative value')} (min {values.min():.3g}), in "
            f"{_locate(negative, **locate)}: it looks scaled or centred. Use counts or "
            "log-normalised expression instead: `use_raw=True`, a `layer=` of counts, or `sc.pp.normalize_total` "
            "and `sc.pp.log1p` before `sc.pp.scale`."
        )
        raise ValueError(msg)
    if counts == "warn" and values.max() >= COUNTS_MAX and np.all(values == np.round(values)):
        warnings.warn(
            f"{where} holds only integers up to {values.max():.0f}: it looks like raw counts, so results are on the "
            "scale of counts. Normalise first if that is not intended: `sc.pp.normalize_total(adata)` then "
            "`sc.pp.log1p(adata)`.",
            UserWarning,
            stacklevel=stacklevel,
        )


def read_expression(adata: Any, *, layer: str | None = None, use_raw: bool | None = None, counts: str = "warn"):
    """``(X, var, source)`` of :func:`~sc_llm._utils._anndata.get_matrix`, checked by :func:`check_expression`."""
    from ._anndata import get_matrix

    X, var, source = get_matrix(adata, layer=layer, use_raw=use_raw)
    check_expression(X, f"adata.{source}", obs_names=adata.obs_names, var_names=var.index, counts=counts, stacklevel=4)
    return X, var, source
