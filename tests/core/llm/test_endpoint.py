"""The endpoint client against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/openai_compatible_server.py)."""

import importlib.util
import json
import time
from pathlib import Path

import pytest

from sc_llm.core.llm.choice import generate_answers
from sc_llm.core.llm.endpoint import ChatEndpoint, EndpointError, ResponseCache
from sc_llm.core.llm.loading import load_causal_lm
from sc_llm.core.llm.rerank_prompts import RERANK

_spec = importlib.util.spec_from_file_location(
    "openai_compatible_server", Path(__file__).parents[2] / "openai_compatible_server.py"
)
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)
ChatServer = _server.ChatServer

SECRET = "sk-test-never-stored-0123456789"
CHATS = [
    RERANK.messages("CD3D IL7R LTB", candidates=["CD4 T cells", "B cells"]),
    RERANK.messages("MS4A1 CD79A", candidates=["B cells", "CD4 T cells"]),
]


@pytest.fixture(scope="module")
def tiny_lm(tiny_causal_lm):
    return load_causal_lm(tiny_causal_lm, device="cpu")


@pytest.fixture
def server(tiny_lm):
    net, tok = tiny_lm

    def respond(messages, body):  # the real tiny model answers, greedily, through sc_llm's local generation
        return generate_answers(net, tok, [messages], cue=RERANK.cue, max_new_tokens=body.get("max_tokens", 8))[0]

    with ChatServer(respond, delay=2.0) as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", SECRET)


def _endpoint(server, tmp_path=None, **kw):
    kw = {"timeout": 0.5, "max_retries": 2, "backoff": 0.01, "params": {"max_tokens": 8}} | kw
    return ChatEndpoint("tiny", base_url=server.base_url, cache_dir=tmp_path, **kw)


