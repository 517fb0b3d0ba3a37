"""Free texts to vectors (encode_texts) and the disk cache keyed by (encoder identity, text)."""

import warnings

import numpy as np
import pytest

from sc_llm.core.text.encoder import TextEncoder
from sc_llm.core.text.text_cache import cache_folder, cached_encode
from sc_llm.core.text.texts import encode_texts, text_identity, tokenize_texts

TEXTS = [
    "CD79A: CD79a molecule. GO: B cell receptor signaling pathway; adaptive immune response",
    "GNLY: granulysin. GO: defense response to bacterium",
    "CD14: CD14 molecule",
    "LYZ: lysozyme. GO: " + "; ".join(["antimicrobial humoral response"] * 40),  # longer than any context here
]


@pytest.fixture(scope="module")
def tiny(tiny_st_dir):
    return TextEncoder(str(tiny_st_dir), device="cpu")


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return TextEncoder(minilm_path, device="cpu")


def test_texts_are_tokenised_whole_and_cut_by_the_tokenizer(tiny):
    ids, truncated = tokenize_texts(tiny, TEXTS)
    ref = tiny.tokenizer(TEXTS, truncation=True, max_length=32)["input_ids"]
    assert ids == [list(x) for x in ref]
    full = [len(x) for x in tiny.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]]
    assert truncated.tolist() == [n > 30 for n in full]  # 32 tokens minus [CLS] and [SEP]
    assert truncated[-1] and not truncated[2]
    assert all(x[0] == tiny.tokenizer.cls_token_id and x[-1] == tiny.tokenizer.sep_token_id for x in ids)


def test_minilm_text_vectors_match_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    ours, truncated = encode_texts(minilm, TEXTS, batch_size=2, progress=False)
    st = SentenceTransformer(minilm.model_id, device="cpu")
    ref = st.encode(TEXTS, batch_size=2)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    assert truncated.tolist() == [False, False, False, True]  # cut at 256 tokens, as sentence-transformers does


def test_order_batching_and_empty_input(tiny):
    a, _ = encode_texts(tiny, TEXTS, batch_size=1, progress=False)
    b, _ = encode_texts(tiny, TEXTS[::-1], batch_size=3, progress=False)
    np.testing.assert_allclose(a, b[::-1], atol=1e-5)
    empty, flags = encode_texts(tiny, [], progress=False)
    assert empty.shape == (0, tiny.dim) and flags.shape == (0,)


class Delegating:
    """An encoder that is not a TextEncoder (as an embeddings endpoint would be): the protocol of encode_texts."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def encode_texts(self, texts, *, batch_size, progress, desc):
        self.calls.append(list(texts))
        return encode_texts(self.inner, texts, batch_size=batch_size, progress=progress, desc=desc)

    def params(self):
        return {"model": "endpoint:" + self.inner.model_id, "dimensions": self.inner.dim, "extra": [1]}


def test_any_object_with_encode_texts_plugs_in(tiny):
    other = Delegating(tiny)
    X, _ = encode_texts(other, TEXTS, progress=False)
    np.testing.assert_allclose(X, encode_texts(tiny, TEXTS, progress=False)[0], atol=1e-6)
    assert text_identity(other) == {"model": "endpoint:" + tiny.model_id, "dimensions": 32}  # JSON scalars only
    with pytest.raises(TypeError, match="encode_texts"):
        encode_texts(object(), TEXTS)


def test_identity_names_the_settings_that_change_vectors(tiny, tiny_st_dir):
    identity = text_identity(tiny)
    assert set(identity) == {"model", "revision", "fingerprint", "pooling", "normalize", "max_length", "dtype"} | {
        "tokenization"
    }
    assert identity["fingerprint"] and identity["max_length"] == 32 and identity["pooling"] == "cls"
    shorter = TextEncoder(str(tiny_st_dir), device="cpu", max_length=16)
    assert text_identity(shorter) != identity


def test_cache_embeds_each_text_once(tiny, tmp_path):
    texts = [*TEXTS, TEXTS[0]]  # a repeated text is embedded once
    X, cut, stats = cached_encode(tiny, texts, cache_dir=tmp_path, progress=False)
    assert (stats.n_texts, stats.n_cached, stats.n_embedded) == (4, 0, 4)
    np.testing.assert_array_equal(X[0], X[-1])
    again, cut2, stats2 = cached_encode(tiny, texts[::-1], cache_dir=tmp_path, progress=False)
    assert (stats2.n_cached, stats2.n_embedded) == (4, 0)  # a rerun embeds nothing
    np.testing.assert_array_equal(again, X[::-1])
    np.testing.assert_array_equal(cut2, cut[::-1])
    _, _, stats3 = cached_encode(tiny, [*TEXTS, "MS4A1: membrane spanning 4-domains A1"], cache_dir=tmp_path)
    assert (stats3.n_cached, stats3.n_embedded) == (4, 1)
    folder = cache_folder(tmp_path, text_identity(tiny))
    assert stats.folder == str(folder) and (folder / "identity.json").is_file()
    assert len(list(folder.glob("vectors-*.npz"))) == 2  # one shard per call that embedded something
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    uncached, _, stats4 = cached_encode(tiny, texts, progress=False)
    np.testing.assert_allclose(uncached, X, atol=1e-6)
    assert stats4.folder is None and stats4.n_embedded == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_dim"])
def test_a_damaged_cache_file_is_ignored_with_a_warning_and_recomputed(tiny, tmp_path, damage):
    X, _, _ = cached_encode(tiny, TEXTS, cache_dir=tmp_path, progress=False)
    folder = cache_folder(tmp_path, text_identity(tiny))
    (shard,) = folder.glob("vectors-*.npz")
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:100])
    elif damage == "garbage":
        shard.write_bytes(b"not a zip file")
    else:
        keys = np.load(shard)["keys"]
        np.savez(shard, keys=keys, vectors=np.ones((len(keys), 5), np.float32), truncated=np.zeros(len(keys), bool))
    with pytest.warns(UserWarning, match="damaged text-vector cache file"):
        again, _, stats = cached_encode(tiny, TEXTS, cache_dir=tmp_path, progress=False)
    assert stats.n_embedded == 4
    np.testing.assert_allclose(again, X, atol=1e-6)
    assert not shard.exists()  # removed, so the next call does not warn again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, stats = cached_encode(tiny, TEXTS, cache_dir=tmp_path, progress=False)
    assert stats.n_embedded == 0
