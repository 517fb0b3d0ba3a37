"""``sl.tl.gene_text_embed``: GenePT-w cell embeddings, the expression-weighted mean of gene-text embeddings."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import sparse

from ..._utils._anndata import get_matrix, get_modality, h5ad_params, iter_row_chunks, uns_key
from ..._utils._docs import doc_params
from ..._utils._expression import COUNTS_MAX, check_expression
from ..._utils._logging import logg
from ..._utils._validation import check_count, check_writes
from ._space import read_gene_embeddings, unit_rows

if TYPE_CHECKING:
    from anndata import AnnData

WEIGHTINGS = ("expression", "rank")


def genept_weights(
    chunk: sparse.csr_matrix, has_text: np.ndarray, *, weighting: str = "expression", top_k: int | None = None
) -> sparse.csr_matrix:
    """Per-cell gene weights of a CSR block: expressed genes with text, optionally the top ``top_k`` of them.

    ``'expression'``: the values themselves; ``'rank'``: ``1 / log2(1 + r)`` for the gene of rank ``r`` (1 =
    highest) among the cell's expressed genes with text. Ties rank by column order. Values ≤ 0 weigh nothing.
    """
    n = chunk.shape[0]
    rows = np.repeat(np.arange(n), np.diff(chunk.indptr))
    cols, data = chunk.indices, np.asarray(chunk.data, dtype=np.float32)
    keep = (data > 0) & has_text[cols]
    rows, cols, data = rows[keep], cols[keep], data[keep]
    if weighting == "rank" or top_k is not None:
        order = np.lexsort((cols, -data, rows))
        rows, cols, data = rows[order], cols[order], data[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n))[rows]
        if top_k is not None:
            top = rank < top_k
            rows, cols, data, rank = rows[top], cols[top], data[top], rank[top]
        if weighting == "rank":
            data = (1.0 / np.log2(rank + 2.0)).astype(np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=chunk.shape, dtype=np.float32)


def genept_w(
    chunks: Iterable[tuple[int, int, sparse.csr_matrix]],
    vectors: np.ndarray,
    has_text: np.ndarray,
    n_obs: int,
    *,
    weighting: str = "expression",
    top_k: int | None = None,
    check=None,
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel: L2-normalised weighted means ``W · G`` per cell, and the genes that weighed in per cell.

    ``chunks`` are ``(start, stop, csr)`` row blocks (:func:`~sc_llm._utils._anndata.iter_row_chunks`);
    ``check(chunk, start)`` is called on each block first. Cells without any weighted gene get a zero row.
    """
    out = np.zeros((n_obs, vectors.shape[1]), dtype=np.float32)
    n_genes = np.zeros(n_obs, dtype=np.int64)
    for start, stop, chunk in chunks:
        if check is not None:
            check(chunk, start)
        W = genept_weights(chunk, has_text, weighting=weighting, top_k=top_k)
        out[start:stop] = np.asarray(W @ vectors, dtype=np.float32)
        n_genes[start:stop] = np.diff(W.indptr)
    return unit_rows(out), n_genes


def _check_options(weighting: str, top_k: int | None, chunk_size: int) -> int | None:
    if weighting not in WEIGHTINGS:
        msg = f"`weighting` must be one of {WEIGHTINGS}, got {weighting!r}."
        raise ValueError(msg)
    check_count(chunk_size, "chunk_size")
    return check_count(top_k, "top_k", allow_none=True)


