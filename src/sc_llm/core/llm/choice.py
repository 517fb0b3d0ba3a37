"""Pick one candidate per prompt with a local causal LM (log-likelihood) or an endpoint (parsed answer text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .answer_parsing import final_answer, match_answers
from .rerank_prompts import PromptTemplate
from .scoring import encode_answer, encode_prompt, end_token_id, score_candidates, uses_chat_template


def conversations(
    template: PromptTemplate, sentences: Sequence[str], candidates: Sequence[Sequence[str]], *, organism: str
) -> list[list[dict]]:
    """One chat (list of messages) per cell."""
    return [template.messages(s, candidates=c, organism=organism) for s, c in zip(sentences, candidates, strict=True)]


def local_scores(
    model,
    tokenizer,
    chats: Sequence[list[dict]],
    candidates: Sequence[Sequence[str]],
    *,
    template: PromptTemplate,
    chat_template: bool | None = None,
    batch_size: int = 8,
    length_normalize: bool = False,
    dtype: Any = None,
    progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """Log-likelihood of each cell's candidates, and whether the chat template was used."""
    chat = uses_chat_template(tokenizer, chat_template)
    end = end_token_id(tokenizer, model)
    prompts = [encode_prompt(tokenizer, m, chat=chat, cue=template.cue) for m in chats]
    vocab: dict[str, list[int]] = {}
    for cands in candidates:
        for c in cands:
            if c not in vocab:
                vocab[c] = encode_answer(tokenizer, template.answer_text(c, chat=chat), end_id=end)
    answers = [[vocab[c] for c in cands] for cands in candidates]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (end or 0)
    scores = score_candidates(
        model,
        prompts,
        answers,
        batch_size=batch_size,
        length_normalize=length_normalize,
        pad_id=pad,
        dtype=dtype,
        progress=progress,
    )
    return scores, chat


def choose_by_score(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best candidate per row (ties → the earlier one) and the softmax over each row's candidates."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    best = np.argmax(filled, axis=1)
    shifted = np.exp(filled - filled.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    return best, np.where(np.isnan(scores), np.nan, probs)


def endpoint_choice(
    endpoint, chats: Sequence[list[dict]], candidates: Sequence[Sequence[str]], *, on_error: str, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ask the endpoint for cells with more than one candidate; map the answers.

    Returns ``(index, mapped, asked)``: the chosen candidate (0 when unmappable or failed), whether the
    answer named a candidate, and whether the cell was asked at all (single-candidate cells are not).
    """
    asked = np.array([len(c) > 1 for c in candidates], dtype=bool)
    rows = np.flatnonzero(asked)
    texts, _ = endpoint.complete([chats[r] for r in rows], on_error=on_error, progress=progress)
    index = np.zeros(len(candidates), dtype=np.int64)
    mapped = ~asked
    sub_index, sub_mapped = match_answers(texts, [candidates[r] for r in rows])
    index[rows], mapped[rows] = sub_index, sub_mapped
    return index, mapped, asked


def free_text_labels(texts: Sequence[str | None]) -> list[str | None]:
    """The answer part of free-text replies (reasoning and "Answer:" removed, first line, outer punctuation off)."""
    out = []
    for t in texts:
        answer = final_answer(t).strip(" \t\"'`*_.,;:!") if t is not None else ""
        out.append(answer or None)
    return out


def generate_answers(
    model,
    tokenizer,
    chats: Sequence[list[dict]],
    *,
    cue: str,
    chat_template: bool | None = None,
    max_new_tokens: int = 24,
    batch_size: int = 8,
    progress: bool = False,
) -> list[str]:
    """Greedy answers of a local causal LM, one per chat (left-padded batches, decoding stops at EOS)."""
    import torch
    from tqdm.auto import tqdm

    from ..base.device import autocast
    from .loading import compute_dtype

    chat = uses_chat_template(tokenizer, chat_template)
    end = end_token_id(tokenizer, model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    device = next(model.parameters()).device
    prompts = [encode_prompt(tokenizer, m, chat=chat, cue=cue) for m in chats]
    texts: list[str] = []
    with torch.inference_mode(), autocast(device, compute_dtype(model)):
        for lo in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress):
            batch = prompts[lo : lo + batch_size]
            width = max(len(p) for p in batch)
            ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in batch], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=end,
            )
            texts.extend(tokenizer.batch_decode(out[:, width:], skip_special_tokens=True))
    return texts
