import pytest
import torch

from sc_llm.core.cell_lm.gene_vocab import GeneVocab, add_gene_tokens, build_gene_lm, continuation_ids
from sc_llm.core.llm.loading import load_causal_lm

GENES = ["CD3D", "LYZ", "MS4A1", "GENE1", "GENE10", "NKG7"]


def test_text_mode_ids_concatenate_to_the_sentence_tokens(tiny_causal_lm):
    _, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    vocab = GeneVocab.from_tokenizer(tok, GENES)
    sentence = "Cell sentence: " + " ".join(GENES)
    head = tok("Cell sentence:", add_special_tokens=False)["input_ids"]
    assert head + vocab.encode(GENES) == tok(sentence, add_special_tokens=False)["input_ids"]
    assert vocab.tokens_per_gene() > 1
    assert GeneVocab.from_dict(vocab.to_dict()).ids == vocab.ids
    with pytest.raises(KeyError, match="not in the model's gene vocabulary"):
        vocab.encode(["XIST"])
    with pytest.raises(ValueError, match="unique"):
        GeneVocab.from_tokenizer(tok, ["LYZ", "LYZ"])


def test_gene_tokens_start_at_the_mean_of_their_subwords(tiny_causal_lm):
    net, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    sub = {g: continuation_ids(tok, g) for g in GENES}
    before = net.get_input_embeddings().weight.detach().clone()
    vocab = add_gene_tokens(net, tok, GENES)
    emb = net.get_input_embeddings().weight
    assert vocab.mode == "token" and vocab.tokens_per_gene() == 1
    assert emb.shape[0] >= len(tok) and torch.equal(emb[: before.shape[0]], before)
    for g, (i,) in zip(GENES, vocab.ids, strict=True):
        torch.testing.assert_close(emb[i], before[sub[g]].mean(0))
        assert tok.convert_ids_to_tokens(i) == f"<{g}>"
    assert net.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # tied model stays tied


def test_build_gene_lm_from_scratch(tmp_path):
    net, tok, vocab = build_gene_lm(GENES, ["Generate a B cell.", "IFN-beta"], hidden_size=32, num_layers=1)
    assert vocab.mode == "token" and len(tok) == net.config.vocab_size
    net.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, tok2 = load_causal_lm(tmp_path, device="cpu")
    assert GeneVocab.from_gene_tokens(tok2, GENES).ids == vocab.ids
    assert tok2.padding_side == "left"
