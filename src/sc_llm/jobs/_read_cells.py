"""``sl.jobs.read_cells``: the AnnData of the cells a finished generation or perturbation job wrote."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._utils._logging import logg

if TYPE_CHECKING:
    from anndata import AnnData

    from ..core.shards import ShardStore

_JOBS = ("generate/cells", "generate/perturbation")


def _open(store) -> ShardStore:
    from ..core.shards import ShardStore

    shards = store if isinstance(store, ShardStore) else ShardStore(store)
    job = shards.manifest.get("job")
    if job not in _JOBS:
        msg = f"{str(shards.path)!r} holds a {job!r} job; `read_cells` reads the stores of {_JOBS}."
        raise ValueError(msg)
    if shards.pending():
        msg = (
            f"{len(shards.pending())} of {shards.n_shards} shards of {str(shards.path)!r} are not computed yet; "
            "run the same job again to finish it."
        )
        raise ValueError(msg)
    return shards


def _control_names(input, manifest: dict) -> pd.Index:
    from .._utils._cell_files import CellFile
    from ..core.base.identity import hash_strings

    names = CellFile(input).obs_names
    if hash_strings(names) != manifest["input"]["obs_names_sha256"]:
        msg = f"{str(input)!r} is not the file this job read (its obs names differ); pass the job's input file."
        raise ValueError(msg)
    return pd.Index(names)


def read_cells(store: str | os.PathLike | ShardStore, *, input: str | os.PathLike | None = None) -> AnnData:
    """Read a finished :func:`sc_llm.jobs.generate_cells` or :func:`sc_llm.jobs.predict_perturbation` store as AnnData.

    The sentences are rebuilt from the stored gene indices and decoded with the sentence decoder saved in the
    model folder (whose fingerprint must still match the job's), exactly as ``sl.tl.generate_cells`` or
    ``CellLM.predict_perturbation`` would return them.

    Parameters
    ----------
    store
        The store folder (or the :class:`~sc_llm.jobs.ShardStore` a job returned).
    input
        Perturbation jobs: the job's input file, to name each prediction's control cell (optional).

    Returns
    -------
    A new AnnData over the model's genes with
    `.X` : scipy.sparse.csr_matrix
        Expression decoded from the sentences.
    `.obs['cell_type']`, `.obs['cell_sentence']`, `.obs['n_valid_genes']`, `.obs['n_words']`
        Cell type, generated sentence, valid genes and words written per sentence; perturbation jobs with
        ``input`` also `.obs['control_cell']`.
    `.uns['cell_lm']` : dict
        ``'params'`` (the job's model, sampling settings and store) and ``'valid_gene_share'``.
    """
    import anndata as ad
    from scipy import sparse

    from ..core.base.identity import fingerprint_folder
    from ..core.cell_lm.saved import read_saved
    from ..core.shards.generation_tasks import gene_index_sentences

    shards = _open(store)
    m = shards.manifest
    folder = m["model"]["id"]
    if fingerprint_folder(folder) != m["model"]["fingerprint"]:
        msg = f"The model folder {folder!r} changed since the job ran; its decoder may differ. Rerun the job."
        raise ValueError(msg)
    _, vocab, decoder = read_saved(folder)
    genes = gene_index_sentences(shards.read("gene_ids"), vocab.genes)
    n_words = shards.read("n_words").astype(np.int64)
    n_valid = np.array([len(g) for g in genes], dtype=np.int64)
    sentences = [" ".join(g) for g in genes]
    types = np.asarray(m["input"]["cell_types"], dtype=object)[shards.read("cell_type")]
    perturbation = m["job"] == "generate/perturbation"
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(types), "cell_sentence": sentences, "n_valid_genes": n_valid, "n_words": n_words},
        index=[f"{'pred' if perturbation else 'gen'}_{i}" for i in range(len(genes))],
    )
    if perturbation and input is not None:
        obs["control_cell"] = np.asarray(_control_names(input, m))
    if decoder is None:
        logg.warning("the model has no fitted sentence decoder: `.X` is all zeros.")
        X = sparse.csr_matrix((len(genes), len(vocab.genes)), dtype=np.float32)
    else:
        X, _ = decoder.decode(sentences, vocab.genes)
    params = {**{k: v for k, v in m["params"].items() if v is not None}, "model": folder, "store": str(shards.path)}
    uns = {"params": params, "valid_gene_share": float(n_valid.sum() / max(n_words.sum(), 1))}
    var = pd.DataFrame(index=pd.Index(vocab.genes, dtype=str))
    return ad.AnnData(X=sparse.csr_matrix(X, dtype=np.float32), obs=obs, var=var, uns={"cell_lm": uns})
