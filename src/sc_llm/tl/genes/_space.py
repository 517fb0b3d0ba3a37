"""Where gene embeddings live: ``.varm`` of ``.var``'s genes or ``.raw.varm`` of ``.raw``'s, by the matrix rule.

Gene embeddings belong to the genes of the matrix that weights them: ``.raw`` when the AnnData has one (the
one rule of :func:`~sc_llm._utils._anndata.choose_matrix`: ``use_raw=None`` means ``.raw`` when present),
else ``.var``. Every gene-level tool and plot reads them through :func:`read_gene_embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..._utils._anndata import choose_matrix, read_params, uns_key


def mask_key(key: str) -> str:
    """The ``.var`` column that says which genes have a text: ``f'{key}_has_text'``."""
    return f"{key}_has_text"


def gene_table(adata: Any, use_raw: bool | None) -> tuple[Any, str]:
    """``(adata.raw or adata, 'adata.raw' or 'adata')``: whose genes, ``.var`` and ``.varm`` to use.

    ``use_raw=None``: ``.raw`` when present; ``True`` without ``.raw`` is refused (the matrix rule).
    """
    choice = choose_matrix(None, use_raw, has_raw=adata.raw is not None, layers=adata.layers)
    return (adata.raw, "adata.raw") if choice == "raw" else (adata, "adata")


@dataclass(frozen=True)
class GeneEmbeddings:
    """Gene embeddings read back and checked (:func:`read_gene_embeddings`).

    Attributes
    ----------
    vectors
        ``n_genes × dim`` float32; zero rows for genes without text.
    has_text
        Which genes have a text (and so a vector).
    genes
        The gene names (``var_names``) the rows belong to.
    where
        ``'adata.varm[key]'`` or ``'adata.raw.varm[key]'``, for messages.
    params
        ``.uns[key without 'X_']['params']`` written with them (``{}`` if absent).
    """

    vectors: np.ndarray
    has_text: np.ndarray
    genes: pd.Index
    where: str
    params: dict


def _missing(adata: Any, key: str, table: Any, name: str) -> str:
    other, other_name = (adata, "adata") if name == "adata.raw" else (adata.raw, "adata.raw")
    if other is not None and key in other.varm:
        return (
            f"`{name}.varm[{key!r}]` not found, but `{other_name}.varm[{key!r}]` holds gene embeddings of its "
            f"{other.n_vars} genes, not of the {table.n_vars} genes of `{name}` read here. Embed these genes with "
            f"`sl.tl.gene_embeddings(adata, use_raw={name == 'adata.raw'})`, or read the other genes with "
            f"`use_raw={name != 'adata.raw'}`."
        )
    return (
        f"`{name}.varm[{key!r}]` not found (available: {list(table.varm)}). Run "
        f"`sl.tl.gene_embeddings(adata, key_added={key!r})` first."
    )


def read_gene_embeddings(adata: Any, key: str, *, raw: bool) -> GeneEmbeddings:
    """Gene embeddings of ``adata.raw`` (``raw=True``) or of ``adata``, checked, with their parameters.

    Where ``.raw`` and ``.var`` hold the same genes in the same order, the embeddings of either serve both.
    """
    table, name = (adata.raw, "adata.raw") if raw else (adata, "adata")
    other = adata if raw else adata.raw
    if key not in table.varm and other is not None and key in other.varm and other.var_names.equals(table.var_names):
        table, name = other, "adata" if raw else "adata.raw"  # the same genes in the same order: the same vectors
    if key not in table.varm:
        raise KeyError(_missing(adata, key, table, name))
    where = f"{name}.varm[{key!r}]"
    vectors = np.asarray(table.varm[key])
    if vectors.ndim != 2 or vectors.shape[1] == 0 or vectors.shape[0] != table.n_vars:
        msg = (
            f"{where} has shape {vectors.shape}; gene embeddings are one row per gene of `{name}` "
            f"({table.n_vars}) with at least one column. Recompute them with `sl.tl.gene_embeddings`."
        )
        raise ValueError(msg)
    if not np.issubdtype(vectors.dtype, np.floating) or not np.isfinite(vectors).all():
        msg = f"{where} must hold finite floats; recompute it with `sl.tl.gene_embeddings`."
        raise ValueError(msg)
    column = mask_key(key)
    if column not in table.var or table.var[column].dtype != bool:
        msg = (
            f"`{name}.var[{column!r}]` (which genes have a text) is missing or not boolean, so {where} was not "
            "written by `sl.tl.gene_embeddings`: rerun it."
        )
        raise ValueError(msg)
    has_text = table.var[column].to_numpy(dtype=bool)
    nonzero = np.any(vectors != 0, axis=1)
    if (has_text != nonzero).any():
        msg = (
            f"{where} and `{name}.var[{column!r}]` disagree for {int((has_text != nonzero).sum())} genes (a vector "
            "must be non-zero exactly where a gene has text): they were changed apart. Rerun `sl.tl.gene_embeddings`."
        )
        raise ValueError(msg)
    params = read_params(adata.uns, uns_key(key))
    return GeneEmbeddings(vectors.astype(np.float32, copy=False), has_text, table.var_names, where, params)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
