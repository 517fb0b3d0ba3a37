"""``sl.pp.ablate_sentences``: the cell-sentence ablations of the first paper (hashes, shuffles, shortening)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._utils._anndata import get_modality, h5ad_params
from .._utils._docs import doc_params
from .._utils._logging import logg
from .._utils._sentences import read_sentences, split_sentence
from .._utils._validation import check_writes
from ..core.explain.ablation import HASH_LENGTH, MODES, NEEDS_TOKENIZER, ablate

if TYPE_CHECKING:
    from anndata import AnnData

    from ..core.text.gene_tokens import GeneTokenizer

AblationMode = Literal[
    "hash",
    "random_hash",
    "shuffle_all",
    "shuffle_in_context",
    "shuffle_top_in_context",
    "hash_shuffle_in_context",
    "shorten",
]
_FRACTION_MODES = ("shuffle_top_in_context", "shorten")


def default_ablation_key(sentence_key: str, mode: str, fraction: float | None) -> str:
    """``'cell_sentence'`` + ``'shorten'`` + 0.2 → ``'cell_sentence_shorten_20'``."""
    if mode in _FRACTION_MODES:
        return f"{sentence_key}_{mode}_{round(100 * (fraction or 0.1)):g}"
    return f"{sentence_key}_{mode}"


def context_tokenizer(
    model: Any, *, max_length: int | None = None, prefix: str | None = None, revision: str | None = None
) -> tuple[GeneTokenizer, str]:
    """``(gene tokenizer, model id)`` deciding which genes are in context; loads the tokenizer only, no weights.

    A :class:`~sc_llm.core.text.encoder.TextEncoder` passed as ``model`` lends its own gene tokenizer.
    """
    from ..core.text.encoder import TextEncoder, load_gene_tokenizer

    if isinstance(model, TextEncoder):
        return model.genes, model.model_id
    return load_gene_tokenizer(str(model), max_length=max_length, prefix=prefix, revision=revision), str(model)


@doc_params()
def ablate_sentences(
    adata: AnnData,
    *,
    mode: AblationMode,
    sentence_key: str = "cell_sentence",
    key_added: str | None = None,
    seed: int = 0,
    model: Any = None,
    fraction: float | None = None,
    max_length: int | None = None,
    prefix: str | None = None,
    revision: str | None = None,
    mod: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Write an ablated copy of the cell sentences, as in the first paper's ablation study.

    The modes ask what a text encoder uses in a cell sentence: the gene *names* (hashes destroy them,
    consistently or per occurrence) or their *order* (shuffles destroy it, everywhere, inside the part the
    encoder reads, or only at the top), and how much of the sentence it needs (shortening).

    ``'hash'``
        Every gene name becomes its SHA-256 hex digest truncated to 10 characters; the same gene gets the same
        hash in every cell, so gene identity survives but the name's meaning does not.
    ``'random_hash'``
        Every occurrence becomes a fresh random 10-character hex string: nothing is shared across cells.
    ``'shuffle_all'``
        All genes of the sentence in random order.
    ``'shuffle_in_context'``
        The genes that fit in the encoder's context are shuffled among themselves; the rest keep their place,
        so the encoder sees the same genes in a different order.
    ``'shuffle_top_in_context'``
        Only the top ``fraction`` (default 10%) of the in-context genes are shuffled.
    ``'hash_shuffle_in_context'``
        ``'hash'``, then the hashed genes that fit in the context are shuffled.
    ``'shorten'``
        Keep the top ``fraction`` (default 10%; the paper also uses 20% and 50%) of the in-context genes.

    Counts are rounded up. The in-context modes count genes with ``model``'s tokenizer and context length
    (the same :class:`~sc_llm.core.text.gene_tokens.GeneTokenizer` that :func:`sc_llm.tl.embed` uses): a gene is
    in context when all of its tokens fit.

    Parameters
    ----------
    adata
        Annotated data matrix with cell sentences (or a MuData, see ``mod``).
    mode
        The ablation, see above.
    sentence_key
        ``.obs`` column holding the cell sentences (from :func:`sc_llm.pp.cell_sentences`).
    key_added
        ``.obs`` column for the ablated sentences. Default: ``sentence_key + '_' + mode``, with the percentage
        appended for the fraction modes (e.g. ``'cell_sentence_shorten_20'``).
    seed
        Seed of the random modes.
    model
        Text encoder whose context decides the in-context genes (hub id, local folder or a
        :class:`~sc_llm.core.text.encoder.TextEncoder`); needed by the in-context modes.
    fraction
        Share of in-context genes for ``'shuffle_top_in_context'`` and ``'shorten'`` (default 0.1).
    max_length, prefix, revision
        As in :func:`sc_llm.tl.embed`; they change how many genes fit, so pass the values used there.
    {mod}
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obs[key_added]`` : :class:`pandas.Series` of ``str``
        The ablated sentences, space-separated.
    ``adata.uns[key_added]['params']`` : :class:`dict`
        ``mode``, ``sentence_key``, ``seed``, ``fraction``, ``hash_length``, ``model``, ``max_length``,
        ``prefix`` and ``mean_in_context`` (mean in-context genes per cell; ``None`` for modes without a
        tokenizer).
    """
    if mode not in MODES:
        msg = f"Unknown ablation `mode={mode!r}`; choose one of {MODES}."
        raise ValueError(msg)
    if fraction is not None and mode not in _FRACTION_MODES:
        msg = f"`fraction` only applies to modes {_FRACTION_MODES}, not {mode!r}."
        raise ValueError(msg)
    fraction = 0.1 if fraction is None else float(fraction)
    if not 0 < fraction <= 1:
        msg = f"`fraction` must be in (0, 1], got {fraction}."
        raise ValueError(msg)
    if mode in NEEDS_TOKENIZER and model is None:
        msg = (
            f"Ablation {mode!r} counts the genes that fit in the encoder's context: pass `model=` (the text "
            "encoder you embed with, e.g. the `model` of `sl.tl.embed`)."
        )
        raise ValueError(msg)
    target = get_modality(adata, mod)
    sentences = read_sentences(target, sentence_key)
    key_added = key_added or default_ablation_key(sentence_key, mode, fraction)
    check_writes(target, {"obs": [key_added], "uns": [key_added]}, {"obs": [sentence_key]})

    start = logg.info(f"ablating {len(sentences)} cell sentences: {mode}")
    genes, model_id = None, None
    if mode in NEEDS_TOKENIZER:
        genes, model_id = context_tokenizer(model, max_length=max_length, prefix=prefix, revision=revision)
    words = [split_sentence(s) for s in sentences]
    ablated, n_ctx = ablate(words, mode, rng=np.random.default_rng(seed), genes=genes, fraction=fraction)

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obs[key_added] = pd.Series([" ".join(w) for w in ablated], index=target.obs_names, dtype=object)
    target.uns[key_added] = {
        "params": h5ad_params(
            {
                "mode": mode,
                "sentence_key": sentence_key,
                "seed": seed,
                "fraction": fraction if mode in _FRACTION_MODES else None,
                "hash_length": HASH_LENGTH if "hash" in mode else None,
                "model": model_id,
                "max_length": None if genes is None else genes.max_length,
                "prefix": None if genes is None else (genes.prefix or None),
                "mean_in_context": None if n_ctx is None else float(np.mean(n_ctx)) if len(n_ctx) else 0.0,
            }
        )
    }
    logg.info("    finished", time=start, deep=f"added\n    '{key_added}', ablated cell sentences (adata.obs)")
    return adata if copy else None
