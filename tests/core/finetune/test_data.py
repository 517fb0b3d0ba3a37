import numpy as np
import pytest
import torch

from sc_llm.core.finetune.data import IGNORE_INDEX, Example, as_examples, collate, plan_batches
from sc_llm.core.finetune.loss import answer_loss_sum
from sc_llm.core.llm.loading import load_causal_lm

EXAMPLES = [Example((5, 6, 7), (8, 9)), Example((5,), (10, 11, 12, 13)), Example((5, 6), (14,))]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pad", [0, 2])  # pad == eos (GPT-style tokenizers without a pad token) must not matter
def test_collate_masks_prompt_and_padding_exactly(side, pad):
    batch = collate(EXAMPLES, pad_token_id=pad, eos_token_id=2, padding_side=side)
    assert batch["input_ids"].shape == (3, 6)
    for row, e in enumerate(EXAMPLES):
        n = len(e)
        real = slice(0, n) if side == "right" else slice(6 - n, 6)
        ids, mask, labels = batch["input_ids"][row], batch["attention_mask"][row], batch["labels"][row]
        assert ids[real].tolist() == [*e.prompt_ids, *e.answer_ids, 2]
        assert mask.tolist() == [1 if i in range(6)[real] else 0 for i in range(6)]
        expected = [IGNORE_INDEX] * 6
        start = real.start + len(e.prompt_ids)
        expected[start : real.stop] = [*e.answer_ids, 2]
        assert labels.tolist() == expected
        assert batch["position_ids"][row][real].tolist() == list(range(n))


def test_as_examples_errors_name_the_fix():
    with pytest.raises(ValueError, match="empty answer"):
        as_examples([([1, 2], [])], max_length=None)
    with pytest.raises(ValueError, match="empty prompt"):
        as_examples([([], [3])], max_length=None)
    with pytest.raises(ValueError, match=r"needs 6 tokens .* max_length=5: use fewer genes"):
        as_examples([([1, 2], [3, 4, 5])], max_length=5)
    with pytest.raises(ValueError, match="non-negative integer"):
        as_examples([([1.5], [3])], max_length=None)
    with pytest.raises(ValueError, match="non-negative integer"):
        as_examples([([1], [-3])], max_length=None)
    assert as_examples([(np.array([1, 2]), [3])], max_length=4) == [Example((1, 2), (3,))]


def test_plan_batches_covers_every_example_once_per_epoch_reproducibly():
    lengths = np.random.default_rng(0).integers(5, 50, 103)
    plan = plan_batches(lengths, batch_size=8, seed=3, epoch=1)
    assert sorted(np.concatenate(plan).tolist()) == list(range(103))
    assert all(len(b) == 8 for b in plan[:-1])
    again = plan_batches(lengths, batch_size=8, seed=3, epoch=1)
    assert all((a == b).all() for a, b in zip(plan, again, strict=True))
    other = plan_batches(lengths, batch_size=8, seed=3, epoch=2)
    assert not all((a == b).all() for a, b in zip(plan, other, strict=False))


def test_token_budget_batches_respect_budget_and_pad_less():
    lengths = np.random.default_rng(1).integers(5, 100, 400)
    plan = plan_batches(lengths, batch_size=16, seed=0, epoch=0, token_budget=600)
    assert sorted(np.concatenate(plan).tolist()) == list(range(400))
    assert all(len(b) <= 16 and len(b) * lengths[b].max() <= 600 for b in plan)

    def padded(p):
        return sum(len(b) * lengths[b].max() for b in p)

    plain = plan_batches(lengths, batch_size=16, seed=0, epoch=0)
    assert padded(plan) < 0.75 * padded(plain)


@pytest.mark.parametrize("fixture", ["tiny_causal_lm", "tiny_neox_lm"])
def test_loss_is_the_same_for_left_right_padding_and_unpadded(fixture, request):
    model, _ = load_causal_lm(request.getfixturevalue(fixture), device="cpu")
    kw = {"pad_token_id": 0, "eos_token_id": 0}
    with torch.no_grad():
        alone = [float(answer_loss_sum(model, collate([e], padding_side="right", **kw))) for e in EXAMPLES]
        right = float(answer_loss_sum(model, collate(EXAMPLES, padding_side="right", **kw)))
        left = float(answer_loss_sum(model, collate(EXAMPLES, padding_side="left", **kw)))
    assert right == pytest.approx(sum(alone), rel=1e-5)
    assert left == pytest.approx(sum(alone), rel=1e-5)
