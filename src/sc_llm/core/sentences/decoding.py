"""Cell sentence → expression: fit how expression falls with rank, and decode sentences into expression vectors.

A cell sentence keeps the order of a cell's genes but not their values. C2S decodes it with one line fitted
over all genes: ``expression = intercept + slope · log10(rank)`` with the 1-based rank (``log10(1 +
position)`` with the 0-based position), fitted on ranks up to 1,000. :class:`SentenceDecoder` offers that
fit (``kind='global'``) and two that do better where the data allow:

- ``'isotonic'``: a monotone non-increasing map of log rank (pool-adjacent-violators), no line assumed;
- ``'per_gene'``: one line per gene, shrunk towards the global line by ``shrinkage`` pseudo-observations
  (ridge towards the global coefficients), so rare genes fall back to the global fit.

Genes absent from a sentence decode to 0 (``absent='zero'``, C2S) or, for decoders fitted with
``absent='expected'``, to their expected expression given that the sentence of that length left them out
(:func:`~sc_llm.core.sentences.absent.fit_absent_values`); a gene in the sentence decodes to at least
``floor`` (the smallest positive value seen when fitting). Everything is arrays, and a fitted decoder
round-trips through :meth:`SentenceDecoder.to_dict` / :meth:`SentenceDecoder.from_dict` (arrays, strings and
numbers only: storable in ``.uns``, in ``.h5ad`` files and next to a saved model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from ..base.splits import split_cells
from .absent import ABSENT

KINDS = ("global", "isotonic", "per_gene")


@dataclass
class ParsedSentences:
    """Sentences as a ragged array: cell ``i`` has genes ``genes[indptr[i]:indptr[i+1]]`` at 1-based ``ranks``.

    Unknown words and repeated genes are dropped (the first occurrence of a gene wins) but keep their
    position, so the ranks of the words after them do not move.
    """

    indptr: np.ndarray
    genes: np.ndarray
    ranks: np.ndarray
    n_words: int
    n_unknown: int
    n_duplicates: int
    unknown_examples: list[str]
    word_counts: np.ndarray  # words per sentence, dropped ones included


def parse_sentences(sentences: Sequence[str], vocabulary: Sequence[str]) -> ParsedSentences:
    """Map the words of each sentence to indices of ``vocabulary`` with their 1-based ranks."""
    vocab = pd.Index(np.asarray(vocabulary, dtype=object))
    if not vocab.is_unique:
        msg = "The gene vocabulary has duplicated names; make them unique (e.g. `adata.var_names_make_unique()`)."
        raise ValueError(msg)
    split = [str(s).split() if s is not None else [] for s in sentences]
    lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    words = np.asarray(list(chain.from_iterable(split)), dtype=object)
    cells = np.repeat(np.arange(len(split), dtype=np.int64), lengths)
    starts = np.zeros(len(split) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ranks = np.arange(len(words), dtype=np.int64) - starts[cells] + 1
    idx = vocab.get_indexer(words) if len(words) else np.zeros(0, dtype=np.int64)
    known = idx >= 0
    unknown_examples = list(dict.fromkeys(words[~known].tolist()))[:10]
    keys = cells[known] * max(len(vocab), 1) + idx[known]
    _, first = np.unique(keys, return_index=True)
    keep_known = np.zeros(int(known.sum()), dtype=bool)
    keep_known[first] = True
    keep = np.zeros(len(words), dtype=bool)
    keep[np.flatnonzero(known)[keep_known]] = True
    counts = np.bincount(cells[keep], minlength=len(split))
    indptr = np.zeros(len(split) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return ParsedSentences(
        indptr=indptr,
        genes=idx[keep].astype(np.int64),
        ranks=ranks[keep],
        n_words=len(words),
        n_unknown=int((~known).sum()),
        n_duplicates=int(known.sum() - keep.sum()),
        unknown_examples=unknown_examples,
        word_counts=lengths,
    )


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (``nan`` when ``y`` is constant)."""
    y = np.asarray(y, dtype=np.float64)
    ss_tot = float(((y - y.mean()) ** 2).sum()) if y.size else 0.0
    if ss_tot == 0:
        return float("nan")
    return 1.0 - float(((y - np.asarray(pred, dtype=np.float64)) ** 2).sum()) / ss_tot


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    A = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(a), float(b)


