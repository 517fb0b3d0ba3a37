"""``sl.tl.fit_sentence_decoder`` and ``sl.tl.decode_sentences``: from cell sentences back to expression."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_gene_names, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._expression import read_expression
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ..._utils._validation import check_count, check_seed
from ...core.sentences.absent import ABSENT
from ...core.sentences.decoding import KINDS, SentenceDecoder
from ._fit import fit_decoder_arrays, resolve_decoder

if TYPE_CHECKING:
    from anndata import AnnData


@doc_params()
def fit_sentence_decoder(
    adata: AnnData,
    *,
    sentence_key: str = "cell_sentence",
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    kind: str = "global",
    max_rank: int = 1000,
    shrinkage: float = 1.0,
    test_size: float = 0.2,
    seed: int = 0,
    absent: str = "zero",
    mod: str | None = None,
    key_added: str = "sentence_decoder",
    copy: bool = False,
) -> AnnData | None:
    """Fit how expression falls with a gene's rank in the cell sentence, to decode sentences into expression.

    ``kind='global'`` is C2S's decoder: one line, expression = intercept + slope · log10(rank) with the
    1-based rank (``log10(1 + position)``), fitted on ranks up to ``max_rank``. ``'isotonic'`` replaces the
    line with a monotone non-increasing map of log rank; ``'per_gene'`` fits one line per gene, shrunk
    towards the global line by ``shrinkage`` pseudo-observations. A seeded ``test_size`` share of the cells
    is held out and the fit is scored on it; the stored fit uses the other cells only.

    Genes a sentence leaves out decode to 0 (``absent='zero'``, C2S), which is right for a sentence listing
    every expressed gene but under-estimates every gene a truncated sentence cut off (a generated 50-gene
    sentence, say). With ``absent='expected'`` they decode to their mean over the fit cells whose top genes,
    as many as the sentence has, leave them out (:func:`~sc_llm.core.sentences.absent.fit_absent_values`);
    decoded matrices are then dense in content.

    Parameters
    ----------
    adata
        Cells with sentences in ``.obs[sentence_key]`` (from :func:`sc_llm.pp.cell_sentences`) and the
        expression they were built from.
    sentence_key
        ``.obs`` column holding the sentences.
    layer
        Layer holding the expression the sentences were built from.
    use_raw
        Read ``adata.raw``; defaults to ``True`` when ``.raw`` exists and no ``layer`` is given.
    gene_symbols
        ``.var`` column of the gene names the sentences use, when they are not ``var_names``.
    kind
        ``'global'``, ``'isotonic'`` or ``'per_gene'``.
    max_rank
        Only ranks up to this are fitted and scored (C2S: 1,000).
    shrinkage
        Pseudo-observations pulling each gene's line towards the global one (``'per_gene'`` only).
    test_size
        Share of cells held out to score the fit.
    seed
        Seed of the held-out split.
    absent
        ``'zero'`` or ``'expected'``: what genes left out of a sentence decode to (see above).
    {mod}
    key_added
        ``.uns`` key of the decoder.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets ``adata.uns[key_added]``, a dict of arrays and
    numbers (``.h5ad``-safe; :meth:`sc_llm.core.sentences.decoding.SentenceDecoder.from_dict` restores it):

    ``'kind'``, ``'genes'``, ``'intercept'``, ``'slope'``, ``'max_rank'``, ``'shrinkage'``, ``'floor'``
        The fit (plus ``'iso_x'``, ``'iso_y'`` or ``'gene_intercept'``, ``'gene_slope'`` for those kinds; and
        ``'absent'``, ``'absent_lengths'``, ``'absent_values'`` (lengths × genes, about a dozen lengths) with
        ``absent='expected'``).
    ``'metrics'`` : dict
        ``'r2_heldout'`` (R² over the expressed genes of held-out cells at ranks ≤ ``max_rank``, C2S's
        measure), ``'r2_heldout_global'`` (the global line on the same entries), ``'r2_heldout_all_genes'``
        (R² over every gene of up to 2,000 held-out cells, zeros included), ``'n_cells_fit'``,
        ``'n_cells_heldout'``, ``'test_size'``, ``'seed'``.
    ``'params'`` : dict
        ``sentence_key``, ``layer``, ``use_raw``, ``gene_symbols``, ``kind``, ``max_rank``, ``shrinkage``,
        ``test_size``, ``seed``, ``absent``, ``mod``.
    """
    if kind not in KINDS or absent not in ABSENT:
        msg = f"`kind` must be one of {KINDS} and `absent` one of {ABSENT}; got {kind!r} and {absent!r}."
        raise ValueError(msg)
    seed, max_rank = check_seed(seed), check_count(max_rank, "max_rank")
    out = adata.copy() if copy else adata
    target = get_modality(out, mod)
    sentences = read_sentences(target, sentence_key)
    X, var, source = read_expression(target, layer=layer, use_raw=use_raw)
    names = np.asarray(get_gene_names(var, gene_symbols), dtype=object)
    start = logg.info(f"fitting a {kind!r} sentence decoder on adata.{source}")
    dec = fit_decoder_arrays(
        X,
        names,
        sentences,
        kind=kind,
        max_rank=max_rank,
        shrinkage=shrinkage,
        test_size=test_size,
        seed=seed,
        absent=absent,
        where=f"adata.{source}",
    )
    target.uns[key_added] = dec.to_dict() | {
        "params": h5ad_params(
            {
                "sentence_key": sentence_key,
                "layer": layer,
                "use_raw": source == "raw.X",
                "gene_symbols": gene_symbols,
                "kind": kind,
                "max_rank": max_rank,
                "shrinkage": shrinkage,
                "test_size": test_size,
                "seed": seed,
                "absent": absent,
                "mod": mod,
            }
        )
    }
    logg.info(
        "    finished",
        time=start,
        deep=f"added '{key_added}' (adata.uns); held-out R² {dec.metrics['r2_heldout']:.3f} "
        f"(global line {dec.metrics['r2_heldout_global']:.3f})",
    )
    return out if copy else None


@doc_params()
def decode_sentences(
    adata: AnnData,
    *,
    sentence_key: str = "cell_sentence",
    decoder: str | Mapping | SentenceDecoder = "sentence_decoder",
    mod: str | None = None,
    var_names: Any | None = None,
) -> AnnData:
    """Decode cell sentences into expression: a new AnnData, one cell per sentence.

    Each word's expression comes from its rank through the decoder; genes absent from a sentence are 0, or
    their expected value for a decoder fitted with ``absent='expected'``.
    Words that are not genes of ``var_names`` are counted, reported in a warning and dropped (their
    positions still count, so later ranks do not move); a repeated gene keeps its first occurrence.

    Parameters
    ----------
    adata
        Cells with sentences in ``.obs[sentence_key]`` (real, or generated by a language model).
    sentence_key
        ``.obs`` column holding the sentences.
    decoder
        A key of ``adata.uns`` written by :func:`fit_sentence_decoder`, that dict itself (e.g. from another
        AnnData), or a :class:`~sc_llm.core.sentences.decoding.SentenceDecoder`.
    {mod}
    var_names
        Genes of the result, in order; default the genes the decoder was fitted on.

    Returns
    -------
    A new :class:`~anndata.AnnData` (cells × ``var_names``) with ``.X`` the decoded expression (CSR,
    float32), ``.obs`` a copy of ``adata.obs``, and ``.uns['decode_sentences']``: ``'params'``
    (``sentence_key``, decoder ``kind`` and ``absent``), ``'n_words'``, ``'n_unknown_words'``, ``'n_duplicate_words'``,
    ``'unknown_examples'``.
    """
    import anndata as ad

    adata = get_modality(adata, mod)
    dec = resolve_decoder(adata, decoder)
    sentences = read_sentences(adata, sentence_key)
    genes = dec.genes if var_names is None else np.asarray(var_names, dtype=object)
    if len(genes) == 0 or not pd.Index(genes).is_unique:
        msg = "`var_names` must be a non-empty list of unique gene names."
        raise ValueError(msg)
    start = logg.info(f"decoding {len(sentences)} sentences with a {dec.kind!r} decoder")
    X, parsed = dec.decode(sentences, genes)
    if parsed.n_unknown:
        logg.warning(
            f"{parsed.n_unknown} of {parsed.n_words} words are not genes of `var_names` and were dropped "
            f"(e.g. {parsed.unknown_examples[:5]})."
        )
    out = ad.AnnData(X, obs=adata.obs.copy(), var=pd.DataFrame(index=pd.Index(genes, dtype=str)))
    out.uns["decode_sentences"] = {
        "params": {"sentence_key": sentence_key, "kind": dec.kind, "absent": dec.absent},
        "n_words": parsed.n_words,
        "n_unknown_words": parsed.n_unknown,
        "n_duplicate_words": parsed.n_duplicates,
        "unknown_examples": list(parsed.unknown_examples),
    }
    logg.info("    finished", time=start)
    return out
