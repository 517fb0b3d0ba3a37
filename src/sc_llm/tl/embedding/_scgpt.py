"""scGPT cell embeddings for ``sl.tl.embed``: resolve the AnnData inputs, run the core, write the results."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._utils._anndata import get_gene_names, get_matrix, get_modality, iter_row_chunks, uns_key
from ..._utils._logging import logg
from ..._utils._validation import check_embedding, check_writes
from ._write import write_embedding

if TYPE_CHECKING:
    from anndata import AnnData

LOW_COVERAGE = 0.5  # warn when fewer than this fraction of genes is in the vocabulary


def _check_options(max_length: Any, seed: Any, batch_size: int, n_bins: Any) -> None:
    if not isinstance(max_length, int | np.integer) or max_length < 2:
        msg = f"`max_length` counts <cls> plus genes and must be an integer of at least 2, got {max_length!r}."
        raise ValueError(msg)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        msg = f"`seed` must be an integer, got {seed!r}."
        raise TypeError(msg)
    if seed < 0:
        msg = f"`seed` must be non-negative, got {seed}."
        raise ValueError(msg)
    if batch_size < 1:
        msg = f"`batch_size` must be positive, got {batch_size}."
        raise ValueError(msg)
    if n_bins is not None and (not isinstance(n_bins, int | np.integer) or n_bins < 3):
        msg = f"`n_bins` must be an integer of at least 3, got {n_bins!r}."
        raise ValueError(msg)


def embed_scgpt(
    adata: AnnData,
    *,
    model: str,
    key_added: str,
    batch_size: int,
    max_length: int | None,
    device: str | None,
    dtype: str | None,
    mod: str | None,
    progress: bool,
    copy: bool,
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    n_bins: int | None = None,
    seed: int = 0,
    cache_dir: Any = None,
    shard_size: int = 10_000,
) -> AnnData | None:
    """Embed cells with a pretrained scGPT checkpoint, as scGPT's ``embed_data`` does, streaming from CSR.

    Called by :func:`sc_llm.tl.embed` with an scGPT checkpoint folder; see its docstring for the parameters
    and the keys written. The keyword arguments after ``copy`` are the scGPT encoder's own options.
    """
    from ...core.scgpt.encoder import DEFAULT_MAX_LENGTH, ScGPTEncoder

    max_length = DEFAULT_MAX_LENGTH if max_length is None else max_length
    _check_options(max_length, seed, batch_size, n_bins)
    # validate the data, the checkpoint's files and the gene matching before loading any weights
    target = get_modality(adata, mod)
    X, var, source = get_matrix(target, layer=layer, use_raw=use_raw)
    names = get_gene_names(var, gene_symbols)
    check_writes(target, {"obsm": [key_added], "uns": [uns_key(key_added)]}, {})
    enc = ScGPTEncoder(model, device=device, dtype=dtype)
    genes = enc.match_genes(names)
    start = logg.info(
        f"embedding {target.n_obs} cells with scGPT from {str(enc.folder)!r} into adata.obsm[{key_added!r}]: "
        f"matched {genes.n_matched}/{genes.n_genes} genes ({genes.coverage:.1%}) to the vocabulary of "
        f"{genes.n_vocab_genes} genes"
    )
    if genes.coverage < LOW_COVERAGE:
        warnings.warn(
            f"Only {genes.n_matched} of {genes.n_genes} genes ({genes.coverage:.1%}) are in the scGPT vocabulary; "
            f"the embedding ignores the others.{genes.hint}",
            stacklevel=3,
        )
    if enc.config.not_applied:
        logg.info(
            f"    args.json sets {list(enc.config.not_applied)}; as in scGPT's embed_data, not applied to embeddings"
        )
    n_bins = enc.config.n_bins if n_bins is None else n_bins
    options = {"batch_size": batch_size, "max_length": max_length, "n_bins": n_bins, "seed": seed, "progress": progress}
    emb, stats, cache = _run(
        enc,
        X,
        names,
        target.obs_names,
        genes,
        options,
        cache_dir=cache_dir,
        shard_size=shard_size,
        model=model,
        device=device,
        dtype=dtype,
        source=source,
    )
    _report(stats, max_length, seed)
    check_embedding(emb, str(model))

    params = {"encoder": "scgpt", "backend": "local", **enc.params(), "layer": layer, "use_raw": source == "raw.X"}
    params.update(gene_symbols=gene_symbols, max_length=int(max_length), n_bins=int(n_bins), seed=int(seed))
    params.update(n_genes=genes.n_genes, n_genes_matched=genes.n_matched, gene_coverage=float(genes.coverage))
    params.update(n_subsampled=stats.n_subsampled, n_empty=stats.n_empty)
    if cache_dir is not None:
        params.update(cache=cache, shard_size=int(shard_size))
    return write_embedding(adata, emb, params, key_added=key_added, mod=mod, copy=copy, start=start)


def _run(enc, X, names, obs_names, genes, options, *, cache_dir, shard_size, **job):
    """``(embeddings, stats, cache folder or None)``: in one pass, or through the resumable shard cache."""
    from ...core.base.cell_keys import obs_name_keys
    from ...core.scgpt.preprocessing import CHUNK_CELLS

    if cache_dir is None:
        keys = obs_name_keys(obs_names)
        emb, stats = enc.embed(
            iter_row_chunks(X, CHUNK_CELLS), genes.column_ids, len(obs_names), cell_keys=keys, **options
        )
        return emb, stats, None
    from ._cache import embed_scgpt_cached

    return embed_scgpt_cached(X, names, obs_names, cache_dir=cache_dir, shard_size=shard_size, **job, **options)


def _report(stats: Any, max_length: int, seed: int) -> None:
    if stats.n_empty:
        warnings.warn(
            f"{stats.n_empty} cell(s) express no gene of the scGPT vocabulary; their embedding is the <cls> "
            "output alone and carries no information about them.",
            stacklevel=4,
        )
    if stats.n_subsampled:
        logg.info(
            f"    {stats.n_subsampled} cell(s) express more than {max_length - 1} matched genes; a random subset "
            f"of {max_length - 1} was used (seed={seed})"
        )