@dataclass
class SentenceDecoder:
    """A fitted rank → expression map (see the module docstring for the kinds).

    Build one with :meth:`fit`; decode with :meth:`predict` (ranks and gene indices) or :meth:`decode`
    (sentences). ``metrics`` holds what the fitting code measured (e.g. held-out R²).
    """

    kind: str
    genes: np.ndarray
    intercept: float
    slope: float
    max_rank: int = 1000
    iso_x: np.ndarray | None = None
    iso_y: np.ndarray | None = None
    gene_intercept: np.ndarray | None = None
    gene_slope: np.ndarray | None = None
    shrinkage: float = 1.0
    floor: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    absent: str = "zero"
    absent_lengths: np.ndarray | None = None
    absent_values: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        ranks: np.ndarray,
        genes: np.ndarray,
        values: np.ndarray,
        vocabulary: Sequence[str],
        *,
        kind: str = "global",
        max_rank: int = 1000,
        shrinkage: float = 1.0,
    ) -> SentenceDecoder:
        """Fit on observed ``(rank, gene index, expression)`` triples; only ranks ``≤ max_rank`` are used."""
        from sklearn.isotonic import IsotonicRegression

        if kind not in KINDS:
            msg = f"`kind` must be one of {KINDS}, got {kind!r}."
            raise ValueError(msg)
        if max_rank < 2 or shrinkage < 0:
            msg = f"`max_rank` must be ≥ 2 and `shrinkage` ≥ 0; got {max_rank} and {shrinkage}."
            raise ValueError(msg)
        ranks, genes, values = (np.asarray(a).ravel() for a in (ranks, genes, values))
        use = ranks <= max_rank
        x, y, g = np.log10(ranks[use].astype(np.float64)), values[use].astype(np.float64), genes[use]
        if len(np.unique(x)) < 2:
            msg = "Need expressed genes at two or more distinct ranks to fit a decoder; give it more cells."
            raise ValueError(msg)
        a, b = _line(x, y)
        positive = y[y > 0]
        dec = cls(
            kind,
            np.asarray(vocabulary, dtype=object),
            a,
            b,
            int(max_rank),
            shrinkage=float(shrinkage),
            floor=float(positive.min()) if positive.size else 0.0,
        )
        if kind == "isotonic":
            iso = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(x, y)
            dec.iso_x, dec.iso_y = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
        elif kind == "per_gene":
            n_genes = len(dec.genes)
            x0 = float(x.mean())
            xc = x - x0  # centred, so the level and the slope are shrunk separately (both well determined)
            n = np.bincount(g, minlength=n_genes).astype(np.float64)
            sx, sy = np.bincount(g, xc, n_genes), np.bincount(g, y, n_genes)
            sxx, sxy = np.bincount(g, xc * xc, n_genes), np.bincount(g, xc * y, n_genes)
            # ridge towards the global line: minimise Σ(y - α - β xc)² + λ((α - a0)² + (β - b)²) per gene
            lam = max(shrinkage, 1e-8)
            a0 = a + b * x0
            m11, m12, m22 = n + lam, sx, sxx + lam
            r1, r2 = sy + lam * a0, sxy + lam * b
            det = m11 * m22 - m12 * m12
            level = (m22 * r1 - m12 * r2) / det
            dec.gene_slope = (m11 * r2 - m12 * r1) / det
            dec.gene_intercept = level - dec.gene_slope * x0
        return dec

    def predict(self, ranks: np.ndarray, genes: np.ndarray | None = None) -> np.ndarray:
        """Expression at 1-based ``ranks`` of ``genes`` (indices into ``genes``; needed for ``'per_gene'``)."""
        x = np.log10(np.maximum(np.asarray(ranks, dtype=np.float64), 1.0))
        if self.kind == "isotonic":
            out = np.interp(x, self.iso_x, self.iso_y)
        elif self.kind == "per_gene":
            if genes is None:
                msg = "A 'per_gene' decoder needs the gene of every rank."
                raise ValueError(msg)
            genes = np.asarray(genes, dtype=np.int64)
            out = self.gene_intercept[genes] + self.gene_slope[genes] * x
        else:
            out = self.intercept + self.slope * x
        return np.maximum(out, self.floor)

    def predict_columns(self, ranks: np.ndarray, columns: np.ndarray, var_names: Sequence[str]) -> np.ndarray:
        """Expression at 1-based ``ranks`` of the genes ``var_names[columns]``.

        Genes outside a ``'per_gene'`` decoder's vocabulary use the global line.
        """
        ranks = np.asarray(ranks, dtype=np.float64)
        if self.kind != "per_gene":
            return self.predict(ranks)
        names = np.asarray(var_names, dtype=object)[np.asarray(columns, dtype=np.int64)]
        to_fit = pd.Index(self.genes).get_indexer(names)
        line = np.maximum(self.intercept + self.slope * np.log10(np.maximum(ranks, 1.0)), self.floor)
        return np.where(to_fit >= 0, self.predict(ranks, np.maximum(to_fit, 0)), line)

    def decode(self, sentences: Sequence[str], var_names: Sequence[str] | None = None) -> tuple[Any, ParsedSentences]:
        """Decode ``sentences`` into a cells × ``var_names`` CSR matrix (default ``genes``) and the parse.

        Words outside ``var_names`` are counted in the parse (``n_unknown``) and dropped; genes outside a
        ``'per_gene'`` decoder's vocabulary use the global line. With ``absent='expected'``, genes the sentence
        leaves out get their fitted absent value at the sentence's word count (0 for genes the decoder was not
        fitted on).
        """
        from scipy import sparse

        var_names = self.genes if var_names is None else np.asarray(var_names, dtype=object)
        parsed = parse_sentences(sentences, var_names)
        values = self.predict_columns(parsed.ranks, parsed.genes, var_names)
        X = sparse.csr_matrix(
            (values.astype(np.float32), parsed.genes, parsed.indptr), shape=(len(parsed.indptr) - 1, len(var_names))
        )
        if self.absent == "expected":
            X = self._fill_absent(X, parsed.word_counts, var_names)
        X.eliminate_zeros()
        return X, parsed

    def _fill_absent(self, X: Any, lengths: np.ndarray, var_names: np.ndarray) -> Any:
        """``X`` with every gene the sentence leaves out set to its expected value at the sentence's length."""
        from scipy import sparse

        from .absent import absent_rows

        if self.absent_values is None or self.absent_lengths is None:
            msg = "This decoder has `absent='expected'` but no fitted absent values; refit it."
            raise ValueError(msg)
        at = pd.Index(self.genes).get_indexer(np.asarray(var_names, dtype=object))
        table = np.where(at >= 0, self.absent_values[:, np.maximum(at, 0)], 0.0)
        dense = absent_rows(table, self.absent_lengths, lengths)
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        dense[rows, X.indices] = X.data
        return sparse.csr_matrix(dense)

    def to_dict(self) -> dict[str, Any]:
        """Arrays, strings and numbers only (``.uns`` and ``.h5ad`` safe); :meth:`from_dict` restores it."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "genes": np.asarray(self.genes, dtype=str),
            "intercept": self.intercept,
            "slope": self.slope,
            "max_rank": self.max_rank,
            "shrinkage": self.shrinkage,
            "floor": self.floor,
            "metrics": dict(self.metrics),
        }
        if self.absent != "zero":
            out["absent"] = self.absent
        for name in ("iso_x", "iso_y", "gene_intercept", "gene_slope", "absent_lengths", "absent_values"):
            value = getattr(self, name)
            if value is not None:
                out[name] = np.asarray(value, dtype=np.float64)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentenceDecoder:
        """Rebuild a decoder from :meth:`to_dict`'s output (also as read back from an ``.h5ad`` file)."""
        missing = {"kind", "genes", "intercept", "slope"} - set(d)
        if missing:
            msg = f"Not a sentence decoder (missing {sorted(missing)}); fit one with `sl.tl.fit_sentence_decoder`."
            raise ValueError(msg)
        kind = str(d["kind"])
        if kind not in KINDS:
            msg = f"Unknown decoder kind {kind!r}; expected one of {KINDS}."
            raise ValueError(msg)
        need = {"isotonic": ("iso_x", "iso_y"), "per_gene": ("gene_intercept", "gene_slope")}.get(kind, ())
        if any(k not in d for k in need):
            msg = f"A {kind!r} decoder needs {need}; the stored decoder lacks them."
            raise ValueError(msg)
        absent = str(d.get("absent", "zero"))
        if absent not in ABSENT or (absent == "expected" and not {"absent_lengths", "absent_values"} <= set(d)):
            msg = f"Stored `absent` is {absent!r}; expected one of {ABSENT}, with its fitted values for 'expected'."
            raise ValueError(msg)
        names = ("iso_x", "iso_y", "gene_intercept", "gene_slope", "absent_lengths", "absent_values")
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in names if k in d}
        if "absent_lengths" in arrays:
            arrays["absent_lengths"] = arrays["absent_lengths"].astype(np.int64)
            shape = (len(arrays["absent_lengths"]), len(d["genes"]))
            if arrays.get("absent_values", np.zeros(0)).shape != shape or shape[0] < 2:
                msg = f"The stored absent values are not a {shape} table (lengths × genes); refit the decoder."
                raise ValueError(msg)
        return cls(
            kind=kind,
            genes=np.asarray(d["genes"], dtype=object),
            intercept=float(d["intercept"]),
            slope=float(d["slope"]),
            max_rank=int(d.get("max_rank", 1000)),
            shrinkage=float(d.get("shrinkage", 1.0)),
            floor=float(d.get("floor", 0.0)),
            metrics=dict(d.get("metrics", {})),
            absent=absent,
            **arrays,
        )


