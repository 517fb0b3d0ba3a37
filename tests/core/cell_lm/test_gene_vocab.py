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


def test_gene_embeddings_set_the_gene_rows_at_the_scale_of_the_old_ones():
    import numpy as np

    from sc_llm.core.cell_lm.gene_vocab import init_gene_embeddings

    net, _tok, vocab = build_gene_lm(GENES, ["a prompt"], hidden_size=8, num_layers=1)
    emb = net.get_input_embeddings().weight
    rows = torch.tensor([i for (i,) in vocab.ids])
    before = emb.detach().clone()
    vectors = np.random.default_rng(0).normal(size=(len(GENES), 20))
    vectors[1] = np.nan  # LYZ has no vector: keeps its row
    assert init_gene_embeddings(net, vocab, vectors) == len(GENES) - 1
    after = emb.detach()
    assert torch.equal(after[rows[1]], before[rows[1]]) and not torch.equal(after[rows[0]], before[rows[0]])
    kept = rows[[0, 2, 3, 4, 5]]
    assert after[kept].norm(dim=1).mean() == pytest.approx(before[kept].norm(dim=1).mean().item(), rel=1e-4)
    other = torch.tensor(sorted(set(range(emb.shape[0])) - set(rows.tolist())))
    assert torch.equal(after[other], before[other])  # text tokens untouched
    # nearby vectors give nearby rows: the projection keeps the geometry of the table
    close = vectors.copy()
    close[2] = close[0] + 1e-3
    init_gene_embeddings(net, vocab, close)
    assert torch.dist(emb[rows[0]], emb[rows[2]]) < 0.05 * emb[rows[0]].norm()
    with pytest.raises(ValueError, match="one row per gene"):
        init_gene_embeddings(net, vocab, vectors[:3])
    with pytest.raises(ValueError, match="fewer than 2 genes"):
        init_gene_embeddings(net, vocab, np.full((len(GENES), 3), np.nan))
    text_vocab = GeneVocab(vocab.genes, [(1, 2)] * len(GENES), mode="text")
    with pytest.raises(ValueError, match="one token per gene"):
        init_gene_embeddings(net, text_vocab, vectors)
