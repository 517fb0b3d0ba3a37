"""Score candidate answers by their log-likelihood under a causal LM, given a prompt (tensor-only core).

For every prompt and each of its candidates, the score is ``sum_t log p(answer_t | prompt, answer_<t)`` over the
candidate's tokens (optionally divided by their number). Instead of running ``prompt + candidate`` once per
candidate, each batch of prompts is run once with a KV cache, the cache is gathered once per candidate, and only
the short answers go through the model again: a batch costs one prompt forward and one answer forward.
Prompts are left-padded with explicit position ids, answers right-padded, so padding never changes a score
(the tests compare with one unpadded forward per prompt + candidate).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base.device import autocast


def uses_chat_template(tokenizer, chat_template: bool | None) -> bool:
    """``None`` → whether the tokenizer has a chat template; ``True`` without one raises."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if chat_template and not has:
        msg = "`chat_template=True` but the tokenizer has no chat template; pass `chat_template=False`."
        raise ValueError(msg)
    return has if chat_template is None else bool(chat_template)


def end_token_id(tokenizer, model=None) -> int | None:
    """The token that ends an answer: the model's generation EOS (first one if several), else the tokenizer's."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(eos, list | tuple):
        eos = eos[0] if eos else None
    return eos if eos is not None else tokenizer.eos_token_id


def encode_prompt(tokenizer, messages: list[dict], *, chat: bool, cue: str = "Answer:") -> list[int]:
    """Token ids of a prompt: the chat template with the assistant turn opened, or plain text ending in ``cue``."""
    if chat:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    text = "\n\n".join(m["content"] for m in messages) + (f"\n{cue}" if cue else "")
    ids = list(tokenizer(text)["input_ids"])  # with BOS where the tokenizer adds one
    if ids and tokenizer.eos_token_id is not None and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return ids


def encode_answer(tokenizer, text: str, *, end_id: int | None) -> list[int]:
    """Token ids of one answer, followed by ``end_id`` (so that a candidate cannot win as a prefix of another)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if end_id is not None:
        ids.append(int(end_id))
    if not ids:
        msg = f"Candidate {text!r} has no tokens and the tokenizer no end token."
        raise ValueError(msg)
    return ids


def _pad(seqs: Sequence[Sequence[int]], pad_id: int, *, left: bool, device):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[row, span] = torch.as_tensor(list(s), dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


def _cache_kwarg(model) -> str:
    """``'cache'`` (transformers ≥ 5.x) or ``'past_key_values'`` (older releases), as the model's forward names it."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _score_batch(model, prompts, answers, *, pad_id: int, normalize: bool, dtype) -> list[np.ndarray]:
    """Scores for one batch: ``answers[b]`` are the candidate token lists of ``prompts[b]``."""
    import torch

    device = next(model.parameters()).device
    ids, mask = _pad(prompts, pad_id, left=True, device=device)
    with autocast(device, dtype):
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
    first_logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    owner = torch.as_tensor([b for b, cands in enumerate(answers) for _ in cands], device=device)
    flat = [a for cands in answers for a in cands]
    cand, cmask = _pad(flat, pad_id, left=False, device=device)
    cache = out.cache if "cache" in out else out.past_key_values
    cache.batch_select_indices(owner)  # one copy of the prompt's keys/values per candidate
    positions = mask.sum(-1)[owner, None] + torch.arange(cand.shape[1], device=device)[None]
    with autocast(device, dtype):
        logits = model(
            input_ids=cand,
            attention_mask=torch.cat([mask[owner], cmask], dim=1),
            position_ids=positions,
            use_cache=True,
            **{_cache_kwarg(model): cache},
        ).logits
    logp = first_logp[owner].gather(1, cand[:, :1]).squeeze(1)
    if cand.shape[1] > 1:
        rest = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(2, cand[:, 1:, None]).squeeze(2)
        logp = logp + (rest * cmask[:, 1:]).sum(1)
    if normalize:
        logp = logp / cmask.sum(1)
    scores = logp.double().cpu().numpy()
    bounds = np.cumsum([0, *(len(c) for c in answers)])
    return [scores[lo:hi] for lo, hi in itertools.pairwise(bounds)]


def score_candidates(
    model,
    prompts: Sequence[Sequence[int]],
    answers: Sequence[Sequence[Sequence[int]]],
    *,
    batch_size: int = 8,
    length_normalize: bool = False,
    pad_id: int = 0,
    dtype: Any = None,
    progress: bool = False,
) -> np.ndarray:
    """Log-likelihood of each candidate answer given its prompt.

    Parameters
    ----------
    model
        A causal LM (``transformers`` ``PreTrainedModel`` with a KV cache), already on its device.
    prompts
        Token ids of each prompt.
    answers
        For each prompt, the token ids of each of its candidates (the number may differ between prompts).
    batch_size
        Prompts per forward pass (their candidates go together in the second pass).
    length_normalize
        Divide each sum by the candidate's number of tokens (a mean log-probability per token).
    pad_id
        Any valid token id; padded positions are masked.
    dtype
        Autocast dtype (e.g. ``torch.bfloat16``); ``None``: the dtype the model was loaded to compute in
        (``sc_llm.core.llm.loading.compute_dtype``), fp32 for a model loaded elsewhere.
    progress
        Show a progress bar.

    Returns
    -------
    ``(n_prompts, max_candidates)`` float64 array; ``NaN`` where a prompt has fewer candidates.
    """
    import torch
    from tqdm.auto import tqdm

    if len(prompts) != len(answers):
        msg = f"Got {len(prompts)} prompts but {len(answers)} candidate lists."
        raise ValueError(msg)
    if batch_size < 1:
        msg = f"`batch_size` must be positive, got {batch_size}."
        raise ValueError(msg)
    if any(len(p) == 0 for p in prompts) or any(len(c) == 0 for c in answers):
        msg = "Every prompt needs at least one token and at least one candidate."
        raise ValueError(msg)
    from .loading import compute_dtype

    dtype = compute_dtype(model) if dtype is None else dtype
    width = max((len(c) for c in answers), default=0)
    out = np.full((len(prompts), width), np.nan)
    order = np.argsort([len(p) for p in prompts], kind="stable")  # similar lengths together: less padding
    bar = tqdm(total=len(prompts), desc="scoring candidates", unit="prompt", disable=not progress)
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size]
            scores = _score_batch(
                model,
                [prompts[r] for r in rows],
                [answers[r] for r in rows],
                pad_id=pad_id,
                normalize=length_normalize,
                dtype=dtype,
            )
            for r, s in zip(rows, scores, strict=True):
                out[r, : len(s)] = s
            bar.update(len(rows))
    bar.close()
    return out