def fit_heldout(
    parsed: ParsedSentences,
    values: np.ndarray,
    vocabulary: Sequence[str],
    *,
    kind: str,
    test_size: float,
    seed: int,
    max_rank: int = 1000,
    shrinkage: float = 1.0,
) -> tuple[SentenceDecoder, np.ndarray]:
    """Fit on a seeded share of the cells and score on the rest.

    ``values[k]`` is the expression of entry ``k`` of ``parsed``. The decoder's ``metrics`` get
    ``r2_heldout`` (R² over the expressed genes of held-out cells at ranks ``≤ max_rank``, C2S's measure),
    ``r2_heldout_global`` (the global line on the same entries, for comparison), and cell counts.
    Returns the decoder and the held-out cell indices.
    """
    n_cells = len(parsed.indptr) - 1
    train, test = split_cells(n_cells, test_size, seed)
    cell_of = np.repeat(np.arange(n_cells), np.diff(parsed.indptr))
    is_test = np.isin(cell_of, test)
    tr, te = ~is_test, is_test & (parsed.ranks <= max_rank)
    dec = SentenceDecoder.fit(
        parsed.ranks[tr], parsed.genes[tr], values[tr], vocabulary, kind=kind, max_rank=max_rank, shrinkage=shrinkage
    )
    pred = dec.predict(parsed.ranks[te], parsed.genes[te])
    line = np.maximum(dec.intercept + dec.slope * np.log10(parsed.ranks[te]), dec.floor)
    dec.metrics = {
        "r2_heldout": r2_score(values[te], pred),
        "r2_heldout_global": r2_score(values[te], line),
        "n_cells_fit": len(train),
        "n_cells_heldout": len(test),
        "test_size": float(test_size),
        "seed": int(seed),
    }
    return dec, test
