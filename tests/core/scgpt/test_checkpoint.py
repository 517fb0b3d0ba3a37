from __future__ import annotations

import json
import pickle  # noqa: TID251 - writes a pickled checkpoint to check that loading refuses it

import pytest
import torch

from sc_llm.core.scgpt.checkpoint import check_folder, load_encoder, normalize_keys, read_config, read_vocab


def _load(folder):
    config = read_config(folder)
    return load_encoder(folder, config, read_vocab(folder, config.pad_token))


def _edit_args(folder, **changes):
    args = json.loads((folder / "args.json").read_text())
    args.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del args[k]
    (folder / "args.json").write_text(json.dumps(args))


def test_both_attention_namings_load_the_same_weights(make_scgpt):
    flash = _load(make_scgpt("flash", flash=True)).state_dict()
    plain = _load(make_scgpt("plain", flash=False)).state_dict()
    assert flash.keys() == plain.keys()
    assert "transformer_encoder.layers.1.self_attn.in_proj_weight" in flash
    assert not any(k.startswith(("decoder.", "mvc_decoder.", "cls_decoder.")) for k in flash)
    for k in flash:
        torch.testing.assert_close(flash[k], plain[k], rtol=0, atol=0)


def test_normalize_keys_renames_and_filters():
    state = {
        "module.transformer_encoder.layers.0.self_attn.Wqkv.weight": 1,
        "transformer_encoder.layers.0.self_attn.Wqkv.bias": 2,
        "decoder.fc.0.weight": 3,
    }
    assert normalize_keys(state) == {
        "transformer_encoder.layers.0.self_attn.in_proj_weight": 1,
        "transformer_encoder.layers.0.self_attn.in_proj_bias": 2,
    }


@pytest.mark.parametrize("style", ["category", "scaling"])
def test_other_value_encoders_load(make_scgpt, style):
    model = _load(make_scgpt(style, input_emb_style=style))
    assert model.input_emb_style == style


@pytest.mark.parametrize("missing", ["args.json", "vocab.json", "best_model.pt"])
def test_missing_file(make_scgpt, missing):
    folder = make_scgpt()
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        check_folder(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"embsize": None}, "lacks \\['embsize'\\]"),
        ({"nlayers": "two"}, "'nlayers' must be a positive integer"),
        ({"input_emb_style": "fourier"}, "unsupported option input_emb_style='fourier'"),
        ({"cell_emb_style": "avg-pool"}, "unsupported option cell_emb_style='avg-pool'"),
        ({"fast_transformer_backend": "linear"}, "unsupported option fast_transformer_backend='linear'"),
        ({"pre_norm": "yes"}, "'pre_norm' must be true or false"),
        ({"nheads": 5}, "divisible"),
        ({"n_bins": 1}, "n_bins"),
    ],
)
def test_bad_args_json(make_scgpt, changes, match):
    folder = make_scgpt()
    _edit_args(folder, **changes)
    with pytest.raises(ValueError, match=match):
        read_config(folder)


def test_options_scgpt_does_not_apply_are_recorded(make_scgpt):
    folder = make_scgpt(args_update={"DSBN": True, "use_batch_labels": True})
    assert read_config(folder).not_applied == ("DSBN", "use_batch_labels")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"embsize": 64, "nheads": 4}, "Shape mismatch.*'encoder.embedding.weight' is \\(\\d+, 32\\)"),
        ({"d_hid": 128}, "Shape mismatch.*linear1.weight"),
        ({"nlayers": 3}, "lacks 12 weight"),
        ({"nlayers": 1}, "does not describe"),
        ({"input_emb_style": "category"}, "lacks"),
    ],
)
def test_weights_not_matching_args(make_scgpt, changes, match):
    folder = make_scgpt()
    _edit_args(folder, **changes)
    with pytest.raises(ValueError, match=match):
        _load(folder)


def test_vocab_problems(make_scgpt):
    folder = make_scgpt()
    vocab = json.loads((folder / "vocab.json").read_text())
    del vocab["<cls>"]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match="<cls>"):
        read_vocab(folder, "<pad>")
    vocab["<cls>"] = 10_000
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match=r"Shape mismatch: vocab\.json has ids up to 10000"):
        _load(folder)


class _Payload:
    """Not a tensor: weights_only loading must refuse to unpickle it."""


def test_weights_only_loading(make_scgpt):
    folder = make_scgpt()
    state = torch.load(folder / "best_model.pt", weights_only=True)
    state["extra"] = _Payload()
    torch.save(state, folder / "best_model.pt")
    with pytest.raises(ValueError, match="Could not read the scGPT weights") as err:  # names the file
        _load(folder)
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)  # refused by weights_only, never unpickled
