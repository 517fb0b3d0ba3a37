"""``sl.tl.nearest_genes``: the genes whose text embeddings are closest to given genes (cosine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_modality
from ..._utils._docs import doc_params
from ..._utils._validation import as_gene_list, check_count
from ._space import gene_table, read_gene_embeddings, unit_rows

if TYPE_CHECKING:
    from anndata import AnnData


def gene_positions(names: pd.Index, genes: list[str], has_text: np.ndarray, where: str) -> np.ndarray:
    """Row of each requested gene; unknown genes and genes without text are refused, naming them."""
    if not genes:
        msg = "`genes` is empty; name at least one gene, e.g. `['CD79A']`."
        raise ValueError(msg)
    first = {name: i for i, name in reversed(list(enumerate(names.astype(str))))}  # first occurrence wins
    pos = np.array([first.get(g, -1) for g in genes], dtype=np.int64)
    unknown = [g for g, p in zip(genes, pos, strict=True) if p < 0]
    if unknown:
        close = [n for n in names.astype(str) if n.casefold() in {u.casefold() for u in unknown}]
        hint = f" (same names in another case: {close[:5]})" if close else ""
        msg = f"{len(unknown)} gene(s) are not genes of {where}: {unknown[:10]}{hint}."
        raise KeyError(msg)
    textless = [g for g, p in zip(genes, pos, strict=True) if not has_text[p]]
    if textless:
        msg = (
            f"{len(textless)} gene(s) have no text, so no embedding to compare: {textless[:10]} "
            "(see the `_has_text` column of `.var`)."
        )
        raise ValueError(msg)
    return pos


def nearest(vectors: np.ndarray, has_text: np.ndarray, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel: for each query row, the ``n`` other rows with text of highest cosine, and those cosines."""
    unit = unit_rows(vectors)
    sims = unit[query] @ unit.T
    sims[:, ~has_text] = -np.inf
    sims[np.arange(len(query)), query] = -np.inf  # a gene is not its own neighbour
    n = min(n, int(has_text.sum()) - 1)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    return top, np.take_along_axis(sims, top, axis=1)


@doc_params()
def nearest_genes(
    adata: AnnData,
    genes: Any,
    *,
    n: int = 10,
    key: str = "X_gene_text",
    use_raw: bool | None = None,
    mod: str | None = None,
) -> pd.DataFrame:
    """The ``n`` genes nearest to each given gene in the gene-text embedding (cosine similarity).

    Only genes with a text are candidates; a gene is never its own neighbour. Reads what
    :func:`~sc_llm.tl.gene_embeddings` wrote and changes nothing in ``adata``.

    Parameters
    ----------
    adata
        Annotated data matrix with gene embeddings, or a MuData (see ``mod``).
    genes
        One gene name or a list of them (``var_names`` of the genes holding ``key``).
    n
        Neighbours per gene (fewer when fewer other genes have a text).
    key
        ``.varm`` key of the gene embeddings.
    use_raw
        Use the gene embeddings of ``.raw`` (``.raw.varm``) or of ``.var``. Default: ``.raw`` when present, as
        :func:`~sc_llm.tl.gene_embeddings` writes them.
    {mod}

    Returns
    -------
    A :class:`pandas.DataFrame` with one row per (gene, neighbour): ``gene``, ``rank`` (1 = nearest),
    ``neighbor`` and ``cosine``, the genes in the order given.
    """
    n = check_count(n, "n")
    queries = as_gene_list(genes)
    target = get_modality(adata, mod)
    _, where = gene_table(target, use_raw)
    emb = read_gene_embeddings(target, key, raw=where == "adata.raw")
    pos = gene_positions(emb.genes, queries, emb.has_text, where)
    top, cos = nearest(emb.vectors, emb.has_text, pos, n)
    names = np.asarray(emb.genes.astype(str))
    k = top.shape[1]
    return pd.DataFrame(
        {
            "gene": np.repeat(queries, k),
            "rank": np.tile(np.arange(1, k + 1), len(queries)),
            "neighbor": names[top.ravel()],
            "cosine": cos.ravel().astype(np.float64),
        }
    )
