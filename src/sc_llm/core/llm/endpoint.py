"""Chat completions from an OpenAI-compatible endpoint (:class:`ChatEndpoint`), on the shared client core.

Works with OpenAI, DeepSeek and any server speaking the same protocol (vLLM, llama.cpp's server,
``transformers serve``, …). Concurrency, retries, the answer cache, the API key rules and the one error of a
failed run are those of :mod:`sc_llm.core.llm.endpoint_client`; embeddings: :mod:`sc_llm.core.llm.embeddings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .endpoint_client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    EndpointClient,
    EndpointStats,
    ResponseCache,
    RunState,
    resolve_base_url,
)
from .endpoint_errors import BadResponseError, EmptyResponseError, EndpointError, RefusedAnswerError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "BadResponseError",
    "ChatEndpoint",
    "EmptyResponseError",
    "EndpointClient",
    "EndpointError",
    "EndpointStats",
    "RefusedAnswerError",
    "ResponseCache",
    "resolve_base_url",
]


class ChatEndpoint(EndpointClient):
    """Send chat requests to an OpenAI-compatible server.

    A request that still fails after its retries (or fails in a way no retry mends: a bad model name, a bad
    key) raises one :class:`~sc_llm.core.llm.endpoint_errors.EndpointError` naming the URL, what happened (the
    HTTP status, a timeout, a broken connection, a body that is not JSON), the attempts made, how many answers
    are in the cache and ``on_error='skip'``; the other requests in flight stop without retrying.

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

    def __init__(self, model: str, *, params: dict[str, Any] | None = None, **options: Any):
        super().__init__(model, **options)
        merged = {"temperature": 0.0, "max_tokens": 512, **(params or {})}
        self.params = {k: v for k, v in merged.items() if v is not None}  # None drops a default

    def __repr__(self) -> str:
        return f"ChatEndpoint(model={self.model!r}, base_url={self.base_url!r}, params={self.params!r})"

    def describe(self) -> dict:
        """What to record in ``.uns`` (no key, no client)."""
        return super().describe() | {"params": dict(self.params)}

    def _ask(self, messages: list[dict]) -> str:
        response = self._client.chat.completions.create(model=self.model, messages=messages, **self.params)
        if isinstance(response, str):  # the client hands back a body that is not JSON (an HTML page) as text
            msg = f"with a body that is not JSON: {' '.join(response.split())[:120]!r}"
            raise BadResponseError(msg)
        if not getattr(response, "choices", None):
            msg = f"{self.model!r} answered without any choice"
            raise EmptyResponseError(msg)
        return response.choices[0].message.content or ""

    def _one(self, messages: list[dict], on_error: str, state: RunState) -> str | None:
        request = {"messages": messages, "model": self.model, "base_url": self.base_url, "params": self.params}
        key = ResponseCache.key(request) if self.cache else None
        if self.cache and (hit := self.cache.get(key)) is not None:
            state.stats.add(cache_hits=1)
            return hit
        state.stats.add(requests=1)
        content = self._guarded(lambda: self._ask(messages), on_error, state)
        if content is None:
            return None
        state.stats.add(answered=1)
        if self.cache:
            self.cache.put(key, request, content)
        return content

    def complete(
        self, conversations: Sequence[list[dict]], *, on_error: str = "raise", progress: bool = False
    ) -> tuple[list[str | None], EndpointStats]:
        """Answer texts in the order of ``conversations``; ``None`` for a failed request when ``on_error='skip'``.

        With ``on_error='raise'`` the first request that still fails after its retries raises an
        :class:`~sc_llm.core.llm.endpoint_errors.EndpointError`; answers received before are in the cache, so
        the next run resumes there.
        """
        answers = self._run(
            [list(m) for m in conversations],
            self._one,
            on_error=on_error,
            progress=progress,
            unit="request",
            done=lambda stats: (stats.cache_hits + stats.answered, len(conversations), "requests"),
        )
        return answers, self.stats
