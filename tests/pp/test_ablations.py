from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.core.explain.ablation import hash_gene


@pytest.fixture
def adata(small_adata):
    sl.pp.cell_sentences(small_adata)
    return small_adata


@pytest.mark.parametrize(
    ("mode", "fraction", "key"),
    [
        ("hash", None, "cell_sentence_hash"),
        ("random_hash", None, "cell_sentence_random_hash"),
        ("shuffle_all", None, "cell_sentence_shuffle_all"),
        ("shuffle_in_context", None, "cell_sentence_shuffle_in_context"),
        ("shuffle_top_in_context", None, "cell_sentence_shuffle_top_in_context_10"),
        ("hash_shuffle_in_context", None, "cell_sentence_hash_shuffle_in_context"),
        ("shorten", 0.2, "cell_sentence_shorten_20"),
    ],
)
def test_modes_write_keys_and_params(adata, tiny_bert_dir, mode, fraction, key):
    sl.pp.ablate_sentences(adata, mode=mode, model=tiny_bert_dir, max_length=8, fraction=fraction, seed=3)
    assert key in adata.obs
    params = adata.uns[key]["params"]
    assert params["mode"] == mode and params["seed"] == 3 and params["sentence_key"] == "cell_sentence"
    original = [s.split() for s in adata.obs["cell_sentence"]]
    ablated = [s.split() for s in adata.obs[key]]
    if mode == "shorten":
        # 6 tokens of room: at most 6 genes in context, the top 20% rounded up kept
        assert params["fraction"] == 0.2 and params["max_length"] == 8
        for o, a in zip(original, ablated, strict=True):
            assert a == o[: int(np.ceil(0.2 * min(len(o), 6)))]
    elif mode in ("hash", "random_hash", "hash_shuffle_in_context"):
        assert params["hash_length"] == 10
        assert [len(a) for a in ablated] == [len(o) for o in original]
    else:
        for o, a in zip(original, ablated, strict=True):
            assert Counter(o) == Counter(a)
    if mode in ("shuffle_in_context", "hash_shuffle_in_context"):
        assert params["model"] == str(tiny_bert_dir) and 0 < params["mean_in_context"] <= 6


def test_hash_mode_matches_sha256(adata):
    sl.pp.ablate_sentences(adata, mode="hash")
    first = adata.obs["cell_sentence"].iloc[0].split()
    assert adata.obs["cell_sentence_hash"].iloc[0].split() == [hash_gene(g) for g in first]


def test_seed_reproducible(adata):
    a = sl.pp.ablate_sentences(adata, mode="shuffle_all", seed=1, copy=True)
    b = sl.pp.ablate_sentences(adata, mode="shuffle_all", seed=1, copy=True)
    c = sl.pp.ablate_sentences(adata, mode="shuffle_all", seed=2, copy=True)
    assert a.obs["cell_sentence_shuffle_all"].tolist() == b.obs["cell_sentence_shuffle_all"].tolist()
    assert a.obs["cell_sentence_shuffle_all"].tolist() != c.obs["cell_sentence_shuffle_all"].tolist()
    assert "cell_sentence_shuffle_all" not in adata.obs


def test_in_context_shuffle_leaves_out_of_context_genes(adata, tiny_bert_dir):
    sl.pp.ablate_sentences(adata, mode="shuffle_in_context", model=tiny_bert_dir, max_length=6, key_added="abl")
    for o, a in zip(adata.obs["cell_sentence"], adata.obs["abl"], strict=True):
        o, a = o.split(), a.split()
        assert a[4:] == o[4:] and sorted(a[:4]) == sorted(o[:4])
    assert adata.uns["abl"]["params"]["max_length"] == 6


def test_errors_leave_adata_unchanged(adata):
    before = (list(adata.obs.columns), list(adata.uns))
    with pytest.raises(ValueError, match="pass `model=`"):
        sl.pp.ablate_sentences(adata, mode="shuffle_in_context")
    with pytest.raises(ValueError, match="Unknown ablation"):
        sl.pp.ablate_sentences(adata, mode="reverse")
    with pytest.raises(ValueError, match="only applies"):
        sl.pp.ablate_sentences(adata, mode="hash", fraction=0.5)
    with pytest.raises(KeyError, match="cell_sentences"):
        sl.pp.ablate_sentences(adata, mode="hash", sentence_key="nope")
    assert (list(adata.obs.columns), list(adata.uns)) == before


def test_loads_the_tokenizer_only(adata, tiny_bert_dir, monkeypatch):
    import transformers

    def no_weights(*args, **kwargs):
        msg = "ablate_sentences must not load model weights"
        raise AssertionError(msg)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
    sl.pp.ablate_sentences(adata, mode="shorten", model=tiny_bert_dir, max_length=8, fraction=0.5)
    params = adata.uns["cell_sentence_shorten_50"]["params"]
    assert params["max_length"] == 8 and params["model"] == str(tiny_bert_dir) and params["mean_in_context"] <= 6