@doc_params()
def gene_text_embed(
    adata: AnnData,
    *,
    key: str = "X_gene_text",
    layer: str | None = None,
    use_raw: bool | None = None,
    weighting: Literal["expression", "rank"] = "expression",
    top_k: int | None = None,
    chunk_size: int = 10_000,
    key_added: str = "X_genept_w",
    mod: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """GenePT-w cell embeddings: each cell is the expression-weighted mean of its genes' text embeddings.

    As in GenePT (Chen & Zou 2024), a cell's vector is ``Σ_g w_g e_g`` over its expressed genes that have a
    text, with ``e_g`` the gene embeddings of :func:`~sc_llm.tl.gene_embeddings` and ``w_g`` its
    log-normalised expression, then L2-normalised. The matrix is read in CSR chunks of ``chunk_size`` cells
    (dense, sparse or ``backed='r'``), never densified whole, and checked chunk by chunk (no NaN, no negative
    values; raw counts are warned about).

    This is a function of its own rather than an ``encoder=`` of :func:`~sc_llm.tl.embed`: it runs no
    model over the cells, only one sparse product per chunk with gene vectors computed once, so none of
    ``embed``'s model, sentence, batching or cache options apply, and its own (which gene embeddings, which
    matrix, weighting, top-k) are not ``embed``'s; scanpy keeps such methods apart in the same way
    (``sc.tl.pca``, ``sc.tl.umap``). The result is an ``.obsm`` representation like ``embed``'s, for
    :func:`~sc_llm.tl.knn_annotate`, :func:`~sc_llm.tl.scmpt_annotate` or scanpy's ``use_rep=``.

    Note that GenePT-w is a linear projection ``X · G`` of the same expression: what it adds over PCA is a
    prior on which genes belong together (``benchmarks/README.md`` measures when that pays).

    Parameters
    ----------
    adata
        Annotated data matrix (in memory or backed), or a MuData (see ``mod``).
    key
        The gene embeddings: ``.varm[key]`` of the genes read (``.raw.varm`` when reading ``.raw``), with
        ``.var[f'{key}_has_text']``, as :func:`~sc_llm.tl.gene_embeddings` writes them.
    layer
        Read the weights from this layer (genes of ``.var``).
    use_raw
        Read the weights from ``.raw`` (its genes). Default: ``.raw`` when present and no ``layer`` is given.
    weighting
        ``'expression'``: the log-normalised values (GenePT-w); ``'rank'``: ``1 / log2(1 + rank)`` of each gene
        among the cell's expressed genes, which ignores the scale of the values.
    top_k
        Only each cell's ``top_k`` most expressed genes with text weigh in (``None``: all).
    chunk_size
        Cells per CSR chunk.
    key_added
        ``.obsm`` key of the cell embeddings; parameters go to ``.uns`` under the key without ``'X_'``.
    {mod}
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obsm[key_added]`` : :class:`numpy.ndarray` (``n_obs`` × dim, float32)
        Unit-norm cell embeddings; a zero row for a cell with no expressed gene with text (warned about).
    ``adata.obs[f'{key_added}_n_genes']`` : :class:`pandas.Series` of int
        How many genes weighed in per cell (``0`` flags a cell without any).
    ``adata.uns[key_added without 'X_']['params']`` : :class:`dict`
        ``key``, ``matrix`` (what was read: ``'raw.X'``, ``"layers['name']"`` or ``'X'``), ``layer``,
        ``use_raw``, ``weighting``, ``top_k``, ``n_genes`` (genes of the matrix), ``n_genes_with_text``,
        ``n_empty`` (cells without any gene with text), and ``gene_embeddings``: the identity of the gene
        vectors used (``model``, ``revision``, ``fingerprint``, ``template``, ``identity_sha256``,
        ``texts_sha256`` from their parameters, and ``checksum``, the SHA-256 of the matrix itself).
    """
    from ...core.base.identity import checksum

    top_k = _check_options(weighting, top_k, chunk_size)
    target = get_modality(adata, mod)
    X, var, source = get_matrix(target, layer=layer, use_raw=use_raw)
    genes = read_gene_embeddings(target, key, raw=source == "raw.X")
    check_writes(target, {"obsm": [key_added], "obs": [f"{key_added}_n_genes"], "uns": [uns_key(key_added)]}, {})
    start = logg.info(
        f"GenePT-w: {target.n_obs} cells as weighted means of {int(genes.has_text.sum())} gene embeddings "
        f"({genes.where}), weights from adata.{source}"
    )
    counts = ["warn" if weighting == "expression" else "ignore"]

    def check(chunk, offset):
        check_expression(chunk, f"adata.{source}", var_names=var.index, counts=counts[0], row_offset=offset)
        if chunk.nnz and chunk.data.max() >= COUNTS_MAX and np.all(chunk.data == np.round(chunk.data)):
            counts[0] = "ignore"  # warned about raw counts once, not once per chunk

    options = {"weighting": weighting, "top_k": top_k, "check": check}
    E, n_genes = genept_w(iter_row_chunks(X, chunk_size), genes.vectors, genes.has_text, target.n_obs, **options)
    n_empty = int((n_genes == 0).sum())
    _report_empty(n_empty, target.n_obs, key_added, source)
    identity = {k: genes.params.get(k) for k in ("model", "revision", "fingerprint", "template")}
    identity.update({k: genes.params.get(k) for k in ("identity_sha256", "texts_sha256")})
    identity["checksum"] = checksum(genes.vectors)
    params = {"key": key, "matrix": source, "layer": layer, "use_raw": source == "raw.X", "weighting": weighting}
    params.update(top_k=top_k, n_genes=int(X.shape[1]), n_genes_with_text=int(genes.has_text.sum()), n_empty=n_empty)
    params["gene_embeddings"] = identity

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obsm[key_added] = E
    target.obs[f"{key_added}_n_genes"] = n_genes
    target.uns[uns_key(key_added)] = {"params": h5ad_params(params)}
    deep = f"added\n    '{key_added}', GenePT-w cell embeddings (adata.obsm)\n    '{key_added}_n_genes' (adata.obs)"
    logg.info("    finished", time=start, deep=deep)
    return adata if copy else None


def _report_empty(n_empty: int, n_obs: int, key_added: str, source: str) -> None:
    if n_empty == n_obs:
        msg = (
            f"No cell of adata.{source} expresses a gene with text: every embedding would be zero. Check that the "
            "gene embeddings belong to these genes (coverage in their `.uns` parameters). Nothing was written."
        )
        raise ValueError(msg)
    if n_empty:
        warnings.warn(
            f"{n_empty} of {n_obs} cells express no gene with text; their embedding is a zero row (flagged by "
            f"`.obs['{key_added}_n_genes'] == 0`). Drop them before cosine-based tools, e.g. "
            f"`adata = adata[adata.obs['{key_added}_n_genes'] > 0].copy()`.",
            UserWarning,
            stacklevel=3,
        )
