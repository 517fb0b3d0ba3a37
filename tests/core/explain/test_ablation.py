from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from sc_llm.core.explain.ablation import ablate, fraction_count, hash_gene, hash_genes, random_hashes, shuffle_leading
from sc_llm.core.text.encoder import TextEncoder
from sc_llm.core.text.gene_tokens import _word_spans_by_offsets, _word_spans_by_prefixes, gene_token_spans, n_in_context

SENTENCES = [[f"GENE{i}" for i in order] for order in ([3, 1, 4, 15, 9, 2, 6], [5, 3, 5 + 30, 8, 9, 7, 1, 0], [2])]


def test_hash_gene_is_truncated_sha256():
    assert hash_gene("CD3E") == hashlib.sha256(b"CD3E").hexdigest()[:10]
    assert len(hash_gene("CD3E")) == 10


def test_hashes_consistent_per_gene_and_distinct_across_genes():
    out = hash_genes(SENTENCES)
    mapping: dict[str, str] = {}
    for words, hashed in zip(SENTENCES, out, strict=True):
        assert len(words) == len(hashed)
        for w, h in zip(words, hashed, strict=True):
            assert mapping.setdefault(w, h) == h
    assert len(set(mapping.values())) == len(mapping)
    assert all(len(h) == 10 and int(h, 16) >= 0 for h in mapping.values())


def test_random_hash_is_fresh_per_occurrence_and_seeded():
    sentences = [["GENE1", "GENE2", "GENE1"], ["GENE1", "GENE2"]]
    out = random_hashes(sentences, np.random.default_rng(0))
    flat = [h for row in out for h in row]
    assert len(set(flat)) == len(flat)
    assert all(len(h) == 10 and int(h, 16) >= 0 for h in flat)
    assert out == random_hashes(sentences, np.random.default_rng(0))
    assert out != random_hashes(sentences, np.random.default_rng(1))


def test_shuffle_keeps_multiset_and_tail():
    rng = np.random.default_rng(0)
    full = shuffle_leading(SENTENCES, None, rng)
    part = shuffle_leading(SENTENCES, [3, 4, 1], rng)
    for words, a, b in zip(SENTENCES, full, part, strict=True):
        assert Counter(a) == Counter(words)
        assert Counter(b) == Counter(words)
    assert full[0] != SENTENCES[0]
    assert part[0][3:] == SENTENCES[0][3:] and set(part[0][:3]) == set(SENTENCES[0][:3])
    assert part[1][4:] == SENTENCES[1][4:]


def test_fraction_count_rounds_up():
    np.testing.assert_array_equal(fraction_count([0, 1, 10, 11, 100], 0.1), [0, 1, 1, 2, 10])
    np.testing.assert_array_equal(fraction_count([7], 1.0), [7])


@pytest.fixture
def tiny_encoder(tiny_bert_dir):
    return TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12)


def test_in_context_count_one_token_per_gene(tiny_bert_dir):
    # one token per gene: max_length 12 leaves 10 tokens after [CLS]/[SEP]
    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12)
    long = [f"GENE{i}" for i in range(30)]
    counts = n_in_context(enc.genes, [long, long[:4], []])
    np.testing.assert_array_equal(counts, [10, 4, 0])
    # a two-word prefix takes two of the ten tokens
    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12, prefix="A cell")
    np.testing.assert_array_equal(n_in_context(enc.genes, [long]), [8])


def test_spans_point_at_gene_tokens(tiny_encoder):
    sentence = " ".join(f"GENE{i}" for i in range(20))
    ids, spans = gene_token_spans(tiny_encoder.genes, [sentence])
    tok = tiny_encoder.tokenizer
    assert len(spans[0]) == 10
    for j, (s, e) in enumerate(spans[0]):
        assert tok.convert_ids_to_tokens(ids[0][s:e]) == [f"GENE{j}"]


def test_in_context_ablations_on_tiny_encoder(tiny_encoder):
    long = [f"GENE{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    shuffled, n_ctx = ablate([long], "shuffle_in_context", rng=rng, genes=tiny_encoder.genes)
    assert n_ctx.tolist() == [10]
    assert shuffled[0][10:] == long[10:] and sorted(shuffled[0][:10]) == sorted(long[:10])
    assert shuffled[0][:10] != long[:10]
    top, _ = ablate([long], "shuffle_top_in_context", rng=rng, genes=tiny_encoder.genes, fraction=0.3)
    assert top[0][3:] == long[3:] and sorted(top[0][:3]) == sorted(long[:3])
    short, _ = ablate([long], "shorten", rng=rng, genes=tiny_encoder.genes, fraction=0.5)
    assert short[0] == long[:5]
    with pytest.raises(ValueError, match="model="):
        ablate([long], "shorten", rng=rng)
    with pytest.raises(ValueError, match="Unknown ablation"):
        ablate([long], "reverse", rng=rng)


def test_hash_shuffle_counts_hashed_tokens(minilm_path):
    # MiniLM splits a 10-character hex hash into several word pieces, so fewer hashed genes fit
    enc = TextEncoder(minilm_path, device="cpu", max_length=32)
    genes = ["CD3E", "LYZ", "MS4A1", "NKG7", "GNLY", "CST3", "HLA-DRA", "S100A8", "FCN1", "CD79A"] * 3
    _, n_plain = ablate([genes], "shuffle_in_context", rng=np.random.default_rng(0), genes=enc.genes)
    out, n_hashed = ablate([genes], "hash_shuffle_in_context", rng=np.random.default_rng(0), genes=enc.genes)
    assert Counter(out[0]) == Counter(hash_genes([genes])[0])
    assert 0 < n_hashed[0] < n_plain[0]


def test_in_context_count_matches_whole_text_tokenisation(minilm_path):
    # independent check: the first n genes fit under max_length when tokenised as text, the first n + 1 do not
    enc = TextEncoder(minilm_path, device="cpu", max_length=40, prefix="A cell with genes:")
    words = ["MALAT1", "TMSB4X", "B2M", "HLA-DRA", "RPL13A", "S100A9", "LYZ", "FTL", "CD74", "GNLY", "NKG7"] * 4
    n = int(n_in_context(enc.genes, [words])[0])

    def n_tokens(k):
        return len(enc.tokenizer(f"{enc.genes.prefix} " + " ".join(words[:k]))["input_ids"])

    assert n_tokens(n) <= 40 < n_tokens(n + 1)


def test_offset_spans_equal_prefix_spans(minilm_path):
    enc = TextEncoder(minilm_path, device="cpu", max_length=40)
    sentences = [("MALAT1 TMSB4X B2M HLA-DRA RPL13A S100A9 LYZ FTL CD74 GNLY NKG7 " * 3).strip(), "CD3E LYZ", ""]
    _, spans = gene_token_spans(enc.genes, sentences)
    leading = [enc.genes.leading_words(s)[0] for s in sentences]
    assert _word_spans_by_offsets(enc.genes, leading) == _word_spans_by_prefixes(enc.genes, leading) == spans
    assert len(spans[0]) == n_in_context(enc.genes, [sentences[0].split()])[0] and len(spans[0]) < 33
    assert [len(s) for s in spans[1:]] == [2, 0]
