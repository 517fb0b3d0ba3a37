import numpy as np
import pytest
import torch

from sc_llm.core.text.encoder import TextEncoder, length_batches, pool
from sc_llm.core.text.hf_loading import SentenceConfig, read_sentence_config


def test_pooling_modes_against_manual_math():
    torch.manual_seed(0)
    h = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert torch.allclose(pool(h, mask, "cls"), h[:, 0])
    assert torch.allclose(pool(h, mask, "mean")[1], h[1, :2].mean(0))
    assert torch.allclose(pool(h, mask, "max")[0], h[0, :3].max(0).values)
    assert torch.allclose(pool(h, mask, "lasttoken")[1], h[1, 1])
    assert torch.allclose(pool(h, mask, "mean_sqrt_len")[0], h[0, :3].sum(0) / np.sqrt(3))
    with pytest.raises(ValueError, match="Unknown pooling"):
        pool(h, mask, "median")


def test_sentence_config_read_from_layout(tiny_st_dir, tiny_bert_dir, minilm_path):
    assert read_sentence_config(str(tiny_st_dir)) == SentenceConfig("cls", True, 32, "sentence-transformers")
    assert read_sentence_config(str(tiny_bert_dir)) == SentenceConfig()
    minilm = read_sentence_config(minilm_path)
    assert (minilm.pooling, minilm.normalize, minilm.max_seq_length) == ("mean", True, 256)


def test_tiny_model_mean_pooling_matches_manual_forward(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12)
    sentences = ["CD3E LYZ", "MS4A1 CD79A NKG7 GNLY", ""]
    X, truncated = enc.encode(sentences, batch_size=2, progress=False)
    assert X.shape == (3, 32) and X.dtype == np.float32
    assert not truncated.any()
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    for i, s in enumerate(sentences):
        inputs = tok(s, return_tensors="pt")
        with torch.no_grad():
            ref = model(**inputs).last_hidden_state[0].mean(0).numpy()
        np.testing.assert_allclose(X[i], ref, rtol=1e-4, atol=1e-5)
    params = enc.params()
    assert params["pooling"] == "mean" and params["normalize"] is False and params["max_length"] == 12


def test_order_restored_whatever_the_batching(tiny_bert_dir):
    enc = TextEncoder(str(tiny_bert_dir), device="cpu")
    rng = np.random.default_rng(0)
    genes = [f"GENE{i}" for i in range(100)]
    sentences = [" ".join(rng.choice(genes, size=rng.integers(1, 40), replace=False)) for _ in range(23)]
    one, _ = enc.encode(sentences, batch_size=1, progress=False)
    seven, _ = enc.encode(sentences, batch_size=7, progress=False)
    np.testing.assert_allclose(one, seven, rtol=1e-4, atol=1e-5)
    budget, _ = enc.encode(sentences, token_budget=64, progress=False)
    np.testing.assert_allclose(one, budget, rtol=1e-4, atol=1e-5)


def test_token_budget_batches_fit_the_budget_longest_first():
    lengths = [10, 40, 3, 40, 7, 100, 5, 5, 2]
    batches = length_batches(lengths, token_budget=80)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))  # every index once
    assert [b.tolist() for b in batches] == [[5], [1, 3], [0, 4, 6, 7, 2, 8]]  # 100 alone; 2 x 40; 6 x 10 <= 80
    for b in batches[1:]:
        assert len(b) * max(lengths[i] for i in b) <= 80
    assert [len(b) for b in length_batches(lengths, batch_size=4)] == [4, 4, 1]
    with pytest.raises(ValueError, match="token_budget"):
        length_batches(lengths, token_budget=0)


def test_max_length_beyond_positions_rejected(tiny_bert_dir):
    with pytest.raises(ValueError, match="position embeddings"):
        TextEncoder(str(tiny_bert_dir), device="cpu", max_length=4096)


def test_missing_local_folder_and_offline_hub_id(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextEncoder(str(tmp_path / "no_such_model"), device="cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    with pytest.raises(OSError, match="not a local folder") as err:
        TextEncoder("llmrails/ember-v1", device="cpu")
    assert "HF_HUB_OFFLINE" in str(err.value)


@pytest.mark.gpu
def test_cuda_autocast_runs(tiny_bert_dir):
    enc = TextEncoder(str(tiny_bert_dir), device="cuda")
    X, _ = enc.encode(["CD3E LYZ"], progress=False)
    assert enc.params()["dtype"] in ("bfloat16", "float16") and np.isfinite(X).all()
