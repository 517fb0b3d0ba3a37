"""Cell-LM rows of the Kang 2018 leave-one-cell-type-out perturbation benchmark (issue 11).

For every cell type in turn, its IFN-β-stimulated cells are held out; each method learns from the other
types' control and stimulated cells and predicts the held-out type's stimulated cells from its control cells.
Methods: ``control`` (no change), ``mean_shift`` and ``llm``: a small gene-token Llama trained **from scratch**
on the training types' (control sentence, 'stimulated' → stimulated sentence) pairs, plus identity pairs of
the control cells of every type (``control_pairs``; ``--no-control-pairs`` drops them), within a fixed CPU
budget (``--max-steps`` optimizer steps), then sampling one constrained sentence per control cell (seeded,
temperature 1; ``--greedy`` for greedy decoding), decoded with the per-gene sentence decoder. All through
the public ``sl.tl.perturb`` and ``sl.metrics.perturbation_scores``
(the fold of ``sl.tl.compare_perturbation``: train = every cell but the held-out type's stimulated ones).

    python benchmarks/bench_cell_lm_perturbation.py [--n-genes 50] [--max-steps 500] [--hidden 64] [--layers 2]
        [--greedy] [--no-control-pairs] [--seed 0] [--held-out CD4T ...] [--absent-too]

``--absent-too`` adds the row ``llm+expected``: the same model and sampled sentences, decoded with
``decoder_absent='expected'`` (genes a 50-gene sentence leaves out get their expected value instead of 0).

Prints the per-cell-type table (R² of DEG means, Pearson of deltas, valid-gene share, seconds), the share
of cell types where ``llm`` beats ``control`` on R² of DEG means (target: all) and the mean gap to mean_shift.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _machine import machine_line

import sc_llm as sl


def main() -> None:
    print(machine_line())
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-genes", type=int, default=50)
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    ap.add_argument("--no-control-pairs", action="store_true", help="train on the perturbation pairs only")
    ap.add_argument("--seed", type=int, default=0, help="seed of pairing, initialisation, data order, sampling")
    ap.add_argument("--held-out", nargs="*", default=None)
    ap.add_argument(
        "--absent-too",
        action="store_true",
        help="also score the same generated sentences with decoder_absent='expected' (row 'llm+expected')",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    adata = sl.datasets.kang2018()
    types = args.held_out or sorted(adata.obs["cell_type"].unique())
    print(f"Kang 2018: {adata.n_obs} cells × {adata.n_vars} genes; torch threads 1; {vars(args)}")
    llm_kw = {
        "n_genes": args.n_genes,
        "hidden_size": args.hidden,
        "num_layers": args.layers,
        "max_steps": args.max_steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "cpu_threads": 1,
        "do_sample": not args.greedy,
        "control_pairs": not args.no_control_pairs,
    }
    kw = {
        "condition_key": "condition",
        "control": "control",
        "perturbation": "stimulated",
        "cell_type_key": "cell_type",
        "seed": args.seed,
    }
    rows, infos = [], []
    saved = Path(tempfile.mkdtemp(prefix="sc_llm_bench_lm_"))
    for t in types:
        held = adata.obs["cell_type"] == t
        train = adata[~(held & (adata.obs["condition"] == "stimulated"))].copy()
        real = adata[held & (adata.obs["condition"] == "stimulated")]
        ctrl = adata[held & (adata.obs["condition"] == "control")]
        llm_sentences: list[str] = []
        for method in ("control", "mean_shift", "llm", *(["llm+expected"] if args.absent_too else [])):
            tic = time.perf_counter()
            if method == "llm+expected":  # the model just trained, its seeded sentences, the other decoder
                gen_kw = {k: llm_kw[k] for k in ("n_genes", "do_sample", "cpu_threads")}
                pred = sl.tl.perturb(
                    train, method="llm", model=str(saved / t), decoder_absent="expected", **kw, **gen_kw
                )
                assert list(pred.obs["cell_sentence"]) == llm_sentences  # the same sentences, decoded otherwise
            else:
                extra = {**llm_kw, "save_model": str(saved / t)} if method == "llm" else {}
                pred = sl.tl.perturb(train, method=method, **kw, **extra)
                if method == "llm":
                    llm_sentences = list(pred.obs["cell_sentence"])
            sec = time.perf_counter() - tic
            sc = sl.metrics.perturbation_scores(pred, real, ctrl)
            rows.append(
                {
                    "held_out": t,
                    "method": method,
                    "r2_mean_de": sc["r2_mean_de"],
                    "r2_mean_all": sc["r2_mean_all"],
                    "pearson_delta_de": sc["pearson_delta_de"],
                    "seconds": sec,
                }
            )
            if method == "llm":
                infos.append({"held_out": t, **pred.uns["perturb"]["info"]})
            print(
                f"  {t:12s} {method:10s} R² DEG {sc['r2_mean_de']:.3f}  R² all {sc['r2_mean_all']:.3f}  {sec:6.1f} s",
                flush=True,
            )
    per = pd.DataFrame(rows)
    print(per.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(pd.DataFrame(infos).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.absent_too:
        for col in ("r2_mean_all", "r2_mean_de"):
            w = per.pivot(index="held_out", columns="method", values=col)
            print(
                f"{col}: llm {w['llm'].mean():.3f}, llm+expected {w['llm+expected'].mean():.3f}, control "
                f"{w['control'].mean():.3f}; llm+expected > control on {int((w['llm+expected'] > w['control']).sum())}"
                f"/{len(w)} types (llm: {int((w['llm'] > w['control']).sum())}/{len(w)})"
            )
    wide = per.pivot(index="held_out", columns="method", values="r2_mean_de")
    beats = int((wide["llm"] > wide["control"]).sum())
    print(f"\nllm > control on R² of DEG means: {beats}/{len(wide)} cell types")
    print(
        f"mean R² DEG: control {wide['control'].mean():.3f}, mean_shift {wide['mean_shift'].mean():.3f}, "
        f"llm {wide['llm'].mean():.3f} (llm − mean_shift {np.mean(wide['llm'] - wide['mean_shift']):+.3f})"
    )
    share = pd.DataFrame(infos)["valid_gene_share"]
    print(f"valid-gene share per generated sentence set: min {share.min():.4f}")


if __name__ == "__main__":
    main()
