"""``sl.tl.llm_annotate``: zero-shot cell types from the cell sentence alone (C2S-Scale's cell-type prediction)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obs, get_modality
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ...metrics import classification_scores
from ._common import Backend, run_endpoint_choice, run_local_scores

if TYPE_CHECKING:
    from anndata import AnnData

    from ...core.llm.rerank_prompts import PromptTemplate


def _categories(categories: Sequence[str] | None) -> list[str] | None:
    if categories is None:
        return None
    if isinstance(categories, str):
        msg = "`categories` must be a list of cell types, not one string."
        raise TypeError(msg)
    cats = list(dict.fromkeys(str(c) for c in categories))
    if not cats or any(not c.strip() for c in cats):
        msg = "`categories` must hold at least one non-empty cell type."
        raise ValueError(msg)
    return cats


def _free_text(be: Backend, chats, template) -> tuple[list[str | None], dict]:
    """Labels without categories: greedy local answers or endpoint replies, reduced to their answer part."""
    from ...core.llm.choice import free_text_labels, generate_answers

    if be.name == "local":
        model, tokenizer = be.load(work="generate")
        texts = generate_answers(
            model,
            tokenizer,
            chats,
            cue=template.cue,
            chat_template=be.chat_template,
            batch_size=be.batch_size,
            progress=True,
        )
        return free_text_labels(texts), {}
    endpoint = be.endpoint()
    texts, stats = endpoint.complete(chats, on_error=be.endpoint_kwargs.get("on_error", "raise"), progress=True)
    return free_text_labels(texts), {"endpoint": endpoint.describe(), "stats": stats.to_dict()}


@doc_params()
def llm_annotate(
    adata: AnnData,
    *,
    model: str | os.PathLike,
    categories: Sequence[str] | None = None,
    sentence_key: str = "cell_sentence",
    n_genes: int | None = 50,
    backend: str = "local",
    truth_key: str | None = None,
    template: PromptTemplate | str | None = None,
    organism: str = "Homo sapiens",
    batch_size: int = 8,
    length_normalize: bool = False,
    chat_template: bool | None = None,
    device: Any = None,
    dtype: Any = None,
    gguf_file: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    base_url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    endpoint_kwargs: dict | None = None,
    mod: str | None = None,
    key_added: str = "llm_annotate",
    copy: bool = False,
) -> AnnData | None:
    """Annotate cells zero-shot from their sentence with a generative LLM (C2S-Scale's cell-type prediction).

    With ``categories``, the answer is always one of them: the local backend scores every category's
    log-likelihood after the prompt (no list in the prompt, as C2S models were trained); an endpoint gets the
    list in the prompt and its reply is mapped to one category (replies naming none are left missing and
    counted). Without ``categories``, the label is the model's own answer text (greedy for the local backend),
    reasoning and "Answer:" prefixes removed.

    Parameters
    ----------
    adata
        Cells with sentences (:func:`sc_llm.pp.cell_sentences`).
    model
        Local backend: a causal LM checkpoint (a C2S-Scale model, a chat model, a model fine-tuned with sc_llm).
        Endpoint: the served model name.
    categories
        Allowed cell types; ``None`` for free text.
    sentence_key
        ``.obs`` column with the cell sentences.
    n_genes
        Genes of each sentence put in the prompt (``None``: all).
    backend
        ``'local'`` or ``'openai'`` (an OpenAI-compatible endpoint).
    truth_key
        ``.obs`` column with true types; with ``categories``, metrics go to ``.uns``.
    template
        A :class:`~sc_llm.core.llm.rerank_prompts.PromptTemplate` or a format string with ``{sentence}`` (and
        ``{candidates}`` for an endpoint with categories); default: C2S-Scale's cell-type prediction layout.
    organism
        Fills ``{organism}``.
    {llm_backend}
    {mod}
    key_added
        Prefix of the written keys.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obs[key_added]`` : :class:`pandas.Categorical`
        The predicted type (over ``categories`` when given; missing where an endpoint reply named none).
    ``adata.obsm[key_added + '_scores']`` : :class:`pandas.DataFrame`
        Local backend with ``categories``: one column of log-likelihoods per category.
    ``adata.uns[key_added]`` : :class:`dict`
        ``params`` (backend, model, ``categories``, ``n_genes``, ``organism``, ``template``, backend options,
        never an API key); endpoint: ``n_unmapped`` and request ``stats``; ``metrics`` with ``truth_key`` and
        ``categories``.
    """
    from ...core.llm.choice import conversations
    from ...core.llm.rerank_prompts import ANNOTATE, ANNOTATE_CHOICES, as_template

    opts = {"batch_size": batch_size, "length_normalize": length_normalize, "chat_template": chat_template}
    opts |= {"device": device, "dtype": dtype, "gguf_file": gguf_file, "revision": revision}
    opts |= {"trust_remote_code": trust_remote_code, "base_url": base_url, "cache_dir": cache_dir}
    be = Backend(backend, model, endpoint_kwargs=dict(endpoint_kwargs or {}), **opts)
    cats = _categories(categories)
    default = ANNOTATE_CHOICES if cats is not None and backend == "openai" else ANNOTATE
    prompt = as_template(template, default, name="custom_annotate")
    target = get_modality(adata, mod)
    sentences = read_sentences(target, sentence_key, n_genes=n_genes, empty="error")
    truth = check_obs(target, truth_key) if truth_key is not None else None
    per_cell = [cats or []] * target.n_obs
    chats = conversations(prompt, sentences, per_cell, organism=organism)

    start = logg.info(f"annotating {target.n_obs} cells with {str(model)!r} ({backend} backend)")
    params = be.params() | {"categories": cats or [], "sentence_key": sentence_key, "n_genes": n_genes}
    params |= {"organism": organism, "template": prompt.to_dict(), "truth_key": truth_key or ""}
    uns: dict[str, Any] = {"params": params}
    scores = None
    if cats is None:
        labels, extra = _free_text(be, chats, prompt)
        params |= {k: v for k, v in extra.items() if k == "endpoint"}
        uns |= {k: v for k, v in extra.items() if k == "stats"}
        values = pd.Categorical(labels)
    else:
        runner = run_local_scores if backend == "local" else run_endpoint_choice
        result = runner(be, chats, per_cell, template=prompt)
        index = result["index"]
        if backend == "local":
            scores, params["chat_template"] = result["scores"], result["chat_template"]
            params["dtype"] = result["dtype"]
            values = pd.Categorical.from_codes(index, categories=cats)
        else:
            params["endpoint"] = result["endpoint"]
            uns |= {"n_unmapped": int((~result["mapped"]).sum()), "stats": result["stats"]}
            values = pd.Categorical.from_codes(np.where(result["mapped"], index, -1), categories=cats)
        if truth is not None:
            has = truth.notna().to_numpy()
            pred = np.asarray(values.astype(object), dtype=object)
            pred[pd.isna(values)] = "<unmapped>"  # a reply naming no category counts as wrong
            uns["metrics"] = classification_scores(truth[has].astype(str), pred[has])

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obs[key_added] = pd.Categorical(values)
    if scores is not None:
        target.obsm[f"{key_added}_scores"] = pd.DataFrame(scores, index=target.obs_names, columns=cats)
    target.uns[key_added] = uns
    logg.info("    finished", time=start, deep=f"added '{key_added}' (adata.obs)")
    return adata if copy else None
