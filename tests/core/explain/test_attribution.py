from __future__ import annotations

import numpy as np
import pytest
import torch

from sc_llm.core.explain.attribution import SentenceClassifier, baseline_ids, integrated_gradients, lime_gene_scores
from sc_llm.core.fusion.network import FusionClassifier
from sc_llm.core.text.encoder import TextEncoder
from sc_llm.core.text.gene_tokens import gene_token_spans

GENES = [f"GENE{i}" for i in range(100)]


@pytest.fixture(scope="module")
def classifier(tiny_bert_dir):
    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=16)
    torch.manual_seed(0)
    head = FusionClassifier([enc.dim, 3], 4, hidden=16).eval()  # text first, then a 3-d fixed input
    return SentenceClassifier(enc, head, text_index=0)


@pytest.fixture(scope="module")
def sentences():
    rng = np.random.default_rng(0)
    return [" ".join(rng.permutation(GENES)[:n]) for n in (30, 8, 14)]


FIXED = [np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)]


def target_logit(clf, input_ids, mask, targets):
    with torch.no_grad():
        pooled = clf.encoder.forward_pooled(input_ids, mask)
        logits = clf.head(pooled, torch.as_tensor(FIXED[0]))
    return logits.gather(1, torch.as_tensor(targets)[:, None])[:, 0].numpy()


@pytest.mark.parametrize("baseline", ["unk", "pad", "zero"])
def test_integrated_gradients_completeness(classifier, sentences, baseline):
    targets = [0, 2, 3]
    scores, delta, gap = integrated_gradients(
        classifier, sentences, targets, fixed_reps=FIXED, baseline=baseline, n_steps=64
    )
    ids, spans = gene_token_spans(classifier.encoder.genes, sentences)
    assert [len(s) for s in scores] == [len(s) for s in spans] == [14, 8, 14]
    # independent f(x) and f(baseline) through the encoder's own forward
    input_ids, mask = classifier.encoder.batch(ids)
    fx = target_logit(classifier, input_ids, mask, targets)
    if baseline != "zero":
        token = getattr(classifier.encoder.tokenizer, f"{baseline}_token_id")
        base_ids = baseline_ids(input_ids, spans, token)
        fb = target_logit(classifier, base_ids, mask, targets)
        np.testing.assert_allclose(gap, fx - fb, rtol=1e-4, atol=1e-5)
    # completeness: gene scores add up to f(x) - f(baseline); tolerance 1% of the gap plus 1e-4
    totals = np.array([s.sum() for s in scores])
    np.testing.assert_allclose(totals, gap, rtol=1e-2, atol=1e-4)
    np.testing.assert_allclose(totals, gap - delta, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(gap) > 1e-3)  # the check is not vacuous
    if baseline != "zero":
        np.testing.assert_allclose(totals, fx - fb, rtol=1e-2, atol=1e-4)


def test_integrated_gradients_rejects_unknown_baseline(classifier, sentences):
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(classifier, sentences, [0, 0, 0], fixed_reps=FIXED, baseline="noise")


def test_lime_reproducible_with_seed(classifier, sentences):
    words = sentences[0].split()[:14]
    fixed = [FIXED[0][0]]
    a = lime_gene_scores(classifier, words, 1, fixed_rep=fixed, num_samples=150, seed=7)
    b = lime_gene_scores(classifier, words, 1, fixed_rep=fixed, num_samples=150, seed=7)
    c = lime_gene_scores(classifier, words, 1, fixed_rep=fixed, num_samples=150, seed=8)
    assert a.shape == (14,) and np.all(np.isfinite(a)) and np.any(a != 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert lime_gene_scores(classifier, [], 1, fixed_rep=fixed).shape == (0,)
    # the probability instead of the log-probability: another fit, same sampling
    p = lime_gene_scores(classifier, words, 1, fixed_rep=fixed, num_samples=150, seed=7, log_proba=False)
    assert p.shape == a.shape and not np.allclose(p, a)


def test_predict_proba_words_matches_pooled_path(classifier, sentences):
    words = [s.split() for s in sentences]
    p1 = classifier.predict_proba_words(words, FIXED)
    pooled, _ = classifier.encoder.encode(sentences, progress=False)
    p2 = classifier.proba_from_pooled(pooled, FIXED)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-5)
