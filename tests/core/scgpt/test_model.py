from __future__ import annotations

import numpy as np
import pytest
import torch

from sc_llm.core.scgpt.checkpoint import load_encoder, read_config, read_vocab
from sc_llm.core.scgpt.model import EncoderLayer


def _inputs(vocab, n_bins=51, pad_value=-2, batch=5, width=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    genes_pool = torch.tensor([i for t, i in vocab.items() if not t.startswith("<")])
    lengths = torch.tensor([width, 1, 17, 0, 33])[:batch]
    genes = genes_pool[torch.randint(len(genes_pool), (batch, width + 1), generator=g)]
    values = torch.randint(1, n_bins, (batch, width + 1), generator=g).float()
    genes[:, 0], values[:, 0] = vocab["<cls>"], pad_value
    padding = torch.arange(width + 1)[None, :] > lengths[:, None]
    genes[padding], values[padding] = vocab["<pad>"], pad_value
    return genes, values, padding


@pytest.mark.parametrize("style", ["continuous", "category", "scaling"])
def test_cls_output_equals_scgpt_transformer_model(scgpt_pkg, make_scgpt, style):
    from scgpt.model import TransformerModel
    from scgpt.utils import load_pretrained

    folder = make_scgpt(style, input_emb_style=style, flash=True)
    config = read_config(folder)
    vocab = read_vocab(folder, config.pad_token)
    ours = load_encoder(folder, config, vocab)
    pad_value = config.pad_value if style != "category" else config.n_bins
    ref = TransformerModel(
        len(vocab),
        config.d_model,
        config.n_heads,
        config.d_hid,
        config.n_layers,
        vocab=vocab,
        dropout=0.2,
        pad_token="<pad>",
        pad_value=pad_value,
        input_emb_style=style,
        n_input_bins=config.n_bins + 2,
        use_fast_transformer=False,
    )
    load_pretrained(ref, torch.load(folder / "best_model.pt", weights_only=True), verbose=False)
    ref.eval()
    genes, values, padding = _inputs(vocab, pad_value=pad_value)
    with torch.inference_mode():
        expected = ref._encode(genes, values, src_key_padding_mask=padding)[:, 0]
        got = ours(genes, values, padding)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert expected.std(0).mean() > 0.05  # cells give different outputs: the comparison is not vacuous


def test_pre_norm_layer_matches_reference_formula():
    torch.manual_seed(0)
    d, heads = 16, 2
    layer = EncoderLayer(d, heads, 32, norm_scheme="pre").eval()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True).eval()
    mha.in_proj_weight.data = layer.self_attn.in_proj_weight.data
    mha.in_proj_bias.data = layer.self_attn.in_proj_bias.data
    mha.out_proj.load_state_dict(layer.self_attn.out_proj.state_dict())
    x = torch.randn(3, 9, d)
    padding = torch.zeros(3, 9, dtype=torch.bool)
    padding[1, 5:] = True
    with torch.inference_mode():
        h = layer.norm1(x)
        h = h + mha(h, h, h, key_padding_mask=padding, need_weights=False)[0]
        h = layer.norm2(h)
        expected = h + layer.linear2(torch.relu(layer.linear1(h)))
        full = layer(x, ~padding)
        first = layer(x, ~padding, first_only=True)
    torch.testing.assert_close(full, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first[:, 0], expected[:, 0], rtol=1e-5, atol=1e-5)


def test_post_norm_layer_matches_torch_transformer_layer():
    torch.manual_seed(1)
    ref = torch.nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, batch_first=True).eval()
    ours = EncoderLayer(16, 4, 24).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 7, 16)
    padding = torch.tensor([[False] * 7, [False] * 3 + [True] * 4])
    with torch.inference_mode():
        expected = ref(x, src_key_padding_mask=padding)
        got = ours(x, ~padding)
    np.testing.assert_allclose(got[~padding].numpy(), expected[~padding].numpy(), rtol=1e-4, atol=1e-5)