def test_answers_are_the_models_and_the_key_comes_from_the_environment(server, tiny_lm, tmp_path):
    net, tok = tiny_lm
    endpoint = _endpoint(server, tmp_path)
    texts, stats = endpoint.complete(CHATS)
    assert texts == generate_answers(net, tok, CHATS, cue=RERANK.cue, max_new_tokens=8)
    assert stats.requests == 2 and stats.cache_hits == 0 and stats.retries == 0
    assert {r["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    body = server.requests[0]["body"]
    assert body["model"] == "tiny" and body["temperature"] == 0.0 and body["max_tokens"] == 8
    # the key is nowhere but in the request header
    assert SECRET not in repr(endpoint) and SECRET not in json.dumps(endpoint.describe())
    assert not any(SECRET in p.read_text() for p in tmp_path.iterdir())


def test_a_rerun_is_answered_from_the_cache(server, tmp_path):
    first, _ = _endpoint(server, tmp_path).complete(CHATS)
    assert len(list(tmp_path.glob("*.json"))) == 2 and not list(tmp_path.glob("*.tmp"))
    again, stats = _endpoint(server, tmp_path).complete(CHATS)
    assert again == first and stats.requests == 0 and stats.cache_hits == 2 and len(server.requests) == 2
    # other sampling parameters are another request
    _, stats = _endpoint(server, tmp_path, params={"max_tokens": 4}).complete(CHATS[:1])
    assert stats.requests == 1


@pytest.mark.parametrize("fault", ["timeout", "429", "500", "bad_json", "no_choices"])
def test_transient_faults_are_retried(server, fault):
    server.faults.append(fault)
    texts, stats = _endpoint(server).complete(CHATS[:1])
    assert stats.retries == 1 and stats.failed == 0 and len(server.requests) == 2
    assert texts[0] is not None


def test_retries_are_bounded_then_raise_or_skip(server, tmp_path):
    import openai

    server.faults.extend(["500"] * 3)
    with pytest.raises(EndpointError) as info:
        _endpoint(server, tmp_path).complete(CHATS[:1])
    assert isinstance(info.value.cause, openai.InternalServerError) and info.value.__cause__ is info.value.cause
    assert len(server.requests) == 3  # one attempt + max_retries=2
    server.faults.extend(["timeout"] * 3)
    texts, stats = _endpoint(server, tmp_path, max_concurrency=1).complete(CHATS, on_error="skip")
    assert texts.count(None) == 1 and stats.failed == 1
    assert len(list(tmp_path.glob("*.json"))) == 1  # a failed request is not cached


def test_concurrency_keeps_the_order(server):
    chats = [RERANK.messages(f"GENE{i} CD3D", candidates=["CD4 T cells", "B cells"]) for i in range(6)]
    replies = [f"reply {i}" for i in range(6)]
    texts, _ = _endpoint(server, max_concurrency=1).complete(chats[:1])  # warm
    server.faults.extend(("reply", r) for r in replies)
    texts, stats = _endpoint(server, max_concurrency=3).complete(chats[1:])
    assert sorted(texts) == sorted(replies[:5]) and stats.requests == 5


def test_cache_files_are_keyed_by_request(tmp_path):
    cache = ResponseCache(tmp_path)
    request = {"messages": CHATS[0], "model": "m", "base_url": None, "params": {"temperature": 0}}
    key = cache.key(request)
    assert key == cache.key(json.loads(json.dumps(request)))
    assert cache.get(key) is None
    cache.put(key, request, "B cells")
    assert cache.get(key) == "B cells"
    (tmp_path / f"{key}.json").write_text("{broken")
    assert cache.get(key) is None  # unreadable: asked again


def test_bad_options():
    with pytest.raises(ValueError, match="max_concurrency"):
        ChatEndpoint("m", base_url="http://127.0.0.1:9/v1", max_concurrency=0)
    with pytest.raises(ValueError, match="on_error"):
        ChatEndpoint("m", base_url="http://127.0.0.1:9/v1").complete([], on_error="ignore")


def test_openai_itself_needs_a_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("SC_LLM_OPENAI_API_KEY")
    with pytest.raises(ValueError, match="SC_LLM_OPENAI_API_KEY"):
        ChatEndpoint("gpt-4o")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    endpoint = ChatEndpoint("gpt-4o")
    assert endpoint.describe()["base_url"] == "https://api.openai.com/v1" and SECRET not in repr(endpoint)


def test_none_drops_a_default_parameter(server):
    endpoint = _endpoint(server, params={"temperature": None, "max_tokens": None, "max_completion_tokens": 4})
    assert endpoint.params == {"max_completion_tokens": 4}
    endpoint.complete(CHATS[:1])
    body = server.requests[-1]["body"]
    assert "temperature" not in body and "max_tokens" not in body and body["max_completion_tokens"] == 4


# what the server did, what the error must say about it, and the client's exception kept as the cause
FAILURES = {
    "500": ("HTTP 500 (server error)", "InternalServerError"),
    "bad_json": ("HTTP 200 with a body that is not valid JSON", "JSONDecodeError"),
    "html": ("HTTP 200 but with a body that is not JSON: '<html><body><h1>502 Bad Gateway", "BadResponseError"),
    "timeout": ("no answer within the 0.5 s timeout", "APITimeoutError"),
}


@pytest.mark.parametrize("fault", sorted(FAILURES))
def test_a_failing_server_ends_in_one_clear_error(server, tmp_path, fault):
    """Non-JSON, a 500 or a hang: one EndpointError naming the URL, the status, the retries, the cache, 'skip'."""
    server.faults.extend([None, fault, fault, fault])  # the first request is answered, the second never
    with pytest.raises(EndpointError) as info:
        _endpoint(server, tmp_path, max_concurrency=1).complete(CHATS)
    error, (what, cause) = info.value, FAILURES[fault]
    message = str(error)
    assert not isinstance(error, json.JSONDecodeError) and type(error.cause).__name__ == cause
    assert f"The endpoint {server.base_url} (model 'tiny') failed: {what}" in message
    assert "after 3 attempt(s) (2 retries; max_retries=2)" in message
    assert f"1 of 2 requests of this call have their answer in the cache {tmp_path}; rerun the same call" in message
    assert "on_error='skip'" in message and SECRET not in message
    assert error.url == server.base_url and error.attempts == 3
    assert error.status == {"500": 500, "timeout": None}.get(fault, 200)
    # the answered request is in the cache: a rerun asks only for the other one
    texts, stats = _endpoint(server, tmp_path).complete(CHATS)
    assert stats.cache_hits == 1 and stats.requests == 1 and all(t is not None for t in texts)


def test_without_a_cache_the_error_says_how_to_keep_answers(server):
    server.faults.extend(["500"] * 3)
    with pytest.raises(EndpointError, match=r"no cache_dir was set, so they are not kept: pass cache_dir="):
        _endpoint(server).complete(CHATS[:1])


def test_the_first_failure_stops_the_other_requests(server, tmp_path):
    """With 2 in flight and a long backoff, the call ends at the first failure instead of waiting out retries."""
    server.faults.extend(["500"] * 40)
    chats = [RERANK.messages(f"GENE{i} CD3D", candidates=["CD4 T cells", "B cells"]) for i in range(8)]
    endpoint = _endpoint(server, tmp_path, max_concurrency=2, max_retries=3, backoff=0.2)
    start = time.perf_counter()
    with pytest.raises(EndpointError, match="failed: HTTP 500") as info:
        endpoint.complete(chats)
    # one request waited 0.2 + 0.4 + 0.8 s (± 25 %) before giving up; the other stopped with it, the rest never left
    assert time.perf_counter() - start < 3.5
    assert info.value.attempts == 4 and len(server.requests) <= 2 * 4
    time.sleep(0.1)
    assert len(server.requests) <= 2 * 4  # and nothing was sent after the error


def test_a_rejected_model_is_not_retried_and_not_skippable(server, tmp_path):
    server.faults.append("404")
    with pytest.raises(EndpointError, match=r"failed: HTTP 404 \(The model `nope` does not exist.\)") as info:
        _endpoint(server, tmp_path).complete(CHATS[:1], on_error="skip")
    assert info.value.attempts == 1 and not info.value.skippable and len(server.requests) == 1
    assert "neither retried nor skipped: check the model name" in str(info.value)
