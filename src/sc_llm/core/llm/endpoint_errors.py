"""What an endpoint's failures say: one :class:`EndpointError` with the URL, status, retries, cache and remedy.

The ``openai`` client raises a different exception for each way a server can fail (``InternalServerError``,
``APITimeoutError``, ``APIConnectionError``, a bare ``json.JSONDecodeError`` for a body that is not JSON, or
no error at all but a ``str`` for an HTML page); :func:`what_happened` turns each into one sentence and
:func:`failure_message` into the message of the error the user sees.
"""

from __future__ import annotations

import json


class BadResponseError(RuntimeError):
    """The server answered, but not what the protocol says (not JSON, no choice, too few vectors): retried."""


class EmptyResponseError(BadResponseError):
    """The server answered, but with no choice to read (retried like a 5xx)."""


class RefusedAnswerError(RuntimeError):
    """The server answered, but the answer is unusable (non-finite or wrong-dimension vectors): not retried."""


class EndpointError(RuntimeError):
    """A request to an OpenAI-compatible endpoint failed for good (after its retries).

    Attributes: ``url`` (the base URL), ``model``, ``status`` (the HTTP status, ``None`` when there was no
    response: timeout, connection), ``attempts`` (of the request that failed), ``skippable`` (whether
    ``on_error='skip'`` would have gone on) and ``cause`` (the client's own exception, also ``__cause__``).
    """

    def __init__(self, message: str, *, url: str, model: str, status, attempts: int, skippable: bool, cause):
        super().__init__(message)
        self.url, self.model, self.status, self.attempts = url, model, status, attempts
        self.skippable, self.cause = skippable, cause


def _server_message(error) -> str:
    """The server's own error message, short, on one line."""
    body = getattr(error, "body", None)
    text = body.get("message", "") if isinstance(body, dict) else ""
    text = text or str(body or "") or getattr(error, "message", "")
    text = " ".join(str(text).split())
    return text[:200] + ("…" if len(text) > 200 else "")


def what_happened(error: BaseException, openai, *, timeout: float) -> tuple[str, int | None]:
    """One sentence on what went wrong, and the HTTP status (``None`` without a response)."""
    if isinstance(error, openai.APIStatusError):
        detail = _server_message(error)
        return f"HTTP {error.status_code}" + (f" ({detail})" if detail else ""), error.status_code
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within the {timeout:g} s timeout (the server hangs or is overloaded)", None
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        detail = f": {cause}" if cause is not None else ""
        return f"the connection failed or broke{detail} (is the server running?)", None
    if isinstance(error, json.JSONDecodeError):
        return f"HTTP 200 with a body that is not valid JSON ({error.msg}, at character {error.pos})", 200
    if isinstance(error, BadResponseError | RefusedAnswerError):
        return f"HTTP 200 but {error}", 200
    return f"{type(error).__name__}: {error}", getattr(error, "status_code", None)


def failure_message(
    what: str,
    *,
    url: str,
    model: str,
    attempts: int,
    max_retries: int,
    done: int,
    total: int,
    cache: str | None,
    skippable: bool,
    rejected: bool = False,
    unit: str = "requests",
) -> str:
    """The message of an :class:`EndpointError`: what happened, the retries, the cache, how to go on.

    ``rejected``: the server refused the request as such (HTTP 400, 422), which a bad model name and a too-long
    prompt both cause.
    """
    retries = attempts - 1
    lines = [
        f"The endpoint {url} (model {model!r}) failed: {what}.",
        f"The request was given up after {attempts} attempt(s) ({retries} retries; max_retries={max_retries}).",
    ]
    if cache is not None:
        lines.append(
            f"{done} of {total} {unit} of this call have their answer in the cache {cache}; "
            f"rerun the same call (same cache_dir) to resume: cached {unit} are not sent again."
        )
    else:
        lines.append(
            f"{done} of {total} {unit} were answered, but no cache_dir was set, so they are not kept: "
            "pass cache_dir= to keep every answer and resume after a failure."
        )
    if rejected:
        lines.append(
            "The server rejected the request itself, so it was not retried: check the model name and the request "
            "parameters; if only some requests are rejected (too long …), on_error='skip' "
            "(endpoint_kwargs={'on_error': 'skip'} in sc_llm's tools) goes on past them."
        )
    elif skippable:
        lines.append(
            "To go on past requests that still fail, pass on_error='skip' "
            "(endpoint_kwargs={'on_error': 'skip'} in sc_llm's tools); they are counted as failed."
        )
    else:
        lines.append("This error is neither retried nor skipped: check the model name, the URL and the API key.")
    return "\n".join(lines)
