"""``sl.tl.llm_rerank``: a generative LLM picks each cell's type among its k-NN top-3 (paper 1's generative fusion)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obs, get_modality
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ...metrics import classification_scores
from ._common import Backend, as_categorical, run_endpoint_choice, run_local_scores

if TYPE_CHECKING:
    from anndata import AnnData

    from ...core.llm.rerank_prompts import PromptTemplate


def read_candidates(adata: AnnData, key: str) -> tuple[list[list[str]], list[str]]:
    """Each cell's candidates (``label_1``, ``label_2``, … without missing or repeated ones) and all categories."""
    if key not in adata.obsm:
        msg = (
            f"`{key}` not found in `adata.obsm` (available: {list(adata.obsm)}). Compute candidates first, e.g. "
            "`sl.tl.knn_annotate(adata, use_rep=..., label_key=...)`, which writes `.obsm['knn_label_top3']`."
        )
        raise KeyError(msg)
    frame = adata.obsm[key]
    cols = sorted((c for c in getattr(frame, "columns", []) if str(c).startswith("label_")), key=lambda c: int(c[6:]))
    if not isinstance(frame, pd.DataFrame) or not cols:
        msg = (
            f"`adata.obsm[{key!r}]` must be a DataFrame with columns label_1, label_2, … "
            "as `sl.tl.knn_annotate` writes."
        )
        raise ValueError(msg)
    categories: list[str] = []
    for c in cols:
        col = frame[c]
        values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col.dropna().unique()
        categories.extend(str(v) for v in values if str(v) not in categories)
    rows = [list(dict.fromkeys(str(v) for v in row if not pd.isna(v))) for row in frame[cols].itertuples(index=False)]
    empty = sum(not r for r in rows)
    if empty:
        msg = f"{empty} cell(s) have no candidate in `adata.obsm[{key!r}]`; subset them away or recompute the top-3."
        raise ValueError(msg)
    return rows, categories


def rerank_metrics(truth: pd.Series, first: np.ndarray, chosen: np.ndarray, candidates: list[list[str]]) -> dict:
    """First candidate vs reranked: scores, answers changed, and how many changes were right or wrong."""
    has = truth.notna().to_numpy()
    if not has.any():
        msg = "The truth column has no value for any cell."
        raise ValueError(msg)
    t = truth.astype(str).to_numpy()[has]
    f, c = first[has], chosen[has]
    changed = f != c
    kept = [cc for cc, h in zip(candidates, has, strict=True) if h]
    return {
        "first": classification_scores(t, f),
        "reranked": classification_scores(t, c),
        "n_changed": int(changed.sum()),
        "n_changed_correct": int((changed & (c == t)).sum()),
        "n_changed_from_correct": int((changed & (f == t)).sum()),
        "truth_in_candidates": float(np.mean([tt in cc for tt, cc in zip(t, kept, strict=True)])),
    }


