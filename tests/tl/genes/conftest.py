"""Gene vectors set the way sl.tl.gene_embeddings writes them, over random log-normalised expression."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse


def with_gene_vectors(X, *, n_textless=3, dim=6, seed=0, raw=False):
    """An AnnData over X (log-normalised-looking values) with gene vectors set as gene_embeddings writes them."""
    rng = np.random.default_rng(seed)
    n_obs, n_vars = X.shape
    adata = ad.AnnData(X, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]))
    adata.var_names = [f"G{j}" for j in range(n_vars)]
    G = rng.normal(size=(n_vars, dim)).astype(np.float32)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    has_text = np.ones(n_vars, dtype=bool)
    has_text[:n_textless] = False
    G[~has_text] = 0
    if raw:
        adata.raw = adata
        adata = adata[:, n_vars // 2 :].copy()  # .var keeps half the genes, .raw all of them
        table = adata.raw
    else:
        table = adata
    table.varm["X_gene_text"] = G
    table.var["X_gene_text_has_text"] = has_text
    adata.uns["gene_text"] = {"params": {"model": "m", "template": "t", "identity_sha256": "i", "texts_sha256": "s"}}
    return adata, G, has_text


def random_expression(n_obs=40, n_vars=30, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = sparse.random(n_obs, n_vars, density=density, format="csr", random_state=seed, dtype=np.float32)
    X.data = np.log1p(rng.gamma(2.0, 2.0, X.nnz)).astype(np.float32)
    X = sparse.diags(np.r_[0.0, np.ones(n_obs - 1)].astype(np.float32)) @ X  # the first cell: empty
    X.eliminate_zeros()
    return X.tocsr()


@pytest.fixture(name="with_gene_vectors")
def _with_gene_vectors():
    return with_gene_vectors


@pytest.fixture(name="random_expression")
def _random_expression():
    return random_expression
