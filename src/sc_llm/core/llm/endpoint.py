"""Chat completions from an OpenAI-compatible endpoint: concurrency limit, retries with backoff, a disk cache.

Works with OpenAI, DeepSeek and any server speaking the same protocol (vLLM, llama.cpp's server, …). The API key
is read from the environment when the client is built and handed to the ``openai`` client only: it is never an
attribute of :class:`ChatEndpoint`, never in its ``repr``, logs or cache files. The cache keys on a hash of the
messages, the model name, the base URL and the sampling parameters, and holds one JSON file per request,
written atomically, so an interrupted or repeated run pays only for what it has not asked yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.atomic import write_json
from ..base.deps import import_optional

BASE_URL_ENV = ("SC_LLM_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_ENV = ("SC_LLM_OPENAI_API_KEY", "OPENAI_API_KEY")
_NO_KEY = "no-key"  # local servers (vLLM, llama.cpp) accept any key; the client refuses an empty one


def _first_env(names: Sequence[str]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def resolve_base_url(base_url: str | None) -> str | None:
    """``base_url``, else ``$SC_LLM_OPENAI_BASE_URL``, else ``$OPENAI_BASE_URL``, else ``None`` (OpenAI's own)."""
    return base_url or _first_env(BASE_URL_ENV)


class EmptyResponseError(RuntimeError):
    """The server answered, but with no choice to read (retried like a 5xx)."""


@dataclass
class EndpointStats:
    """What a batch of requests cost: requests sent, cache hits, retries, failures, seconds."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        """Thread-safe increments."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def to_dict(self) -> dict:
        """Plain numbers for ``.uns``."""
        return {k: getattr(self, k) for k in ("requests", "cache_hits", "retries", "failed", "seconds")}


class ResponseCache:
    """One JSON file per request under ``folder``, named by the request's SHA-256, written atomically."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(request: dict) -> str:
        """SHA-256 of the request's canonical JSON (messages, model, base URL, sampling parameters)."""
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached answer text, or ``None`` (also for an unreadable file, which is then re-requested)."""
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())["content"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def put(self, key: str, request: dict, content: str) -> None:
        """Write the answer (and the request, which holds no secret) to a temporary file, then rename it."""
        data = {"request": request, "content": content}
        write_json(self.folder / f"{key}.json", data, indent=None, sort_keys=False, ensure_ascii=False)


class ChatEndpoint:
    """Send chat requests to an OpenAI-compatible server.

    Parameters
    ----------
    model
        Model name as the server knows it (``'gpt-4o'``, ``'deepseek-reasoner'``, the name vLLM serves …).
    base_url
        Server URL ending in ``/v1``; default ``$SC_LLM_OPENAI_BASE_URL``, then ``$OPENAI_BASE_URL``, then
        OpenAI's.
    api_key_env
        Environment variables tried for the API key, in order (default ``SC_LLM_OPENAI_API_KEY``,
        ``OPENAI_API_KEY``). Without one, a placeholder key is sent (local servers ignore it).
    max_concurrency
        Requests in flight at once.
    timeout
        Seconds per request attempt.
    max_retries
        Extra attempts after a rate limit (429), a timeout, a connection error, a 5xx or an unreadable response,
        waiting ``backoff · 2**attempt`` seconds (± 25 %, at most 60 s; a server's ``Retry-After`` wins).
    backoff
        First wait in seconds.
    cache_dir
        Folder of the response cache; ``None`` disables it.
    params
        Sampling parameters sent with every request (default ``temperature=0``, ``max_tokens=512``); ``None``
        drops a default, e.g. ``{'temperature': None, 'max_tokens': None, 'max_completion_tokens': 4000}`` for
        OpenAI's o-series reasoning models, which reject both.
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
        params: dict[str, Any] | None = None,
    ):
        openai = import_optional("openai", "llm", package="openai")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            msg = "Need max_concurrency ≥ 1, max_retries ≥ 0, timeout > 0 and backoff ≥ 0."
            raise ValueError(msg)
        self.model, self.base_url = model, resolve_base_url(base_url)
        self.max_concurrency, self.timeout = max_concurrency, timeout
        self.max_retries, self.backoff = max_retries, backoff
        merged = {"temperature": 0.0, "max_tokens": 512, **(params or {})}
        self.params = {k: v for k, v in merged.items() if v is not None}  # None drops a default
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
            EmptyResponseError,
        )
        # a request the server rejects (too long, unprocessable) can be skipped; a bad key or model name cannot
        self._skippable = (*self._retryable, openai.BadRequestError, openai.UnprocessableEntityError)
        self.stats = EndpointStats()

    def __repr__(self) -> str:
        return f"ChatEndpoint(model={self.model!r}, base_url={self.base_url!r}, params={self.params!r})"

    def describe(self) -> dict:
        """What to record in ``.uns`` (no key, no client)."""
        return {
            "model": self.model,
            "base_url": self.base_url or "https://api.openai.com/v1",
            "params": dict(self.params),
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

    def _ask(self, messages: list[dict]) -> str:
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.chat.completions.create(model=self.model, messages=messages, **self.params)
                if not getattr(response, "choices", None):
                    msg = f"{self.model!r} answered without any choice"
                    raise EmptyResponseError(msg)
                return response.choices[0].message.content or ""
            except self._retryable as e:
                if attempt == self.max_retries:
                    raise
                self.stats.add(retries=1)
                time.sleep(self._wait(attempt, e))
        raise AssertionError  # unreachable: the loop returns or raises  # pragma: no cover

    def _one(self, messages: list[dict], on_error: str) -> str | None:
        request = {"messages": messages, "model": self.model, "base_url": self.base_url, "params": self.params}
        key = ResponseCache.key(request) if self.cache else None
        if self.cache and (hit := self.cache.get(key)) is not None:
            self.stats.add(cache_hits=1)
            return hit
        self.stats.add(requests=1)
        try:
            content = self._ask(messages)
        except Exception as e:
            if on_error == "raise" or not isinstance(e, self._skippable):
                raise
            self.stats.add(failed=1)
            return None
        if self.cache:
            self.cache.put(key, request, content)
        return content

    def complete(
        self, conversations: Sequence[list[dict]], *, on_error: str = "raise", progress: bool = False
    ) -> tuple[list[str | None], EndpointStats]:
        """Answer texts in the order of ``conversations``; ``None`` for a failed request when ``on_error='skip'``.

        With ``on_error='raise'`` the first request that still fails after its retries raises; answers received
        before are in the cache, so the next run resumes there.
        """
        from tqdm.auto import tqdm

        if on_error not in ("raise", "skip"):
            msg = f"`on_error` must be 'raise' or 'skip', got {on_error!r}."
            raise ValueError(msg)
        self.stats = EndpointStats()
        start = time.perf_counter()
        answers: list[str | None] = [None] * len(conversations)
        with (
            ThreadPoolExecutor(max_workers=self.max_concurrency) as pool,
            tqdm(total=len(conversations), desc=f"asking {self.model}", unit="request", disable=not progress) as bar,
        ):
            futures = {pool.submit(self._one, list(m), on_error): i for i, m in enumerate(conversations)}
            try:
                for future in as_completed(futures):
                    answers[futures[future]] = future.result()
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        self.stats.seconds = time.perf_counter() - start
        return answers, self.stats
