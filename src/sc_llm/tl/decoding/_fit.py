"""Decoders as the other tools use them: fitted on arrays (``perturb``, ``CellLM.fit``) or read from ``.uns``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.sentences.absent import check_absent, expected_absent
from ...core.sentences.decoding import SentenceDecoder, fit_heldout, parse_sentences, r2_score

if TYPE_CHECKING:
    from anndata import AnnData

_MAX_R2_CELLS = 2000  # held-out cells scored over all genes (a dense block of at most this many rows)


def resolve_decoder(adata: AnnData | None, decoder: Any) -> SentenceDecoder:
    """A :class:`SentenceDecoder` from itself, a dict (``to_dict`` output) or a key of ``adata.uns``."""
    if isinstance(decoder, SentenceDecoder):
        return decoder
    if isinstance(decoder, str):
        if adata is None or decoder not in adata.uns:
            msg = f"No decoder in `adata.uns[{decoder!r}]`. Fit one with `sl.tl.fit_sentence_decoder(adata)`."
            raise KeyError(msg)
        decoder = adata.uns[decoder]
    if isinstance(decoder, Mapping):
        return SentenceDecoder.from_dict(dict(decoder))
    msg = f"`decoder` must be a key of `adata.uns`, a dict or a SentenceDecoder; got {type(decoder).__name__}."
    raise TypeError(msg)


def fit_decoder_arrays(
    X: Any,
    names: np.ndarray,
    sentences: list[str],
    *,
    kind: str,
    max_rank: int,
    shrinkage: float,
    test_size: float,
    seed: int,
    absent: str = "zero",
    absent_rows: np.ndarray | None = None,
    where: str = "the expression matrix",
) -> SentenceDecoder:
    """Fit and score a decoder on a cells × genes matrix and the cells' sentences (no AnnData needed).

    With ``absent='expected'``, the absent values are averaged over the fitting cells among ``absent_rows``
    (default: all fitting cells), e.g. only cells of the kind that will be decoded.
    """
    from scipy import sparse

    check_absent(absent)
    parsed = parse_sentences(sentences, names)
    if parsed.n_unknown:
        msg = (
            f"{parsed.n_unknown} sentence word(s) are not genes of {where} (e.g. {parsed.unknown_examples[:3]}). "
            "Fit on the matrix and gene names the sentences were built from (`layer`, `use_raw`, `gene_symbols`)."
        )
        raise ValueError(msg)
    rows = np.repeat(np.arange(len(sentences)), np.diff(parsed.indptr))
    X = sparse.csr_matrix(X) if sparse.issparse(X) else np.asarray(X)
    values = np.asarray(X[rows, parsed.genes], dtype=np.float64).ravel()
    if values.size and np.mean(values <= 0) > 0.001:
        msg = (
            f"{int((values <= 0).sum())} sentence words name genes with no expression in {where}: the sentences "
            "were built from another matrix. Pass the `layer`/`use_raw` they came from."
        )
        raise ValueError(msg)
    dec, test = fit_heldout(
        parsed, values, names, kind=kind, test_size=test_size, seed=seed, max_rank=max_rank, shrinkage=shrinkage
    )
    if absent == "expected":
        train = np.setdiff1d(np.arange(len(sentences)), test)
        if absent_rows is not None:
            train = np.intersect1d(train, np.asarray(absent_rows, dtype=np.int64))
        if len(train) == 0:
            msg = "No fitting cells are left to average the absent values over; give more cells."
            raise ValueError(msg)
        dec.absent = absent
        dec.absent_lengths, dec.absent_values = expected_absent(
            parsed.indptr, parsed.ranks, parsed.genes, values, X, train
        )
    test = test[:_MAX_R2_CELLS]
    decoded, _ = dec.decode([sentences[i] for i in test], names)
    real = X[test].toarray() if sparse.issparse(X) else X[test]
    dec.metrics["r2_heldout_all_genes"] = r2_score(np.asarray(real).ravel(), decoded.toarray().ravel())
    return dec
