"""What the jobs read from their input files: cell sentences (a stored column, or ranked from the expression)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils._cell_files import CellFile
from .._utils._expression import check_expression
from .._utils._sentences import as_sentences


class FileSentences:
    """Cell sentences of a file's rows: an ``.obs`` column, or ranked on the fly from the expression matrix."""

    def __init__(
        self,
        cells: CellFile,
        *,
        sentence_key: str = "cell_sentence",
        gene_symbols: str | None = None,
        n_genes: int | None = None,
    ):
        self.cells = cells
        self.sentence_key = sentence_key
        self.from_obs = cells.has_obs(sentence_key)
        self.gene_symbols = gene_symbols
        self.n_genes = n_genes
        self._cache: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}

    def params(self) -> dict[str, Any]:
        """Where the sentences come from (recorded with the results)."""
        if self.from_obs:
            return {"sentences": f"obs[{self.sentence_key!r}]"}
        return {
            "sentences": f"ranked from {self.cells.source}",
            "gene_symbols": self.gene_symbols,
            "n_genes": self.n_genes,
        }

    def read(self, start: int, stop: int) -> list[str]:
        """Cell sentences of rows ``start:stop``."""
        if self.from_obs:
            if self._cache is None:
                where = f"`.obs[{self.sentence_key!r}]` of {str(self.cells.path)!r}"
                self._cache = as_sentences(self.cells.obs_column(self.sentence_key), where)
            return self._cache[start:stop]
        from ..core.sentences.ranking import SentenceJoiner, rank_genes

        if self._cache is None:
            names = np.asarray(self.cells.gene_names(self.gene_symbols), dtype=object)
            self._cache = (names, SentenceJoiner(names))
        names, join = self._cache
        block = self.cells.rows(start, stop)
        where = f"{self.cells.source} of {str(self.cells.path)!r}"
        check_expression(block, where, var_names=names, counts="ignore", row_offset=start)
        indptr, genes = rank_genes(block, self.n_genes)
        return list(join(indptr, genes))
