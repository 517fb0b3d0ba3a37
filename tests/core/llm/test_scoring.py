import numpy as np
import pytest
import torch

from sc_llm.core.llm.choice import choose_by_score, local_scores
from sc_llm.core.llm.loading import load_causal_lm
from sc_llm.core.llm.rerank_prompts import RERANK
from sc_llm.core.llm.scoring import encode_answer, encode_prompt, score_candidates

SENTENCES = ["CD3D CD3E IL7R LTB MALAT1", "LYZ S100A8 S100A9 FCN1", "MS4A1 CD79A", "NKG7 GNLY GZMB PRF1 CCL5 CST7"]
CANDIDATES = [
    ["CD4 T cells", "CD8 T cells", "NK cells"],
    ["CD14+ Monocytes", "B cells"],
    ["B cells"],
    ["NK cells", "CD8 T cells", "CD4 T cells"],
]


def _reference(net, prompts, answers):
    """One unpadded forward per prompt + candidate, summed in float64."""
    out = np.full((len(prompts), max(len(a) for a in answers)), np.nan)
    with torch.inference_mode():
        for i, (p, cands) in enumerate(zip(prompts, answers, strict=True)):
            for j, a in enumerate(cands):
                logp = torch.log_softmax(net(torch.tensor([p + a])).logits[0].double(), -1)
                out[i, j] = sum(logp[len(p) - 1 + t, a[t]].item() for t in range(len(a)))
    return out


def _encode(tok, net):
    prompts = [
        encode_prompt(tok, RERANK.messages(s, candidates=c), chat=False)
        for s, c in zip(SENTENCES, CANDIDATES, strict=True)
    ]
    answers = [[encode_answer(tok, f" {c}", end_id=tok.eos_token_id) for c in cands] for cands in CANDIDATES]
    return prompts, answers


@pytest.mark.parametrize("fixture", ["tiny_causal_lm", "tiny_neox_lm"])
def test_batched_scores_equal_one_unpadded_forward_per_candidate(request, fixture):
    net, tok = load_causal_lm(request.getfixturevalue(fixture), device="cpu")
    prompts, answers = _encode(tok, net)
    assert len({len(p) for p in prompts}) > 1 and len({len(a) for c in answers for a in c}) > 1  # padding happens
    batched = score_candidates(net, prompts, answers, batch_size=4, pad_id=tok.pad_token_id)
    single = score_candidates(net, prompts, answers, batch_size=1, pad_id=tok.pad_token_id)
    reference = _reference(net, prompts, answers)
    np.testing.assert_allclose(batched, reference, rtol=0, atol=1e-4)
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
    assert np.isnan(batched[2, 1:]).all() and np.isfinite(batched[2, 0])
    assert (batched[np.isfinite(batched)] < 0).all()


def test_length_normalised_scores_are_means_per_token(tiny_causal_lm):
    net, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    prompts, answers = _encode(tok, net)
    total = score_candidates(net, prompts, answers, batch_size=3)
    mean = score_candidates(net, prompts, answers, batch_size=3, length_normalize=True)
    lengths = np.array([[len(a) for a in c] + [np.nan] * (3 - len(c)) for c in answers])
    np.testing.assert_allclose(mean, total / lengths, atol=1e-6)


def test_local_choice_is_deterministic_and_always_a_candidate(tiny_causal_lm):
    net, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    chats = [RERANK.messages(s, candidates=c) for s, c in zip(SENTENCES, CANDIDATES, strict=True)]
    a, chat = local_scores(net, tok, chats, CANDIDATES, template=RERANK, batch_size=2)
    b, _ = local_scores(net, tok, chats, CANDIDATES, template=RERANK, batch_size=3)
    assert chat is False  # the tiny tokenizer has no chat template: plain prompt ending in "Answer:"
    np.testing.assert_allclose(a, b, atol=1e-5)
    index, probs = choose_by_score(a)
    assert all(0 <= i < len(c) for i, c in zip(index, CANDIDATES, strict=True))
    np.testing.assert_allclose(np.nansum(probs, axis=1), 1.0)
    assert probs[2, 0] == 1.0


def test_chat_template_wraps_the_prompt(tiny_causal_lm):
    _, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    with pytest.raises(ValueError, match="no chat template"):
        local_scores(None, tok, [], [], template=RERANK, chat_template=True)
    tok.chat_template = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"
    ids = encode_prompt(tok, [{"role": "user", "content": "LYZ"}], chat=True)
    assert tok.decode(ids) == "<|user|>LYZ<|assistant|>"


def test_input_checks(tiny_causal_lm):
    net, _ = load_causal_lm(tiny_causal_lm, device="cpu")
    with pytest.raises(ValueError, match="prompts but"):
        score_candidates(net, [[1, 2]], [])
    with pytest.raises(ValueError, match="at least one candidate"):
        score_candidates(net, [[1, 2]], [[]])
    with pytest.raises(ValueError, match="batch_size"):
        score_candidates(net, [[1, 2]], [[[3]]], batch_size=0)
