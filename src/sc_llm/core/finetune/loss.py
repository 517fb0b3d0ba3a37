"""Answer-only next-token loss of a causal LM on collated batches (see :mod:`.training_data`)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import IGNORE_INDEX, Example, collate


def _accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(type(base).forward).parameters


def answer_loss_sum(model, batch: dict[str, Any]):
    """Summed cross-entropy over the scored (label ≠ -100) tokens of ``batch``, as a 0-d fp32 tensor.

    The output head only runs from the first scored position of the batch on (``logits_to_keep``, where the
    model supports it), since prompt positions are never scored; the loss is computed in fp32.
    """
    import torch.nn.functional as F

    labels = batch["labels"]
    length = labels.shape[1]
    first = int((labels != IGNORE_INDEX).any(0).nonzero()[0, 0])  # >= 1: every prompt holds a token
    keep = length - first + 1
    kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    if _accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = keep
    logits = model(**kwargs, use_cache=False).logits[:, -keep:]
    targets = labels[:, length - keep + 1 :]
    scored = targets != IGNORE_INDEX
    return F.cross_entropy(logits[:, :-1][scored].float(), targets[scored], reduction="sum")


def accumulate_gradients(model, batches: Sequence[dict[str, Any]], *, device, amp_dtype=None, scaler=None) -> float:
    """Back-propagate the mean answer-token loss of ``batches`` taken together; return that mean.

    Each micro-batch's summed loss is divided by the answer-token count of all of them, so the gradients
    equal those of one batch holding every example (gradient accumulation = a larger batch). ``scaler``: a
    ``torch.amp.GradScaler`` for fp16.
    """
    from ..base.device import autocast

    n_tokens = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)
    total = 0.0
    for batch in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast(device, amp_dtype):
            loss_sum = answer_loss_sum(model, batch)
        loss = loss_sum / n_tokens
        (scaler.scale(loss) if scaler is not None else loss).backward()
        total += float(loss_sum.detach())
    return total / n_tokens


def evaluate_loss(
    model,
    examples: Sequence[Example],
    *,
    batch_size: int,
    collate_kwargs: dict[str, Any],
    device,
    amp_dtype=None,
) -> float:
    """Mean cross-entropy per answer token (EOS included) over ``examples``, in eval mode, without gradients."""
    import torch

    from ..base.device import autocast

    was_training = model.training
    model.eval()
    order = np.argsort([len(e) for e in examples], kind="stable")  # similar lengths together: less padding
    total, n_tokens = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            batch = collate([examples[i] for i in order[s : s + batch_size]], **collate_kwargs)
            n_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device, amp_dtype):
                total += float(answer_loss_sum(model, batch))
    model.train(was_training)
    return total / n_tokens
