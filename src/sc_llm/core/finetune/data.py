"""Tokenised prompt/answer examples for causal-LM fine-tuning: validation, padding, labels and batching.

An example is a pair of token id sequences: the prompt (conditioning, never scored) and the answer (scored,
followed by the end-of-sequence token). :func:`.collate` turns a list of them into padded ``input_ids``,
``attention_mask``, ``position_ids`` and ``labels`` with ``-100`` on every prompt and padding position, on
either padding side. :func:`plan_batches` yields the order in which examples are visited, epoch by epoch,
reproducibly from a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One training example: ``prompt_ids`` then ``answer_ids`` (the EOS token is appended by :func:`.collate`)."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.answer_ids) + 1


def as_examples(
    pairs: Sequence[Example | tuple[Sequence[int], Sequence[int]]], *, max_length: int | None, name: str = "train"
) -> list[Example]:
    """Validate ``(prompt_ids, answer_ids)`` pairs (or :class:`Example` objects) and return :class:`Example` objects.

    Raises a ``ValueError`` naming the remedy for an empty answer, a non-integer or negative id, or an example
    that does not fit in ``max_length`` tokens (prompt + answer + EOS).
    """
    out = []
    for i, pair in enumerate(pairs):
        prompt, answer = (pair.prompt_ids, pair.answer_ids) if isinstance(pair, Example) else pair
        prompt, answer = _ids(prompt, name, i, "prompt"), _ids(answer, name, i, "answer")
        if len(prompt) == 0:
            msg = f"{name} example {i} has an empty prompt; start it with at least one token (e.g. the BOS token)."
            raise ValueError(msg)
        if len(answer) == 0:
            msg = f"{name} example {i} has an empty answer; every example needs at least one answer token."
            raise ValueError(msg)
        example = Example(prompt, answer)
        if max_length is not None and len(example) > max_length:
            msg = (
                f"{name} example {i} needs {len(example)} tokens (prompt {len(prompt)} + answer {len(answer)} + EOS)"
                f" but max_length={max_length}: use fewer genes per cell sentence (n_genes) or raise max_length."
            )
            raise ValueError(msg)
        out.append(example)
    return out


def _ids(seq: Sequence[int], name: str, i: int, part: str) -> tuple[int, ...]:
    arr = np.asarray(seq)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)) or (arr.size and arr.min() < 0):
        msg = f"{name} example {i}: the {part} must be a 1-D sequence of non-negative integer token ids."
        raise ValueError(msg)
    return tuple(int(t) for t in arr)


def collate(examples: Sequence[Example], *, pad_token_id: int, eos_token_id: int, padding_side: str = "right"):
    """Pad examples into a batch of tensors; labels are ``-100`` on prompt and padding positions.

    Returns a dict of ``(batch, length)`` long tensors: ``input_ids``, ``attention_mask``, ``position_ids``
    (counted from the first real token, so left padding does not shift positions) and ``labels`` (the answer
    tokens and the EOS, unshifted: position ``t`` holds the token the model should predict from ``t - 1``).
    """
    import torch

    if padding_side not in ("right", "left"):
        msg = f"padding_side must be 'right' or 'left', got {padding_side!r}."
        raise ValueError(msg)
    length = max(len(e) for e in examples)
    n = len(examples)
    input_ids = torch.full((n, length), pad_token_id, dtype=torch.long)
    labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((n, length), dtype=torch.long)
    for row, e in enumerate(examples):
        ids = torch.tensor((*e.prompt_ids, *e.answer_ids, eos_token_id), dtype=torch.long)
        start = 0 if padding_side == "right" else length - len(ids)
        input_ids[row, start : start + len(ids)] = ids
        attention_mask[row, start : start + len(ids)] = 1
        labels[row, start + len(e.prompt_ids) : start + len(ids)] = ids[len(e.prompt_ids) :]
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids, "labels": labels}


def plan_batches(
    lengths: np.ndarray, *, batch_size: int, seed: int, epoch: int, token_budget: int | None = None
) -> list[np.ndarray]:
    """The batches of one epoch as arrays of example indices, shuffled reproducibly from ``(seed, epoch)``.

    Without ``token_budget``: a random permutation cut into batches of ``batch_size``. With it: examples are
    shuffled, sorted by length within pools of ``50 * batch_size``, cut into batches whose padded size
    (``n * longest``) stays within ``token_budget`` tokens (and at most ``batch_size`` examples), and the
    batches are shuffled; similar lengths share a batch, so less compute goes to padding.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if token_budget is None:
        return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    pool = 50 * batch_size
    batches: list[np.ndarray] = []
    for s in range(0, len(order), pool):
        chunk = order[s : s + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        current: list[int] = []
        for idx in chunk:
            longest = max(lengths[idx], max((lengths[j] for j in current), default=0))
            if current and (len(current) >= batch_size or (len(current) + 1) * longest > token_budget):
                batches.append(np.asarray(current))
                current = []
            current.append(int(idx))
        batches.append(np.asarray(current))
    return [batches[i] for i in rng.permutation(len(batches))]
