"""The last step of every embedding path: the embedding into ``.obsm``, its parameters into ``.uns``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._utils._anndata import get_modality, h5ad_params, uns_key
from ..._utils._logging import logg


def write_embedding(adata: Any, X: np.ndarray, params: dict, *, key_added: str, mod: str | None, copy: bool, start):
    """Write ``X`` to ``.obsm[key_added]`` and ``params`` to ``.uns[key without 'X_']['params']`` (of a copy)."""
    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obsm[key_added] = X
    target.uns[uns_key(key_added)] = {"params": h5ad_params(params)}
    deep = f"added\n    '{key_added}', cell embeddings (adata.obsm)\n    '{uns_key(key_added)}', parameters (adata.uns)"
    logg.info("    finished", time=start, deep=deep)
    return adata if copy else None
