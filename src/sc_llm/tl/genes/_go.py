"""Which genes of a dataset a GO term annotates, from the shipped gene table (for plots and gene-set checks)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

_GO_ID = re.compile(r"^GO:\d{7}$")


def resolve_go_term(term: str) -> tuple[str, str]:
    """``(GO id, term name)`` of a GO id (``'GO:0050853'``) or an exact term name (case-insensitive)."""
    from ...datasets._gene_descriptions import GO_FILE, _read_shipped

    terms = _read_shipped(GO_FILE)
    text = str(term).strip()
    if _GO_ID.match(text.upper()):
        hit = terms[terms["go_id"] == text.upper()]
    else:
        hit = terms[terms["name"].str.casefold() == text.casefold()]
    if hit.empty:
        close = terms.loc[terms["name"].str.contains(re.escape(text), case=False), "name"].head(5).tolist()
        hint = f" Terms containing it: {close}." if close else ""
        msg = f"{term!r} is neither a GO id (GO:0000000) nor the exact name of a GO term of the shipped GO.db.{hint}"
        raise KeyError(msg)
    return str(hit["go_id"].iloc[0]), str(hit["name"].iloc[0])


def go_gene_mask(genes: Sequence[str], term: str, *, organism: str = "human") -> tuple[np.ndarray, str, str]:
    """``(mask, GO id, name)``: which of ``genes`` are directly annotated with the GO term (any evidence code).

    Genes are matched to the shipped table of ``organism`` by :func:`~sc_llm.datasets._gene_descriptions.match_genes`.
    """
    from ...datasets._gene_descriptions import gene_descriptions, match_genes

    go_id, name = resolve_go_term(term)
    table = gene_descriptions(organism, go=False)
    if (table["go_ids"] == "").all():
        msg = f"The shipped {organism} gene table has no GO annotations; colour by a `.var` column or `markers=`."
        raise ValueError(msg)
    match = match_genes(list(genes), table)
    annotated = table["go_ids"].str.contains(go_id, regex=False).to_numpy()  # ids have one length: no partial hits
    mask = np.zeros(len(match.positions), dtype=bool)
    hit = match.positions >= 0
    mask[hit] = annotated[match.positions[hit]]
    return mask, go_id, name


def is_go_term(value: str, var: pd.DataFrame) -> bool:
    """Whether ``color=value`` names a GO term rather than a ``.var`` column (a column of that name wins)."""
    return value not in var.columns
