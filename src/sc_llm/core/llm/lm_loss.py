"""Answer-only next-token loss of a causal LM on collated batches (see :mod:`.training_data`)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .training_data import IGNORE_INDEX, Example, collate


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

    from ..device import autocast

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
