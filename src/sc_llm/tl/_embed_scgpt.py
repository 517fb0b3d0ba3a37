"""scGPT cell embeddings for ``sl.tl.embed``: resolve the AnnData inputs, run the core, write the results."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .._utils._anndata import get_gene_names, get_matrix, get_modality, iter_row_chunks, uns_key
from .._utils._logging import logg

if TYPE_CHECKING:
    from anndata import AnnData

DEFAULT_MAX_LENGTH = 1200
LOW_COVERAGE = 0.5  # warn when fewer than this fraction of genes is in the vocabulary


def _coverage_hint(names: np.ndarray, vocab: dict[str, int], n_matched: int) -> str:
    upper = {k.upper() for k in vocab}
    n_upper = sum(1 for g in names if g.upper() in upper)
    if n_upper > 2 * max(n_matched, 1):
        return " Gene symbols differ in case from the vocabulary (mouse data?); scGPT's human vocabulary is upper-case."
    return " Check that `gene_symbols` names a `.var` column of gene symbols."


def embed_scgpt(
    adata: AnnData,
    *,
    model: str,
    key_added: str = "X_scgpt",
    batch_size: int = 64,
    max_length: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    mod: str | None = None,
    progress: bool = True,
    copy: bool = False,
    layer: str | None = None,
    use_raw: bool | None = None,
    gene_symbols: str | None = None,
    n_bins: int | None = None,
    seed: int = 0,
) -> AnnData | None:
    """Embed cells with a pretrained scGPT checkpoint, as scGPT's ``embed_data`` does, streaming from CSR.

    Called by :func:`sc_llm.tl.embed` with an scGPT checkpoint folder; see its docstring for the parameters
    and the keys written.
    """
    from ..core.scgpt import CHUNK_CELLS, check_folder, match_genes, read_config, read_vocab

    if max_length is None:
        max_length = DEFAULT_MAX_LENGTH
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

    # --- validate: data, checkpoint files and options, gene matching (before loading any weights)
    target = get_modality(adata, mod)
    X, var, source = get_matrix(target, layer=layer, use_raw=use_raw)
    used_raw = source == "raw.X"
    names = get_gene_names(var, gene_symbols)
    folder = check_folder(model)
    config = read_config(folder)
    vocab = read_vocab(folder, config.pad_token)
    n_bins = config.n_bins if n_bins is None else n_bins
    if not isinstance(n_bins, int | np.integer) or n_bins < 3:
        msg = f"`n_bins` must be an integer of at least 3, got {n_bins!r}."
        raise ValueError(msg)
    specials = {config.pad_token, "<cls>", "<eoc>"}
    column_ids = match_genes(names, vocab, exclude=sorted(specials))
    n_matched = int((column_ids >= 0).sum())
    n_genes = len(names)
    coverage = n_matched / n_genes if n_genes else 0.0
    n_vocab_genes = len(set(vocab) - specials)
    if n_matched == 0:
        msg = (
            f"None of the {n_genes} genes is in the scGPT vocabulary ({n_vocab_genes} genes), e.g. "
            f"{list(names[:3])} vs {list(vocab)[:3]}.{_coverage_hint(names, vocab, 0)}"
        )
        raise ValueError(msg)
    start = logg.info(
        f"embedding {target.n_obs} cells with scGPT from {str(folder)!r}: matched {n_matched}/{n_genes} genes "
        f"({coverage:.1%}) to the vocabulary of {n_vocab_genes} genes"
    )
    if coverage < LOW_COVERAGE:
        warnings.warn(
            f"Only {n_matched} of {n_genes} genes ({coverage:.1%}) are in the scGPT vocabulary; the embedding "
            f"ignores the others.{_coverage_hint(names, vocab, n_matched)}",
            stacklevel=3,
        )

    # --- compute
    from ..core.device import autocast_dtype, dtype_name, resolve_device
    from ..core.scgpt import embed_cells, load_encoder

    dev = resolve_device(device)
    compute_dtype = autocast_dtype(dev, dtype)
    encoder = load_encoder(folder, config, vocab).to(dev)
    n_value_rows = encoder.value_encoder.embedding.num_embeddings if config.input_emb_style == "category" else None
    if n_value_rows is not None and n_bins > n_value_rows:
        msg = f"`n_bins={n_bins}` exceeds the {n_value_rows} value bins of the checkpoint."
        raise ValueError(msg)
    if config.not_applied:
        logg.info(f"    args.json sets {list(config.not_applied)}; as in scGPT's embed_data, not applied to embeddings")
    emb, stats = embed_cells(
        encoder,
        iter_row_chunks(X, CHUNK_CELLS),
        column_ids,
        target.n_obs,
        cls_id=vocab["<cls>"],
        pad_id=vocab[config.pad_token],
        pad_value=config.pad_value,
        batch_size=batch_size,
        max_length=max_length,
        n_bins=n_bins,
        seed=seed,
        device=dev,
        dtype=compute_dtype,
        progress=progress,
    )
    if stats.n_empty:
        warnings.warn(
            f"{stats.n_empty} cell(s) express no gene of the scGPT vocabulary; their embedding is the <cls> "
            "output alone and carries no information about them.",
            stacklevel=3,
        )
    if stats.n_subsampled:
        logg.info(
            f"    {stats.n_subsampled} cell(s) express more than {max_length - 1} matched genes; a random subset "
            f"of {max_length - 1} was used (seed={seed})"
        )

    # --- write
    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obsm[key_added] = emb
    target.uns[uns_key(key_added)] = {
        "params": {
            "encoder": "scgpt",
            "model": str(folder),
            "layer": layer,
            "use_raw": used_raw,
            "gene_symbols": gene_symbols,
            "max_length": int(max_length),
            "n_bins": int(n_bins),
            "seed": int(seed),
            "input_emb_style": config.input_emb_style,
            "d_model": config.d_model,
            "dtype": dtype_name(compute_dtype) if dev.type == "cuda" else "float32",
            "device": dev.type,
            "n_genes": n_genes,
            "n_genes_matched": n_matched,
            "gene_coverage": float(coverage),
            "n_subsampled": stats.n_subsampled,
            "n_empty": stats.n_empty,
        }
    }
    written = (
        f"added\n    '{key_added}', cell embeddings (adata.obsm)\n    '{uns_key(key_added)}', parameters (adata.uns)"
    )
    logg.info("    finished", time=start, deep=written)
    return adata if copy else None
