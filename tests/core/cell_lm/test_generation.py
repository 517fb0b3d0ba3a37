import numpy as np
import pytest
import torch

from sc_llm.core.cell_lm.gene_vocab import GeneVocab, add_gene_tokens
from sc_llm.core.cell_lm.generation import GeneConstraint, GeneTrie, generate_sentences, parse_sentence
from sc_llm.core.llm.loading import load_causal_lm

GENES = ["CD3D", "LYZ", "MS4A1", "GENE1", "GENE10", "GENE11", "NKG7", "GNLY", "CST3", "S100A8"]


@pytest.fixture(scope="module")
def lm(tiny_causal_lm):
    return load_causal_lm(tiny_causal_lm, device="cpu")


def _prompt(tok, text="List genes of a B cell.\nCell sentence:"):
    return tok(text, add_special_tokens=False)["input_ids"]


def _end(tok):
    return [tok(".", add_special_tokens=False)["input_ids"][0], tok.eos_token_id]


def test_constraint_walks_the_prefix_tree():
    vocab = GeneVocab(["A", "AB", "C"], [(1,), (1, 2), (3,)])
    c = GeneConstraint(GeneTrie(vocab), [9], max_genes=2)
    c(torch.tensor([[5]]), torch.zeros(1, 10))
    row = c.rows[0]
    assert sorted(c.allowed(row).tolist()) == [1, 3]  # no empty sentence
    c._advance(row, 1)  # "A" complete, "AB" possible
    assert sorted(c.allowed(row).tolist()) == [1, 2, 3, 9]  # 1 starts "AB" after "A"; "A" itself cannot come again
    c._advance(row, 3)  # "A" then "C": two genes, the maximum
    assert list(c.allowed(row)) == [9]
    c._advance(row, 9)
    assert row.finished and row.n_done == 2


def test_constraint_forbids_repeats():
    vocab = GeneVocab(["A", "B"], [(1,), (2,)])
    c = GeneConstraint(GeneTrie(vocab), [9], max_genes=5)
    c(torch.tensor([[5]]), torch.zeros(1, 10))
    row = c.rows[0]
    c._advance(row, 1)
    assert sorted(c.allowed(row).tolist()) == [2, 9]
    c._advance(row, 2)
    assert list(c.allowed(row)) == [9]  # every gene used: only the end remains


@pytest.mark.parametrize("do_sample", [False, True])
def test_constrained_generation_is_all_valid_genes(lm, do_sample):
    net, tok = lm
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    prompts = [_prompt(tok), _prompt(tok, "Cell sentence:")] * 3
    res = generate_sentences(net, tok, prompts, vocab, end_ids=_end(tok), max_genes=4, do_sample=do_sample, seed=3)
    assert res.valid_share == 1.0 and res.n_new_tokens > 0
    for genes in res.genes:
        assert 1 <= len(genes) <= 4 and len(set(genes)) == len(genes) and set(genes) <= set(GENES)
    if not do_sample:  # greedy: identical prompts give identical sentences, whatever the batch
        assert res.genes[0] == res.genes[2] == res.genes[4]
        solo = generate_sentences(net, tok, prompts[:1], vocab, end_ids=_end(tok), max_genes=4, batch_size=1)
        assert solo.genes[0] == res.genes[0]  # left padding does not change the result


def test_sampling_is_seeded(lm):
    net, tok = lm
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    kw = {"end_ids": _end(tok), "max_genes": 6, "do_sample": True}
    a = generate_sentences(net, tok, [_prompt(tok)] * 8, vocab, seed=1, **kw).genes
    b = generate_sentences(net, tok, [_prompt(tok)] * 8, vocab, seed=1, **kw).genes
    c = generate_sentences(net, tok, [_prompt(tok)] * 8, vocab, seed=2, **kw).genes
    assert a == b and a != c and len({tuple(g) for g in a}) > 1


def test_unconstrained_random_model_is_reported_invalid(lm):
    net, tok = lm
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    res = generate_sentences(net, tok, [_prompt(tok)] * 2, vocab, end_ids=_end(tok), max_genes=4, constrained=False)
    assert res.valid_share < 0.5


def test_gene_token_mode(tiny_causal_lm):
    net, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    vocab = add_gene_tokens(net, tok, GENES)
    res = generate_sentences(net, tok, [_prompt(tok)] * 4, vocab, end_ids=_end(tok), max_genes=5, do_sample=True)
    assert res.valid_share == 1.0 and all(1 <= len(g) <= 5 for g in res.genes)
    # each gene is one token: tokens generated = genes + per sentence the closing "." (optional) and EOS
    n_genes = int(np.sum([len(g) for g in res.genes]))
    assert n_genes + 4 <= res.n_new_tokens <= n_genes + 8