@doc_params()
def llm_rerank(
    adata: AnnData,
    *,
    model: str | os.PathLike,
    candidates_key: str = "knn_label_top3",
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
    key_added: str = "llm_rerank",
    copy: bool = False,
) -> AnnData | None:
    """Let a generative LLM pick each cell's type among its candidates (e.g. the 10-NN top-3).

    The first paper's generative fusion: the prompt holds the cell's top genes and its candidate types in the
    order of the vote, and asks for one of them, keeping the first when unsure. The answer is always one of the
    candidates: the ``'local'`` backend scores each candidate's log-likelihood under a causal LM (deterministic,
    one batched pass, no free text); the ``'openai'`` backend asks an OpenAI-compatible endpoint and maps the
    reply to a candidate, falling back to the first candidate when the reply names none (counted). Cells with a
    single candidate are not asked.

    Parameters
    ----------
    adata
        Cells with sentences (:func:`sc_llm.pp.cell_sentences`) and candidates (:func:`sc_llm.tl.knn_annotate`).
    model
        Local backend: a causal LM checkpoint (hub id or folder, e.g. SmolLM2-Instruct, a C2S-Scale model).
        Endpoint: the served model name (``'gpt-4o'``, ``'o3-mini'``, ``'deepseek-reasoner'`` …).
    candidates_key
        ``.obsm`` DataFrame with ``label_1``, ``label_2``, … (most likely first), as ``knn_annotate`` writes.
    sentence_key
        ``.obs`` column with the cell sentences.
    n_genes
        Genes of each sentence put in the prompt (``None``: all).
    backend
        ``'local'`` (transformers, candidate log-likelihoods) or ``'openai'`` (an OpenAI-compatible endpoint).
    truth_key
        ``.obs`` column with true types; when given, metrics of first candidate vs reranked go to ``.uns``.
    template
        A :class:`~sc_llm.core.llm.rerank_prompts.PromptTemplate` or a format string with ``{sentence}`` and
        ``{candidates}`` (also ``{n_genes}``, ``{organism}``, ``{first}``); default: the paper's instruction.
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
        The chosen type, always one of the cell's candidates (categories of the candidates).
    ``adata.obs[key_added + '_changed']`` : ``bool``
        Whether it differs from the first candidate.
    ``adata.obsm[key_added + '_scores']`` : :class:`pandas.DataFrame`
        Local backend: ``score_1..k`` (candidate log-likelihoods, NaN where a cell has fewer candidates) and
        ``prob_1..k`` (softmax over the cell's candidates).
    ``adata.obs[key_added + '_mapped']`` : ``bool``
        Endpoint: whether the reply named a candidate (``False``: the first candidate was kept).
    ``adata.uns[key_added]`` : :class:`dict`
        ``params`` (backend, model, keys, ``n_genes``, ``organism``, ``template``, backend options; for the
        endpoint its URL and sampling parameters, never the key), ``n_changed``; endpoint: ``n_unmapped``,
        ``n_failed`` and request ``stats``; with ``truth_key``: ``metrics`` (``first`` and ``reranked``
        accuracy/macro scores, ``n_changed``, ``n_changed_correct``, ``n_changed_from_correct``,
        ``truth_in_candidates``); local backend: ``seconds`` (``load``, ``score``).
    """
    from ...core.llm.choice import conversations
    from ...core.llm.rerank_prompts import RERANK, as_template

    be = Backend(
        backend,
        model,
        batch_size=batch_size,
        length_normalize=length_normalize,
        chat_template=chat_template,
        device=device,
        dtype=dtype,
        gguf_file=gguf_file,
        revision=revision,
        trust_remote_code=trust_remote_code,
        base_url=base_url,
        cache_dir=cache_dir,
        endpoint_kwargs=dict(endpoint_kwargs or {}),
    )
    prompt = as_template(template, RERANK, name="custom_rerank")
    target = get_modality(adata, mod)
    candidates, categories = read_candidates(target, candidates_key)
    sentences = read_sentences(target, sentence_key, n_genes=n_genes, empty="error")
    truth = check_obs(target, truth_key) if truth_key is not None else None
    chats = conversations(prompt, sentences, candidates, organism=organism)

    start = logg.info(f"reranking {target.n_obs} cells' candidates with {str(model)!r} ({backend} backend)")
    result = (run_local_scores if backend == "local" else run_endpoint_choice)(be, chats, candidates, template=prompt)
    chosen = np.array([c[i] for c, i in zip(candidates, result["index"], strict=True)], dtype=object)
    first = np.array([c[0] for c in candidates], dtype=object)
    changed = chosen != first
    keys = {"candidates_key": candidates_key, "sentence_key": sentence_key, "n_genes": n_genes}
    keys |= {"organism": organism, "template": prompt.to_dict(), "truth_key": truth_key or ""}
    uns = _summary(be, backend, result, keys, changed)
    if truth is not None:
        uns["metrics"] = rerank_metrics(truth, first, chosen, candidates)

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.obs[key_added] = as_categorical(chosen, categories)
    target.obs[f"{key_added}_changed"] = changed
    written = [f"'{key_added}'", f"'{key_added}_changed'"]
    if backend == "local":
        k = result["scores"].shape[1]
        frame = pd.DataFrame(index=target.obs_names)
        for j in range(k):
            frame[f"score_{j + 1}"] = result["scores"][:, j]
        for j in range(k):
            frame[f"prob_{j + 1}"] = result["probs"][:, j]
        target.obsm[f"{key_added}_scores"] = frame
    else:
        target.obs[f"{key_added}_mapped"] = result["mapped"]
        written.append(f"'{key_added}_mapped'")
    target.uns[key_added] = uns
    logg.info("    finished", time=start, deep=f"added {', '.join(written)} (adata.obs), {uns['n_changed']} changed")
    return adata if copy else None


def _summary(be: Backend, backend: str, result: dict, keys: dict, changed: np.ndarray) -> dict[str, Any]:
    """``.uns`` of a rerank: params (backend's, the call's keys, chat template or endpoint) and what happened."""
    params = be.params() | keys
    uns: dict[str, Any] = {"params": params, "n_changed": int(changed.sum())}
    if backend == "local":
        params["chat_template"], params["dtype"] = result["chat_template"], result["dtype"]
        uns["seconds"] = result["seconds"]
        return uns
    params["endpoint"] = result["endpoint"]
    uns |= {"n_unmapped": int((~result["mapped"]).sum()), "stats": result["stats"]}
    uns["n_failed"] = result["stats"]["failed"]
    if uns["n_unmapped"]:
        logg.warning(
            f"{uns['n_unmapped']} of {int(result['asked'].sum())} replies named no candidate "
            f"({uns['n_failed']} requests failed); those cells keep their first candidate"
        )
    return uns
