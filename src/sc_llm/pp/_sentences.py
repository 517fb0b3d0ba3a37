"""``sl.pp.cell_sentences``: expression → gene names ranked by expression."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils._anndata import get_gene_names, get_matrix, get_modality, h5ad_params, iter_row_chunks
from .._utils._docs import doc_params
from .._utils._expression import check_expression
from .._utils._logging import logg
from .._utils._validation import check_count, check_writes
from ..core.sentences.ranking import SentenceJoiner, rank_genes

if TYPE_CHECKING:
    from anndata import AnnData

_CHUNK = 16_384


@doc_params()
def cell_sentences(
    adata: AnnData,
    *,
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    n_genes: int | None = None,
    mod: str | None = None,
    chunk_size: int = _CHUNK,
    key_added: str = "cell_sentence",
    copy: bool = False,
) -> AnnData | None:
    """Write each cell as a *cell sentence*: its expressed genes' names in descending order of expression.

    This is the Cell2Sentence / GenePT-s representation: genes with zero expression are omitted, and the
    rest are ordered from the most to the least expressed. Ties keep the gene order of ``.var``
    (the gene listed first comes first), so the result is deterministic. Values are compared at float32
    precision.

    The matrix is processed in chunks of cells and never densified, so CSR, CSC, dense and
    ``backed="r"`` AnnData objects all work.

    Parameters
    ----------
    adata
        Annotated data matrix (cells × genes) of counts or log-normalised expression, or a MuData
        (see ``mod``).
    layer
        Layer to read instead of ``.X``.
    use_raw
        Read ``adata.raw``. Defaults to ``True`` when ``.raw`` exists and no ``layer`` is given.
    gene_symbols
        Column of ``.var`` (or ``.raw.var``) holding gene symbols, to use instead of ``var_names``
        (needed when ``var_names`` are Ensembl IDs).
    n_genes
        Keep only the top ``n_genes`` genes of each cell. All expressed genes when ``None``.
    mod
        Modality to use when ``adata`` is a MuData (default ``'rna'``); results go into that modality.
    chunk_size
        Number of cells ranked at a time; bounds the working memory.
    key_added
        Key under which the sentences and parameters are stored.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obs[key_added]`` : :class:`pandas.Series` of ``str``
        Space-separated gene names, most expressed first; ``''`` for cells with no expressed gene.
    ``adata.uns[key_added]['params']`` : :class:`dict`
        ``layer``, ``use_raw``, ``gene_symbols``, ``n_genes``, ``tie_break``.

    Examples
    --------
    >>> import sc_llm as sl
    >>> adata = sl.datasets.pbmc68k_reduced()
    >>> sl.pp.cell_sentences(adata, n_genes=100)
    >>> adata.obs["cell_sentence"].iloc[0].split()[:3]  # doctest: +SKIP
    ['MALAT1', 'TMSB4X', 'B2M']
    """
    n_genes = check_count(n_genes, "n_genes", allow_none=True)
    chunk_size = check_count(chunk_size, "chunk_size")
    target = get_modality(adata, mod)
    X, var, source = get_matrix(target, layer=layer, use_raw=use_raw)
    names = np.asarray(get_gene_names(var, gene_symbols), dtype=object)
    check_writes(target, {"obs": [key_added], "uns": [key_added]}, {})
    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    X, var, source = get_matrix(target, layer=layer, use_raw=use_raw)

    start_time = logg.info(f"computing cell sentences from adata.{source}")
    sentences: list[str] = []
    join = SentenceJoiner(names)
    for start, stop, chunk in iter_row_chunks(X, chunk_size):
        check_expression(
            chunk, f"adata.{source}", obs_names=target.obs_names[start:stop], var_names=names, counts="ignore"
        )
        indptr, genes = rank_genes(chunk, n_genes)
        sentences.extend(join(indptr, genes))

    n_empty = sum(1 for s in sentences if not s)
    if n_empty:
        warnings.warn(
            f"{n_empty} cell(s) have no expressed gene and get an empty sentence; "
            "consider filtering them with `sc.pp.filter_cells(adata, min_genes=1)`.",
            UserWarning,
            stacklevel=2,
        )
    target.obs[key_added] = pd.Series(sentences, index=target.obs_names, dtype=object)
    target.uns[key_added] = {
        "params": h5ad_params(
            {
                "layer": layer,
                "use_raw": source == "raw.X",
                "gene_symbols": gene_symbols,
                "n_genes": n_genes,
                "tie_break": "var_order",
            }
        )
    }
    logg.info("    finished", time=start_time, deep=f"added\n    '{key_added}', cell sentences (adata.obs)")
    return adata if copy else None
