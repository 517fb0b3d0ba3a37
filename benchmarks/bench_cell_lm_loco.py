"""The cell LM against its baselines on Kang 2018, leave-one-cell-type-out, all 7 folds, several seeds (issue 24).

One ``sl.tl.compare_perturbation`` call per seed (``calibrate=True``): ``control``, ``mean_shift``, ``llm`` (the
from-scratch gene-token model, relative decoding by default) and the split-half ``positive_control``, every
score also normalised per fold between the negative (``control``) and the positive control. Each seed's
per-fold table is written to ``--out`` (``seed<N>.csv``, skipped when present, so a run resumes), then the
checks of issue 24 are printed over every seed found there:

- ``llm`` above ``control`` on every fold on R² all genes, R² of DEG means and energy distance;
- ``llm`` ≥ ``mean_shift`` on R² of DEG means and ≤ on energy distance, on how many of the 7 folds;
- the seed spread (sd over seeds) of R² of DEG means per fold;
- the calibrated table (mean over folds of each normalised score).

    python benchmarks/bench_cell_lm_loco.py --seeds 0 1 2 [--out /tmp/sc_llm_loco] [--max-steps 500]
        [--hidden 64] [--layers 2] [--decode relative] [--n-models 1] [--summary-only]

Seeds run one after another in one process (``cpu_threads=1``); start one process per seed to use more cores
(they share ``--out``) and ``--summary-only`` afterwards.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from _machine import machine_line

MAIN = ["r2_mean_all", "r2_mean_de", "pearson_delta_de", "energy_distance", "wasserstein", "discrimination"]


def run_seed(seed: int, args) -> pd.DataFrame:
    import sc_llm as sl

    adata = sl.datasets.kang2018()
    llm = {"hidden_size": args.hidden, "num_layers": args.layers, "max_steps": args.max_steps, "lr": 2e-3}
    llm |= {"batch_size": 16, "cpu_threads": 1, "decode": args.decode, "n_models": args.n_models}
    tic = time.perf_counter()
    sl.tl.compare_perturbation(
        adata,
        condition_key="condition",
        control="control",
        perturbation="stimulated",
        cell_type_key="cell_type",
        methods=["control", "mean_shift", "llm"],
        n_genes=50,
        seed=seed,
        progress=False,
        **llm,
    )
    per = adata.uns["perturbation_comparison"]["per_cell_type"].copy()
    per["seed"] = seed
    print(f"seed {seed}: {time.perf_counter() - tic:.0f} s", flush=True)
    return per


def summarise(per: pd.DataFrame) -> None:
    seeds = sorted(per["seed"].unique())
    print(f"\n== {len(seeds)} seed(s) {seeds}; per fold, mean over seeds")
    mean = per.groupby(["held_out", "method"])[MAIN].mean()
    print(mean.round(3).to_string())
    w = {s: per.groupby(["held_out", "method"])[s].mean().unstack("method") for s in MAIN}
    n = len(w["r2_mean_de"])
    up = {s: int((w[s]["llm"] > w[s]["control"]).sum()) for s in ("r2_mean_all", "r2_mean_de")}
    up["energy_distance"] = int((w["energy_distance"]["llm"] < w["energy_distance"]["control"]).sum())
    print(f"\nllm better than control: {up} of {n} folds (target: all {n} on each)")
    de = int((w["r2_mean_de"]["llm"] >= w["r2_mean_de"]["mean_shift"]).sum())
    en = int((w["energy_distance"]["llm"] <= w["energy_distance"]["mean_shift"]).sum())
    print(f"llm >= mean_shift on R² DEG: {de}/{n} folds; llm <= mean_shift on energy: {en}/{n} (target: 4 of 7 each)")
    for s in ("r2_mean_de", "energy_distance"):
        gap = w[s]["llm"] - w[s]["mean_shift"]
        print(f"  {s} llm - mean_shift per fold: " + ", ".join(f"{t} {v:+.3f}" for t, v in gap.items()))
    if len(seeds) > 1:
        sd = per[per["method"] == "llm"].groupby("held_out")["r2_mean_de"].std()
        print(f"seed sd of llm's R² DEG per fold: max {sd.max():.3f}, mean {sd.mean():.3f} (target < 0.03)")
    norm = [f"{s}_norm" for s in MAIN if f"{s}_norm" in per]
    print("\n== calibrated: mean over folds and seeds (0 = control, 1 = positive control)")
    print(per.groupby("method")[norm].mean().round(3).to_string())


def main() -> None:
    print(machine_line())
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="/tmp/sc_llm_loco")
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--decode", default="relative", choices=["relative", "absolute"])
    ap.add_argument("--n-models", type=int, default=1)
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"settings: {vars(args)}")
    for seed in [] if args.summary_only else args.seeds:
        path = out / f"seed{seed}.csv"
        if not path.exists():
            per = run_seed(seed, args)
            per.to_csv(path.with_suffix(".tmp"), index=False)
            path.with_suffix(".tmp").replace(path)
    files = sorted(out.glob("seed*.csv"))
    if files:
        summarise(pd.concat([pd.read_csv(f) for f in files], ignore_index=True))
    else:
        print("no results yet")


if __name__ == "__main__":
    main()
