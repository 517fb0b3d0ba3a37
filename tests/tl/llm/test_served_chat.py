"""``llm_rerank`` / ``llm_annotate`` with ``backend='openai'`` against a real server: ``transformers serve`` running
SmolLM2-135M-Instruct (tests/servers.py), greedy. Requests are counted in the server's own access log.

The killed-server test comes last: it kills the session's server (a later test would get it restarted).
The faults a real server does not produce on demand (5xx, bodies that are not JSON, hangs) are in
tests/core/llm/test_endpoint.py, against the scriptable server.
"""

import json
import threading
import time

import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.core.llm.endpoint import ChatEndpoint, EndpointError

SECRET = "sk-fake-key-servers-ignore-0xBADC0DE"
ROUTE = "POST /v1/chat/completions"
OPTIONS = {"params": {"max_tokens": 12}, "timeout": 120, "max_retries": 1, "backoff": 0.05}


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", SECRET)


@pytest.fixture(scope="module")
def ranked(_pbmc):
    """pbmc68k cells with 20-gene sentences and a leave-one-out PCA 10-NN top-3; only cells with ≥ 2 candidates."""
    adata = _pbmc.copy()
    sl.pp.cell_sentences(adata, n_genes=20)
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")
    several = adata.obsm["knn_label_top3"]["label_2"].notna().to_numpy()
    return adata[several][:12].copy()


def _candidates(adata):
    top = adata.obsm["knn_label_top3"][["label_1", "label_2", "label_3"]]
    return [[v for v in row if not pd.isna(v)] for row in top.itertuples(index=False)]


def test_rerank_answers_are_candidates_and_a_rerun_sends_nothing(chat_server, ranked, tmp_path, capfd):
    import scanpy as sc

    adata, before = ranked[:6].copy(), chat_server.count(ROUTE)
    kwargs = {"model": chat_server.model, "backend": "openai", "base_url": chat_server.base_url, "n_genes": 20}
    kwargs |= {"cache_dir": tmp_path, "truth_key": "bulk_labels"}
    verbosity, sc.settings.verbosity = sc.settings.verbosity, 4
    try:
        sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS | {"max_concurrency": 4})
        sent = chat_server.count(ROUTE) - before
        rerun = sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS, copy=True)
    finally:
        sc.settings.verbosity = verbosity
    cands = _candidates(adata)
    labels = adata.obs["llm_rerank"].astype(str).tolist()
    assert all(lab in c for lab, c in zip(labels, cands, strict=True))
    uns = adata.uns["llm_rerank"]
    assert sent == 6 and uns["stats"]["requests"] == 6 and uns["n_failed"] == 0  # the server logged 6
    assert chat_server.count(ROUTE) - before == 6  # the rerun was answered by the cache alone
    assert rerun.uns["llm_rerank"]["stats"]["cache_hits"] == 6 and rerun.obs["llm_rerank"].equals(
        adata.obs["llm_rerank"]
    )
    assert uns["params"]["endpoint"]["base_url"] == chat_server.base_url
    assert uns["params"]["endpoint"]["params"] == {"temperature": 0.0, "max_tokens": 12}
    # 4 requests in flight gave each cell its own answer: the same ones asked one at a time (greedy decoding)
    cached = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))[:3]]
    endpoint = ChatEndpoint(chat_server.model, base_url=chat_server.base_url, max_concurrency=1, **OPTIONS)
    one_by_one, _ = endpoint.complete([c["request"]["messages"] for c in cached])
    assert one_by_one == [c["content"] for c in cached]
    # the fake key is in no result, cache file, log line (ours or the server's) or repr
    assert SECRET not in json.dumps(adata.uns, default=str) + repr(adata) + repr(endpoint)
    assert not any(SECRET in p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in capfd.readouterr().err + chat_server.log()


def test_annotate_with_categories_answers_one_of_them(chat_server, ranked, tmp_path):
    adata = ranked[:4].copy()
    categories = list(ranked.obs["bulk_labels"].cat.categories)
    sl.tl.llm_annotate(
        adata,
        model=chat_server.model,
        backend="openai",
        base_url=chat_server.base_url,
        categories=categories,
        n_genes=20,
        truth_key="bulk_labels",
        cache_dir=tmp_path,
        endpoint_kwargs=OPTIONS | {"max_concurrency": 2},
    )
    labels = adata.obs["llm_annotate"]
    assert list(labels.cat.categories) == categories
    assert labels.dropna().isin(categories).all()
    uns = adata.uns["llm_annotate"]
    assert uns["n_unmapped"] == int(labels.isna().sum()) and uns["stats"]["requests"] == 4
    assert 0 <= uns["metrics"]["accuracy"] <= 1


def test_an_unknown_model_is_one_error_naming_the_server(chat_server, ranked):
    adata = ranked[:2].copy()
    kwargs = {"model": "no/such-model", "backend": "openai", "base_url": chat_server.base_url}
    with pytest.raises(EndpointError, match=r"failed: HTTP 400") as info:
        sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS)
    assert info.value.url == chat_server.base_url and info.value.attempts == 1 and info.value.status == 400
    assert "rejected the request itself, so it was not retried: check the model name" in str(info.value)
    # a 400 is also what a too-long prompt gets, so on_error='skip' goes on past it: counted, first candidate kept
    sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS | {"on_error": "skip"})
    assert adata.uns["llm_rerank"]["n_failed"] == 2 and not adata.obs["llm_rerank_changed"].any()


def test_a_server_killed_mid_run_gives_one_error_and_the_cache_resumes(chat_server, ranked, tmp_path):
    adata = ranked[:8].copy()
    kwargs = {"model": chat_server.model, "backend": "openai", "base_url": chat_server.base_url, "n_genes": 20}
    kwargs["cache_dir"] = tmp_path

    def kill_after_two_answers():
        deadline = time.monotonic() + 300
        while len(list(tmp_path.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        chat_server.kill()  # SIGKILL to the process group, mid-run

    killer = threading.Thread(target=kill_after_two_answers)
    killer.start()
    try:
        with pytest.raises(EndpointError) as info:
            sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS | {"max_concurrency": 2})
    finally:
        killer.join()
    message, cached = str(info.value), len(list(tmp_path.glob("*.json")))
    assert 2 <= cached < 8 and not list(tmp_path.glob("*.tmp"))
    assert f"The endpoint {chat_server.base_url} (model {chat_server.model!r}) failed: the connection" in message
    assert "after 2 attempt(s) (1 retries; max_retries=1)" in message
    assert f"{cached} of 8 requests of this call have their answer in the cache {tmp_path}; rerun" in message
    assert "on_error='skip'" in message and SECRET not in message
    assert "llm_rerank" not in adata.obs  # nothing half-written
    # the cache resumes: a rerun (here while the server is still down, skipping what fails) reuses every answer
    sl.tl.llm_rerank(adata, **kwargs, endpoint_kwargs=OPTIONS | {"max_retries": 0, "on_error": "skip"})
    stats = adata.uns["llm_rerank"]["stats"]
    assert stats["cache_hits"] == cached and stats["failed"] == 8 - cached and stats["answered"] == 0
    assert adata.uns["llm_rerank"]["n_failed"] == 8 - cached
