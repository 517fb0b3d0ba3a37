import pytest

from sc_llm.core.text.gene_tokens import GeneTokenizer


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def sentences(_pbmc):
    import sc_llm as sl

    adata = _pbmc[:40].copy()
    sl.pp.cell_sentences(adata)
    return adata.obs["cell_sentence"].tolist()


@pytest.mark.parametrize("prefix", [None, "A cell with genes ranked by expression:"])
@pytest.mark.parametrize("max_length", [16, 128, 512])
def test_gene_wise_ids_equal_truncated_full_tokenisation(minilm_tokenizer, sentences, prefix, max_length):
    gt = GeneTokenizer(minilm_tokenizer, max_length, prefix)
    ids, truncated = gt(sentences)
    assert gt.mode == "word"  # WordPiece splits on whitespace first
    texts = [f"{prefix} {s}" if prefix else s for s in sentences]
    full = minilm_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    assert ids == full
    untruncated = minilm_tokenizer(texts)["input_ids"]
    assert truncated == [len(u) > max_length for u in untruncated]


def test_only_leading_words_are_tokenised(minilm_tokenizer):
    gt = GeneTokenizer(minilm_tokenizer, 8)
    words, more = gt.leading_words(" ".join(f"G{i}" for i in range(5000)))
    assert len(words) == gt.budget == 6 and more
    assert gt.leading_words("") == ([], False)


def test_byte_level_bpe_uses_leading_space(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # a byte-level BPE (GPT-2 style) in which " CD3E" and "CD3E" tokenise differently
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = ["CD3E MS4A1 LYZ NKG7 GNLY CD79A S100A8"] * 50
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="CD")
    gt = GeneTokenizer(fast, 64)
    sentences = ["LYZ S100A8 CD3E", "NKG7 GNLY MS4A1 CD79A"]
    ids, _ = gt(sentences)
    assert gt.mode == "mixed"
    assert ids == [fast(s)["input_ids"] for s in sentences]


def test_budget_must_leave_room(minilm_tokenizer):
    with pytest.raises(ValueError, match="no room"):
        GeneTokenizer(minilm_tokenizer, 2)