def test_parse_sentence_counts_invalid_and_repeated(lm):
    _, tok = lm
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    ids = tok(" LYZ FOO LYZ CD3D.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    genes, n_words = parse_sentence(ids, vocab, tok, _end(tok))
    assert genes == ["LYZ", "CD3D"] and n_words == 4


def test_genes_with_dots_stay_whole(lm):
    net, tok = lm
    genes = ["AC009133.22", "RP11-34P13.7", "LYZ"]
    vocab = GeneVocab.from_tokenizer(tok, genes)
    ids = vocab.encode(["RP11-34P13.7", "AC009133.22"]) + tok(" LYZ.", add_special_tokens=False)["input_ids"]
    assert parse_sentence(ids, vocab, tok, [tok.eos_token_id]) == (["RP11-34P13.7", "AC009133.22", "LYZ"], 3)
    res = generate_sentences(net, tok, [_prompt(tok)] * 3, vocab, end_ids=_end(tok), max_genes=3, min_genes=3)
    assert res.valid_share == 1.0 and all(sorted(g) == sorted(genes) for g in res.genes)


def test_sampled_cell_is_the_same_in_any_batch_or_company(lm):
    """Per-cell streams: cell i's sentence depends on (seed, key i) only, not on batch size or neighbours."""
    net, tok = lm
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    kw = {"end_ids": _end(tok), "max_genes": 6, "do_sample": True, "seed": 5}
    prompts = [_prompt(tok)] * 6 + [_prompt(tok, "Cell sentence:")] * 2
    whole = generate_sentences(net, tok, prompts, vocab, batch_size=8, **kw).genes
    assert len({tuple(g) for g in whole[:6]}) > 1  # same prompt, different cells, different sentences
    alone = [
        generate_sentences(net, tok, [prompts[i]], vocab, cell_keys=[i], batch_size=1, **kw).genes[0] for i in (0, 3, 7)
    ]
    assert alone == [whole[0], whole[3], whole[7]]
    reordered = generate_sentences(net, tok, prompts[::-1], vocab, cell_keys=np.arange(8)[::-1], batch_size=3, **kw)
    assert reordered.genes[::-1] == whole


def test_cell_sampler_filters_then_samples_the_warped_distribution():
    from sc_llm.core.cell_lm.sampling import CellSampler

    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)
    picks = CellSampler(np.arange(4000), 0)(None, scores).argmax(-1)
    freq = torch.bincount(picks, minlength=4).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03)  # Gumbel-max is exact sampling
    top_k = CellSampler(np.arange(4000), 0, top_k=2)(None, scores).argmax(-1)
    assert set(top_k.tolist()) == {0, 1}
    top_p = CellSampler(np.arange(4000), 0, top_p=0.7)(None, scores).argmax(-1)
    assert set(top_p.tolist()) == {0, 1}  # 0.5 < 0.7 needs the second token; 0.8 ≥ 0.7 stops there
    cold = CellSampler(np.arange(4000), 0, temperature=0.05)(None, scores).argmax(-1)
    assert (cold == 0).float().mean() > 0.99
    with pytest.raises(ValueError, match="temperature"):
        CellSampler([0], 0, temperature=0)


@pytest.mark.gpu
def test_cuda_generation_matches_cpu(tiny_causal_lm, lm):
    """CUDA (bf16 by default): next-gene scores agree with the CPU path and generation stays valid."""
    net, tok = lm
    gpu_net, _ = load_causal_lm(tiny_causal_lm, device="cuda")
    prompts = torch.tensor([_prompt(tok)] * 2)
    with torch.inference_mode():
        cpu_logits = net(prompts).logits[:, -1].float()
        gpu_logits = gpu_net(prompts.cuda()).logits[:, -1].float().cpu()
    assert torch.nn.functional.cosine_similarity(cpu_logits, gpu_logits, dim=1).min() >= 0.99
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    kw = {"end_ids": _end(tok), "max_genes": 4, "do_sample": True, "seed": 3}
    res = generate_sentences(gpu_net, tok, [_prompt(tok)] * 6, vocab, **kw)
    assert res.valid_share == 1.0 and all(1 <= len(g) <= 4 for g in res.genes)
