"""Kang 2018 leave-one-cell-type-out perturbation benchmark: baselines, the sentence oracle, and scGen as the peer.

    python benchmarks/bench_perturbation.py                                   # sc_llm methods only
    python benchmarks/bench_perturbation.py --scgen-python /path/to/venv/bin/python   # + scGen, same run

Prints (1) the sentence decoders' held-out R², (2) the table of every score, mean ± sd over the 7 held-out
cell types, (3) R² of DEG means per held-out cell type, (4) wall-clock times. scGen (pertpy's
implementation) runs in its own environment through benchmarks/scgen_peer.py; its predictions are scored
here with the same DEGs, PCA space and metrics as ours.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from _machine import machine_line

import sc_llm as sl

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}
METHODS = ("control", "mean_shift", "pca_shift", "sentence_oracle")
SHOW = (
    "r2_mean_all",
    "r2_mean_de",
    "pearson_delta_de",
    "kendall_tau_de",
    "energy_distance",
    "mmd2",
    "wasserstein",
    "frechet",
)


def decoders(adata: ad.AnnData) -> pd.DataFrame:
    sl.pp.cell_sentences(adata)
    rows = {}
    for kind in ("global", "isotonic", "per_gene"):
        tic = time.perf_counter()
        sl.tl.fit_sentence_decoder(adata, kind=kind, key_added=f"decoder_{kind}")
        m = adata.uns[f"decoder_{kind}"]["metrics"]
        rows[kind] = {
            "r2_heldout (expressed genes, C2S)": m["r2_heldout"],
            "r2_heldout_all_genes": m["r2_heldout_all_genes"],
            "n_fit": m["n_cells_fit"],
            "n_heldout": m["n_cells_heldout"],
            "seconds": time.perf_counter() - tic,
        }
    return pd.DataFrame(rows).T


def scgen_scores(adata: ad.AnnData, python: str, held_out: list[str], max_epochs: int, n_de: int) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "kang.h5ad"
        adata.write_h5ad(data)
        peer = Path(__file__).with_name("scgen_peer.py")
        cmd = [
            python,
            str(peer),
            "--data",
            str(data),
            "--out",
            tmp,
            "--max-epochs",
            str(max_epochs),
            "--cell-types",
            *held_out,
        ]
        subprocess.run(cmd, check=True)
        rows = []
        for t in held_out:
            pred = ad.read_h5ad(Path(tmp) / f"{t}.h5ad")
            pred = pred[:, adata.var_names].copy()
            in_t = (adata.obs["cell_type"] == t).to_numpy()
            real = adata[in_t & (adata.obs["condition"] == "stimulated").to_numpy()]
            ctrl = adata[in_t & (adata.obs["condition"] == "control").to_numpy()]
            de = sl.metrics.de_genes(real, ctrl, n_de=n_de)
            pred.X = np.asarray(pred.X.toarray() if hasattr(pred.X, "toarray") else pred.X)
            s = sl.metrics.perturbation_scores(pred, real, ctrl, de_genes=de, n_comps=50, seed=0)
            rows.append({"held_out": t, "method": "scGen", **s, "seconds": float(pred.uns["seconds"])})
    return pd.DataFrame(rows)


def summary(per: pd.DataFrame) -> pd.DataFrame:
    order = list(dict.fromkeys(per["method"]))
    g = per.groupby("method", sort=False)
    cols = {s: [f"{g[s].mean()[m]:.3f} ± {g[s].std(ddof=1)[m]:.3f}" for m in order] for s in SHOW}
    return pd.DataFrame(cols, index=order)


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser()
    parser.add_argument("--scgen-python", help="interpreter of an environment with pertpy (scGen); omit to skip")
    parser.add_argument("--scgen-epochs", type=int, default=100)
    parser.add_argument("--n-de", type=int, default=100)
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)

    adata = sl.datasets.kang2018()
    print(f"Kang 2018: {adata.n_obs} cells x {adata.n_vars} genes")
    print("\n== sentence -> expression decoders (20% of cells held out, seed 0) ==")
    print(decoders(adata).to_string(float_format=lambda v: f"{v:.3f}"))

    tic = time.perf_counter()
    sl.tl.compare_perturbation(adata, **KW, methods=METHODS, n_de=args.n_de, progress=False)
    ours_s = time.perf_counter() - tic
    res = adata.uns["perturbation_comparison"]
    per = res["per_cell_type"]
    held_out = res["params"]["held_out"]
    scgen_s = None
    if args.scgen_python:
        tic = time.perf_counter()
        per = pd.concat([per, scgen_scores(adata, args.scgen_python, held_out, args.scgen_epochs, args.n_de)])
        scgen_s = time.perf_counter() - tic

    print(
        f"\n== leave-one-cell-type-out, {len(held_out)} held-out cell types, top {args.n_de} DEGs; distances in "
        f"{res['params']['space']} (W2 {per['wasserstein_method'].iloc[0]}) =="
    )
    print(summary(per).to_string())
    r2 = per.pivot(index="held_out", columns="method", values="r2_mean_de")[list(dict.fromkeys(per["method"]))]
    print("\n== R² of DEG means per held-out cell type ==")
    print(r2.to_string(float_format=lambda v: f"{v:.3f}"))
    wins = int((r2["mean_shift"] > r2["control"]).sum())
    print(f"\nmean_shift above control on R² of DEG means: {wins}/{len(r2)} cell types")
    secs = per.groupby("method", sort=False)["seconds"].sum()
    print("\n== time ==")
    print(f"sc_llm table (4 methods x {len(held_out)} cell types, with scoring): {ours_s:.1f} s")
    print("per method, predictions only (s): " + ", ".join(f"{m} {v:.1f}" for m, v in secs.items()))
    if scgen_s is not None:
        print(
            f"scGen ({args.scgen_epochs} max epochs, CPU), train+predict {len(held_out)} folds: {scgen_s:.1f} s; "
            f"ratio scGen/pca_shift predictions {secs['scGen'] / secs['pca_shift']:.1f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
