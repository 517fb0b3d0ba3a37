"""Resolve what an AnnData-facing function reads: the modality, the matrix, the gene names, ``.obs``/``.obsm`` keys."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._validation import check_gene_names

if TYPE_CHECKING:
    from anndata import AnnData

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")


def is_mudata(data: Any) -> bool:
    """Tell whether ``data`` is a MuData (checked by name, so mudata need not be installed)."""
    return type(data).__name__ == "MuData"


def get_modality(data: Any, mod: str | None = None, *, whole_mudata: bool = False) -> Any:
    """Return the AnnData to work on: ``data`` itself, or modality ``mod`` of a MuData.

    ``mod=None`` on a MuData picks ``'rna'``; with ``whole_mudata`` it returns the MuData itself (for tools
    that read modality-qualified keys such as ``'rna:X_scgpt'``).
    """
    if is_mudata(data):
        if mod is None:
            if whole_mudata:
                return data
            if "rna" in data.mod:
                mod = "rna"
            else:
                msg = f"Got a MuData; pass `mod=` naming the modality to use (one of {list(data.mod)})."
                raise ValueError(msg)
        if mod not in data.mod:
            msg = f"Modality {mod!r} not found in the MuData; available: {list(data.mod)}."
            raise KeyError(msg)
        return data.mod[mod]
    if mod is not None:
        msg = "`mod` only applies to a MuData; got an AnnData."
        raise ValueError(msg)
    return data


def choose_matrix(layer: str | None, use_raw: bool | None, *, has_raw: bool, layers, where: str = "`adata`") -> str:
    """The one rule for which matrix a tool reads: ``'raw'``, ``'layer'`` or ``'X'``, for memory and for files.

    ``layer`` wins; ``use_raw=None`` means ``.raw`` when it exists and no layer is given (scanpy's convention
    for expression-reading tools); both at once, a missing ``.raw`` or an unknown layer are refused.
    """
    if layer is not None and use_raw:
        msg = "Pass either `layer` or `use_raw=True`, not both."
        raise ValueError(msg)
    if layer is not None:
        if layer not in layers:
            msg = f"Layer {layer!r} not found in the layers of {where} (available: {list(layers)})."
            raise KeyError(msg)
        return "layer"
    if use_raw is None:
        use_raw = has_raw
    if use_raw and not has_raw:
        msg = f"`use_raw=True` but {where} has no `.raw`. Pass `use_raw=False` or a `layer`."
        raise ValueError(msg)
    return "raw" if use_raw else "X"


def get_matrix(adata: AnnData, *, layer: str | None = None, use_raw: bool | None = None):
    """Return ``(X, var, source)`` for ``layer``, ``.raw`` or ``.X`` by :func:`choose_matrix`'s rule.

    ``source`` names what was read: ``"layers['name']"``, ``'raw.X'`` or ``'X'``.
    """
    choice = choose_matrix(layer, use_raw, has_raw=adata.raw is not None, layers=adata.layers)
    if choice == "raw":
        return adata.raw.X, adata.raw.var, "raw.X"
    if choice == "layer":
        return adata.layers[layer], adata.var, f"layers[{layer!r}]"
    if adata.X is None:
        msg = (
            "`adata.X` is None: there is no expression to read. Pass `layer=` naming one of "
            f"{list(adata.layers)}, `use_raw=True` when `adata.raw` is set, or set `adata.X`."
        )
        raise ValueError(msg)
    return adata.X, adata.var, "X"


def get_gene_names(var: pd.DataFrame, gene_symbols: str | None = None) -> np.ndarray:
    """Gene names used in sentences: ``var_names`` or the ``gene_symbols`` column of ``var``.

    Raises a clear error when the names look like Ensembl IDs and no symbol column was given, or when
    the symbol column has missing values.
    """
    if gene_symbols is not None:
        if gene_symbols not in var.columns:
            msg = f"`gene_symbols={gene_symbols!r}` is not a column of `.var` (columns: {list(var.columns)})."
            raise KeyError(msg)
        names = var[gene_symbols]
        if names.isna().any():
            msg = (
                f"Column `.var[{gene_symbols!r}]` has {int(names.isna().sum())} missing symbols; "
                "fill them or subset those genes away first."
            )
            raise ValueError(msg)
        names = names.astype(str).to_numpy()
    else:
        names = var.index.astype(str).to_numpy()
        n_check = min(len(names), 200)
        if n_check and np.mean([bool(_ENSEMBL.match(n)) for n in names[:n_check]]) > 0.5:
            candidates = [
                c for c in var.columns if var[c].dtype == object or isinstance(var[c].dtype, pd.CategoricalDtype)
            ]
            msg = (
                "`var_names` look like Ensembl gene IDs, but cell sentences need gene symbols. "
                f"Pass `gene_symbols=` naming a `.var` column holding symbols (candidate columns: {candidates})."
            )
            raise ValueError(msg)
    where = f"`.var[{gene_symbols!r}]`" if gene_symbols is not None else "`var_names`"
    return check_gene_names(names, where)


def iter_row_chunks(X, chunk_size: int) -> Iterator[tuple[int, int, sparse.csr_matrix]]:
    """Yield ``(start, stop, csr_chunk)`` over rows of a dense, sparse or backed matrix without densifying it.

    Chunks of an in-memory CSR matrix are views of its arrays (no copy of the values).
    """
    n = X.shape[0]
    if sparse.issparse(X) and X.format == "csc":
        X = X.tocsr()  # row slicing of CSC is O(nnz) per chunk; one conversion is cheaper than that
    in_memory_csr = sparse.issparse(X) and X.format == "csr"
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        if in_memory_csr:
            lo, hi = int(X.indptr[start]), int(X.indptr[stop])
            parts = (X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo)
            yield start, stop, sparse.csr_matrix(parts, shape=(stop - start, X.shape[1]), copy=False)
            continue
        chunk = X[start:stop]
        if not sparse.issparse(chunk):
            chunk = np.asarray(chunk)
            if chunk.dtype == np.float16:  # scipy.sparse has no float16; float32 holds every float16 exactly
                chunk = chunk.astype(np.float32)
            chunk = sparse.csr_matrix(chunk)
        elif chunk.format != "csr":
            chunk = chunk.tocsr()
        yield start, stop, chunk


def uns_key(obsm_key: str) -> str:
    """``'X_ember'`` → ``'ember'``: where an ``.obsm`` result keeps its parameters in ``.uns``."""
    return obsm_key[2:] if obsm_key.startswith("X_") else obsm_key


def check_obsm(adata: AnnData, key: str) -> np.ndarray:
    """Return ``adata.obsm[key]`` as a float array, checking it exists and is finite."""
    if key not in adata.obsm:
        msg = (
            f"`{key}` not found in `adata.obsm` (available: {list(adata.obsm)}). "
            "Compute it first, e.g. with `sl.tl.embed`."
        )
        raise KeyError(msg)
    X = adata.obsm[key]
    X = X.toarray() if sparse.issparse(X) else np.asarray(X)
    if not np.all(np.isfinite(X)):
        msg = f"`adata.obsm[{key!r}]` contains NaN or infinite values; recompute or drop those cells."
        raise ValueError(msg)
    return X.astype(np.float32, copy=False)


def check_obs(adata: AnnData, key: str) -> pd.Series:
    """Return ``adata.obs[key]``, raising a clear error when it is missing."""
    if key not in adata.obs:
        msg = f"`{key}` not found in `adata.obs` (available: {list(adata.obs.columns)})."
        raise KeyError(msg)
    return adata.obs[key]


def h5ad_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The one rule for ``None`` in ``.uns[key]['params']``: an unset option is written as the string ``'none'``.

    anndata 0.11 drops ``None`` values when writing h5ad, so they would vanish on a round trip; ``'none'``
    survives it. Nested dicts follow the same rule. Read parameters back with :func:`read_params`.
    """
    return {k: h5ad_params(v) if isinstance(v, Mapping) else "none" if v is None else v for k, v in params.items()}


def read_params(uns: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``uns[key]['params']`` with ``'none'`` read back as ``None`` (``{}`` when absent); see :func:`h5ad_params`."""
    params = uns.get(key, {})
    return _none_back(params.get("params", {}) if isinstance(params, Mapping) else {})


def _none_back(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _none_back(v) if isinstance(v, Mapping) else None if isinstance(v, str) and v == "none" else v
        for k, v in params.items()
    }
