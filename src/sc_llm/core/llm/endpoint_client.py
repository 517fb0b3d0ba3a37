"""The client core every OpenAI-compatible endpoint shares: key, retries, thread pool, answer cache, one error.

The API key is read from the environment when a client is built and handed to the ``openai`` client only: it is
never an attribute of an endpoint, never in its ``repr``, logs or cache files. :class:`ResponseCache` keys on a
hash of the input (messages, a text), the model name, the base URL and the request parameters, and holds one
JSON file per answer, written atomically, so an interrupted or repeated run pays only for what it has not asked
yet. Requests that fail for good end in one :class:`~sc_llm.core.llm.endpoint_errors.EndpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.atomic import write_json
from ..base.deps import import_optional
from .endpoint_errors import (
    BadResponseError,
    EndpointError,
    RefusedAnswerError,
    failure_message,
    what_happened,
)

BASE_URL_ENV = ("SC_LLM_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = ("SC_LLM_OPENAI_API_KEY", "OPENAI_API_KEY")
_NO_KEY = "no-key"  # local servers (vLLM, llama.cpp) accept any key; the client refuses an empty one
# what the tools take in `endpoint_kwargs=` (``on_error`` is the tools', the rest the clients')
ENDPOINT_OPTIONS = frozenset(
    {"max_concurrency", "timeout", "max_retries", "backoff", "params", "on_error", "api_key_env"}
)


def _first_env(names: Sequence[str]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def resolve_base_url(base_url: str | None) -> str | None:
    """``base_url``, else ``$SC_LLM_OPENAI_BASE_URL``, else ``$OPENAI_BASE_URL``, else ``None`` (OpenAI's own)."""
    return base_url or _first_env(BASE_URL_ENV)


@dataclass
class EndpointStats:
    """What a batch of requests cost: requests sent, answers received, cache hits, retries, failures, seconds."""

    requests: int = 0
    answered: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Thread-safe increments."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def to_dict(self) -> dict:
        """Plain numbers for ``.uns``."""
        names = ("requests", "answered", "cache_hits", "retries", "failed", "seconds")
        return {k: getattr(self, k) for k in names}


class ResponseCache:
    """One JSON file per request under ``folder``, named by the request's SHA-256, written atomically."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(request: dict) -> str:
        """SHA-256 of the request's canonical JSON (input, model, base URL, parameters)."""
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> Any:
        """The cached answer (any JSON value), or ``None`` (also for an unreadable file, which is asked again)."""
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())["content"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def put(self, key: str, request: dict, content: Any) -> None:
        """Write the answer (and the request, which holds no secret) to a temporary file, then rename it."""
        data = {"request": request, "content": content}
        write_json(self.folder / f"{key}.json", data, indent=None, sort_keys=False, ensure_ascii=False)


class _GaveUp(Exception):  # internal control flow, never seen by callers
    """A request failed for good: the client's exception and the attempts it took."""

    def __init__(self, cause: BaseException, attempts: int):
        super().__init__(str(cause))
        self.cause, self.attempts = cause, attempts


class _Aborted(Exception):  # internal control flow, never seen by callers
    """Another request of the call failed for good, so this one stops instead of retrying."""


@dataclass
class RunState:
    """One call's counters, its stop signal and its first failure (requests still in flight keep their own)."""

    stats: EndpointStats = field(default_factory=EndpointStats)
    abort: threading.Event = field(default_factory=threading.Event)
    failure: _GaveUp | None = None


class EndpointClient:
    """The shared part of the OpenAI-compatible clients: the key from the environment, retries, the pool, the cache.

    Subclasses (:class:`~sc_llm.core.llm.endpoint.ChatEndpoint`,
    :class:`~sc_llm.core.llm.embeddings.EmbeddingsEndpoint`) send one kind of request through ``_guarded``
    (retries; ``on_error``) inside jobs run by ``_run`` (concurrency, fail-fast, the one error). Parameters:
    see :class:`~sc_llm.core.llm.endpoint.ChatEndpoint`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: Sequence[str] = API_KEY_ENV,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        cache_dir: str | os.PathLike | None = None,
    ):
        openai = import_optional("openai", "llm", package="openai")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            msg = "Need max_concurrency ≥ 1, max_retries ≥ 0, timeout > 0 and backoff ≥ 0."
            raise ValueError(msg)
        self.model, self.base_url = model, resolve_base_url(base_url)
        self.max_concurrency, self.timeout = max_concurrency, timeout
        self.max_retries, self.backoff = max_retries, backoff
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        key = _first_env(api_key_env)
        if key is None and self.base_url is None:
            msg = (
                f"No API key for OpenAI's API: set one of the environment variables {list(api_key_env)} "
                "(it is read from there only), or pass `base_url=` for a server that needs none."
            )
            raise ValueError(msg)
        self._openai = openai
        self._client = openai.OpenAI(api_key=key or _NO_KEY, base_url=self.base_url, timeout=timeout, max_retries=0)
        self._retryable = (
            openai.RateLimitError,
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.InternalServerError,
            openai.APIResponseValidationError,
            json.JSONDecodeError,
            BadResponseError,
        )
        # a request the server rejects (too long, unprocessable) can be skipped; a bad key or model name cannot
        skippable = (openai.BadRequestError, openai.UnprocessableEntityError, RefusedAnswerError)
        self._skippable = (*self._retryable, *skippable)
        self._final = (openai.APIError, RefusedAnswerError)  # not retried, but reported as an EndpointError
        self.stats = EndpointStats()

    @property
    def url(self) -> str:
        """The base URL requests go to (OpenAI's own when none is set)."""
        return self.base_url or "https://api.openai.com/v1"

    def describe(self) -> dict:
        """What to record in ``.uns`` (no key, no client)."""
        return {
            "model": self.model,
            "base_url": self.url,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    def _wait(self, attempt: int, error: Exception) -> float:
        response = getattr(error, "response", None)
        retry_after = getattr(response, "headers", {}).get("retry-after") if response is not None else None
        try:
            if retry_after is not None:
                return min(float(retry_after), 60.0)
        except ValueError:
            pass
        return min(self.backoff * 2**attempt * random.uniform(0.75, 1.25), 60.0)

    def _call(self, send: Callable[[], Any], state: RunState) -> Any:
        """``send()`` with retries; raises ``_GaveUp`` once it fails for good, ``_Aborted`` when another did."""
        for attempt in range(self.max_retries + 1):
            if state.abort.is_set():
                raise _Aborted
            try:
                return send()
            except self._retryable as e:
                if attempt == self.max_retries:
                    raise _GaveUp(e, attempt + 1) from e
                state.stats.add(retries=1)
                if state.abort.wait(self._wait(attempt, e)):  # woken early when another request gave up
                    raise _Aborted from e
            except self._final as e:
                raise _GaveUp(e, attempt + 1) from e
        raise AssertionError  # unreachable: the loop returns or raises  # pragma: no cover

    def _guarded(self, send: Callable[[], Any], on_error: str, state: RunState) -> Any:
        """``send()`` with retries; ``None`` for a request that failed for good when ``on_error='skip'`` lets it go."""
        try:
            return self._call(send, state)
        except _GaveUp as failed:
            if on_error == "skip" and isinstance(failed.cause, self._skippable):
                state.stats.add(failed=1)
                return None
            if state.failure is None:
                state.failure = failed
            state.abort.set()  # the other requests stop instead of retrying
            raise

    def _run(self, jobs: Sequence, one: Callable, *, on_error: str, progress: bool, unit: str, done) -> list:
        """``one(job, on_error, state)`` for every job on the pool, results in order; a failure raises one error.

        ``done(stats)`` says ``(answers at hand, answers asked for, their unit)`` for the error's message. After
        the first request that fails for good, the others stop (no more retries, queued ones not sent) and one
        :class:`~sc_llm.core.llm.endpoint_errors.EndpointError` is raised from the client's exception.
        """
        from tqdm.auto import tqdm

        if on_error not in ("raise", "skip"):
            msg = f"`on_error` must be 'raise' or 'skip', got {on_error!r}."
            raise ValueError(msg)
        state = RunState()
        self.stats = state.stats
        start = time.perf_counter()
        results: list = [None] * len(jobs)
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency)
        bar = tqdm(total=len(jobs), desc=f"asking {self.model}", unit=unit, disable=not progress)
        finished = False
        try:
            futures = {pool.submit(one, job, on_error, state): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
            finished = True
        except (_GaveUp, _Aborted):
            if state.failure is None:  # pragma: no cover - _Aborted only follows a recorded failure
                raise
            raise self._error(state.failure, *done(state.stats)) from state.failure.cause
        finally:
            state.abort.set()  # no retry goes on after this call returned or raised
            pool.shutdown(wait=finished, cancel_futures=True)  # on a failure, requests in flight end on their own
            bar.close()
            state.stats.seconds = time.perf_counter() - start
        return results

    def _error(self, failed: _GaveUp, n_done: int, total: int, unit: str) -> EndpointError:
        what, status = what_happened(failed.cause, self._openai, timeout=self.timeout)
        skippable = isinstance(failed.cause, self._skippable)
        cache = str(self.cache.folder) if self.cache else None
        limits = {"attempts": failed.attempts, "max_retries": self.max_retries}
        where = {"url": self.url, "model": self.model}
        msg = failure_message(
            what,
            **where,
            **limits,
            done=n_done,
            total=total,
            cache=cache,
            skippable=skippable,
            rejected=status in (400, 422),
            unit=unit,
        )
        return EndpointError(
            msg, **where, status=status, attempts=failed.attempts, skippable=skippable, cause=failed.cause
        )
