import shutil

import pytest
import torch

from sc_llm.core.llm.loading import load_causal_lm, model_reference


@pytest.mark.parametrize("fixture", ["tiny_causal_lm", "tiny_neox_lm"])
def test_load_local_folder(request, fixture):
    folder = request.getfixturevalue(fixture)
    net, tok = load_causal_lm(folder, device="cpu")
    assert not net.training
    assert net.dtype == torch.float32  # CPU computes in fp32
    assert tok.padding_side == "left"
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"  # no pad in the tokenizer: EOS pads
    assert net.generation_config.pad_token_id == tok.pad_token_id
    batch = tok(["CD3D MS4A1", "LYZ"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # the short prompt is padded on the left
    with torch.inference_mode():
        logits = net(**batch).logits
    assert logits.shape[:2] == batch["input_ids"].shape and logits.shape[2] >= len(tok)


def test_on_a_cpu_weights_stay_fp32_and_the_compute_dtype_is_recorded(tiny_causal_lm):
    from sc_llm.core.llm.loading import compute_dtype

    with pytest.warns(UserWarning, match="'float16' is not computed on cpu"):
        net, _ = load_causal_lm(tiny_causal_lm, device="cpu", dtype="float16")
    assert compute_dtype(net) is None and all(p.dtype == torch.float32 for p in net.parameters())
    with pytest.warns(UserWarning, match="without native bf16 instructions is emulated"):  # conftest: no native bf16
        net, _ = load_causal_lm(tiny_causal_lm, device="cpu", dtype="bfloat16")
    assert compute_dtype(net) == torch.bfloat16 and all(p.dtype == torch.float32 for p in net.parameters())
    net, _ = load_causal_lm(tiny_causal_lm, device="cpu")
    assert compute_dtype(net) is None  # the default on a CPU without native bf16: fp32


def test_keeps_an_existing_pad_token(tiny_causal_lm, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "m"
    shutil.copytree(tiny_causal_lm, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_special_tokens({"pad_token": "<pad>"})
    tok.save_pretrained(folder)
    _, tok = load_causal_lm(folder, device="cpu")
    assert tok.pad_token == "<pad>"


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="empty"):
        load_causal_lm(tmp_path, device="cpu")


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_causal_lm(tmp_path / "nope", device="cpu")


def test_missing_weights_and_pickles_refused(tiny_causal_lm, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_causal_lm, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors.*does not unpickle"):
        load_causal_lm(folder, device="cpu")


def test_missing_config_and_tokenizer(tiny_causal_lm, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_causal_lm, folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_causal_lm(folder, device="cpu")
    shutil.rmtree(folder)
    shutil.copytree(tiny_causal_lm, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        load_causal_lm(folder, device="cpu")


def test_missing_gguf_file(tmp_path):
    (tmp_path / "other.gguf").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"other\.gguf"):
        load_causal_lm(tmp_path, gguf_file="model.gguf", device="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_causal_lm(tmp_path / "absent.gguf", device="cpu")


def test_offline_hub_id_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="hf download sc-llm-tests/no-such-model"):
        load_causal_lm("sc-llm-tests/no-such-model", device="cpu")


def test_cuda_request_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load_causal_lm("whatever/model", device="cuda")


@pytest.mark.gpu
def test_cuda_defaults_to_bf16(tiny_causal_lm):
    net, _ = load_causal_lm(tiny_causal_lm)
    assert net.device.type == "cuda"
    assert net.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def test_model_reference(tiny_causal_lm, smollm2_gguf):
    assert model_reference(tiny_causal_lm)["model"] == str(tiny_causal_lm.resolve())
    ref = model_reference(smollm2_gguf)
    assert ref["gguf_file"] == smollm2_gguf.name and ref["model"] == str(smollm2_gguf.parent)
    assert model_reference("org/name", revision="main") == {"model": "org/name", "gguf_file": None, "revision": "main"}


@pytest.mark.slow
def test_load_real_smollm2_gguf(smollm2_gguf):
    net, tok = load_causal_lm(smollm2_gguf, device="cpu")
    assert net.config.model_type == "llama" and net.dtype == torch.float32
    assert len(tok) == 49152 and tok.padding_side == "left" and tok.pad_token is not None
    ids = tok("The cell expresses CD3D", return_tensors="pt")
    with torch.inference_mode():
        out = net.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
