"""``sl.tl.generate_cells``: new cells of a given type, written by a cell language model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._logging import logg
from ..._utils._validation import check_sampling, requested_cell_types
from ...core.cell_lm.predict import generated_sentences
from ._cell_lm import CellLM, cells_anndata

if TYPE_CHECKING:
    from anndata import AnnData


def generate_cells(
    model: CellLM | str | os.PathLike,
    *,
    cell_type: str | list[str],
    n_cells: int = 100,
    n_genes: int = 100,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    device: Any = None,
    dtype: Any = None,
    progress: bool = True,
    key_added: str = "cell_lm",
) -> AnnData:
    """Generate cells of one or more cell types with a cell language model (C2S conditional generation).

    Unlike the other tools this one takes no AnnData: there is no input data, only a model, so — like
    ``sc.datasets`` functions or ``pertpy``'s predictors returning new cells — it returns a new AnnData of
    generated cells, ready to concatenate with real cells for comparison.

    Parameters
    ----------
    model
        A :class:`sc_llm.tl.CellLM` (fitted with ``task='conditional_generation'``) or the folder it was saved to.
    cell_type
        A cell type, or a list with one entry per cell to generate (then ``n_cells`` is ignored).
    n_cells
        Cells to generate for a single ``cell_type``.
    n_genes
        Genes per generated sentence (at most; the model may end a sentence earlier).
    do_sample, temperature, top_k, top_p, seed
        Sampling (the default: varied cells, reproducible from ``seed``) or greedy decoding. Cell ``i`` is
        sampled from its own stream (``seed``, ``i``), so it is the same whatever ``batch_size`` or
        ``n_cells``, and :func:`sc_llm.jobs.generate_cells` writes the same cells shard by shard.
    batch_size
        Sentences generated together.
    device
        Device for a model loaded from a folder (``None``: CUDA, then MPS, then CPU).
    dtype
        Compute precision of generation (``None``: the model's, by default bf16 on CUDA and on CPUs with native
        bf16, else fp32; see :func:`sc_llm.tl.embed`). Recorded in ``.uns[key_added]['params']``.
    progress
        Show a progress bar.
    key_added
        ``.uns`` key of the parameters.

    Returns
    -------
    A new AnnData with the model's genes as ``var_names`` and
    `.X` : scipy.sparse.csr_matrix
        Expression decoded from the sentences by the model's sentence decoder.
    `.obs['cell_type']`, `.obs['cell_sentence']` : categorical, str
        The requested cell type and the generated sentence.
    `.obs['n_valid_genes']`, `.obs['n_words']` : int
        Valid, non-repeated genes and words written per sentence.
    `.uns[key_added]` : dict
        ``'params'`` (model reference, cell types, sampling settings), ``'valid_gene_share'``, ``'tokens_per_second'``.
    """
    if not isinstance(model, CellLM):
        model = CellLM.load(model, device=device)
    types = requested_cell_types(cell_type, n_cells)
    kw = {"n_genes": n_genes, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
    check_sampling(**kw, batch_size=batch_size)
    start = logg.info(f"generating {len(types)} cells")
    res = generated_sentences(
        model,
        types,
        cell_keys=np.arange(len(types), dtype=np.uint64),
        n_genes=n_genes,
        do_sample=do_sample,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        dtype=dtype,
    )
    obs = pd.DataFrame({"cell_type": pd.Categorical(types)}, index=[f"gen_{i}" for i in range(len(types))])
    params = {
        "cell_types": np.unique(types).tolist(),
        "n_cells": len(types),
        "n_genes": n_genes,
        "do_sample": do_sample,
        "temperature": temperature,
        "top_k": top_k or 0,
        "top_p": top_p or 1.0,
        "seed": seed,
    }
    out = cells_anndata(model, res, obs, params)
    out.uns[key_added] = out.uns.pop("cell_lm")
    logg.info("    finished", time=start, deep=f"{res.valid_share:.1%} valid genes")
    return out
