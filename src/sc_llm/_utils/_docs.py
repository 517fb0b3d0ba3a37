"""Parameter documentation written once and shared by the functions that take the same parameters.

A docstring names a snippet on a line of its own, indented as a parameter (``    {llm_backend}``);
:func:`doc_params` puts the snippet there. Only whole lines are replaced, so the other braces of a docstring
(``{'temperature': 0}``, ``{sentence}``) need no escaping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

LLM_BACKEND = """\
    batch_size
        Local backend: cells per forward pass.
    length_normalize
        Local backend: compare mean instead of summed log-probabilities per answer token.
    chat_template
        Local backend: wrap the prompt in the tokenizer's chat template (``None``: when it has one).
    device, dtype
        Local backend: device (``None``: CUDA, MPS, CPU) and dtype (``None``: bf16 on CUDA, fp32 elsewhere).
    gguf_file
        Local backend: a GGUF file inside ``model``'s folder to load (dequantised by transformers).
    revision
        Local backend: hub revision.
    trust_remote_code
        Local backend: allow custom model code from the checkpoint.
    base_url
        Endpoint URL ending in ``/v1`` (default ``$SC_LLM_OPENAI_BASE_URL``, then ``$OPENAI_BASE_URL``). The API
        key is read from ``$SC_LLM_OPENAI_API_KEY`` or ``$OPENAI_API_KEY`` only, and never stored.
    cache_dir
        Endpoint: folder caching every answer, so that a rerun (or a resumed run) asks nothing twice.
    endpoint_kwargs
        Endpoint: ``max_concurrency`` (4), ``timeout`` (60 s), ``max_retries`` (4), ``backoff`` (1 s),
        ``params`` (sampling, default ``{'temperature': 0, 'max_tokens': 512}``; ``None`` drops one, as
        o-series models need), ``on_error`` (``'raise'``, or ``'skip'`` to keep going for requests that still
        fail: ``llm_rerank`` keeps the first candidate, ``llm_annotate`` leaves the label missing),
        ``api_key_env``."""

MOD = """\
    mod
        Modality to use when ``adata`` is a MuData (default ``'rna'``)."""

COPY = """\
    copy
        Return a copy instead of writing to ``adata``."""

SNIPPETS = {"llm_backend": LLM_BACKEND, "mod": MOD, "copy": COPY}


def doc_params(**snippets: str) -> Callable[[F], F]:
    """Put each named snippet (default: the ones of this module) where the docstring has ``    {name}``."""

    def decorate(func: F) -> F:
        doc = func.__doc__ or ""
        for name, text in {**SNIPPETS, **snippets}.items():
            doc = doc.replace(f"    {{{name}}}\n", text + "\n")
        func.__doc__ = doc
        return func

    return decorate
