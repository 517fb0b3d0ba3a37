"""scGPT cell embeddings: sc_llm vs scGPT's own ``embed_data``, and peak memory at atlas scale.

Run from the repository root (needs ``pip install --no-deps scgpt==0.2.4`` plus ``datasets``)::

    python benchmarks/bench_scgpt.py                 # both parts
    python benchmarks/bench_scgpt.py --skip-memory   # throughput only

1. Throughput: the same tiny random checkpoint (d_model 32, 2 layers, pbmc68k's 765 genes) and the same
   cells (pbmc68k_reduced's ``.raw`` tiled to ``--n-cells``) through ``scgpt.tasks.embed_data`` and
   ``sl.tl.embed``, batch size 64 for both; cells/s and the ratio, plus the per-cell cosine between the two.
2. Memory: 200,000 cells × 20,000 genes, ~1,000 non-zeros per cell, written to an .h5ad by a separate
   process, then embedded by a fresh process from ``read_h5ad(backed='r')`` (and, with ``--in-memory``,
   from a fully loaded CSR matrix). Each process reports its own peak RSS (``VmHWM``).
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

import numpy as np
from _machine import machine_line

ROOT = Path(__file__).resolve().parents[1]


def _load_test_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _checkpoint(folder: Path, genes: list[str]) -> Path:
    return _load_test_module("conftest").save_tiny_scgpt(folder, genes, flash=True)


def _peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM; ru_maxrss would include the parent's at fork time)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(n_cells: int, work: Path) -> None:
    import anndata as ad
    import pandas as pd
    import scanpy as sc
    from scipy import sparse

    import sc_llm as sl

    _load_test_module("torchtext_vocab_stub").install()
    from scgpt.tasks import embed_data

    pbmc = sc.datasets.pbmc68k_reduced()
    genes = list(pbmc.raw.var_names)
    ckpt = _checkpoint(work / "tiny_scgpt", genes)
    base = pbmc.raw.X.tocsr().astype(np.float32)
    X = sparse.vstack([base] * (n_cells // base.shape[0] + 1), format="csr")[:n_cells]
    X.data += np.random.default_rng(0).uniform(0, 1e-3, X.nnz).astype(np.float32)  # no ties: deterministic bins
    adata = ad.AnnData(X, var=pd.DataFrame(index=genes))
    nnz = np.diff(X.indptr)
    print(f"[throughput] {n_cells} cells, {nnz.mean():.0f} genes/cell (max {nnz.max()}), tiny checkpoint d_model=32")

    t = time.perf_counter()
    ref = embed_data(adata.copy(), ckpt, gene_col="index", batch_size=64, device="cpu", return_new_adata=True).X
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    sl.tl.embed(adata, model=str(ckpt), batch_size=64, device="cpu", progress=False)
    t_ours = time.perf_counter() - t
    ours = adata.obsm["X_scgpt"]
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"[throughput] scgpt.tasks.embed_data: {t_ref:8.2f} s  {n_cells / t_ref:9.1f} cells/s")
    print(f"[throughput] sc_llm sl.tl.embed:     {t_ours:8.2f} s  {n_cells / t_ours:9.1f} cells/s")
    print(f"[throughput] speed-up: {t_ref / t_ours:.2f}x (target >= 1.5x); per-cell cosine min {cos.min():.5f}")


def _write_atlas(path: Path, ckpt_genes: list[str], n_cells: int, n_genes: int, nnz_per_cell: int) -> None:
    """Runs in its own process: write a random count matrix chunk by chunk into an .h5ad."""
    import anndata as ad
    import h5py
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(0)
    genes = list(ckpt_genes) + [f"FILLER{i}" for i in range(n_genes - len(ckpt_genes))]
    genes = list(np.array(genes)[rng.permutation(n_genes)])
    chunk = 10_000
    with h5py.File(path, "w") as f:
        ad.io.write_elem(f, "obs", pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)]))
        ad.io.write_elem(f, "var", pd.DataFrame(index=genes))
        for start in range(0, n_cells, chunk):
            rows = min(chunk, n_cells - start)
            counts = rng.poisson(nnz_per_cell, rows)
            indptr = np.concatenate([[0], np.cumsum(counts)])
            cols = rng.integers(0, n_genes, indptr[-1]).astype(np.int32)
            data = rng.geometric(0.4, indptr[-1]).astype(np.float32)
            X = sparse.csr_matrix((data, cols, indptr), shape=(rows, n_genes))
            X.sum_duplicates()
            if start == 0:
                ad.io.write_elem(f, "X", X)
            else:
                ad.io.sparse_dataset(f["X"]).append(X)


def _embed_atlas(path: Path, ckpt: Path, backed: bool) -> None:
    """Runs in its own process: embed the atlas and report this process's peak RSS."""
    import anndata as ad

    import sc_llm as sl

    adata = ad.read_h5ad(path, backed="r" if backed else None)
    X = adata.X
    data_mb = 0.0 if backed else (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    before = _peak_rss_mb()
    t = time.perf_counter()
    sl.tl.embed(adata, model=str(ckpt), batch_size=64, device="cpu", progress=False)
    elapsed = time.perf_counter() - t
    params = adata.uns["scgpt"]["params"]
    print(
        json.dumps(
            {
                "peak_rss_mb": _peak_rss_mb(),
                "rss_before_embed_mb": before,
                "matrix_mb": data_mb,
                "seconds": elapsed,
                "cells": adata.n_obs,
                "genes_matched": params["n_genes_matched"],
                "shape": list(adata.obsm["X_scgpt"].shape),
            }
        )
    )


def memory(work: Path, n_cells: int, n_genes: int, nnz_per_cell: int, in_memory: bool) -> None:
    import scanpy as sc

    genes = list(sc.datasets.pbmc68k_reduced().raw.var_names)
    ckpt = _checkpoint(work / "tiny_scgpt_mem", genes)
    path = work / "atlas.h5ad"
    t = time.perf_counter()
    args = [str(path), json.dumps(genes), str(n_cells), str(n_genes), str(nnz_per_cell)]
    subprocess.run([sys.executable, __file__, "--_write", *args], check=True)
    size = path.stat().st_size / 2**30
    elapsed = time.perf_counter() - t
    print(f"[memory] wrote {n_cells} x {n_genes} (~{nnz_per_cell} nnz/cell, {size:.2f} GiB) in {elapsed:.0f} s")
    dense_gb = n_cells * n_genes * 4 / 1e9
    modes = [("backed", True)] + ([("in-memory CSR", False)] if in_memory else [])
    for label, backed in modes:
        cmd = [sys.executable, __file__, "--_embed", str(path), str(ckpt), "1" if backed else "0"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        extra = f", of which the loaded matrix {r['matrix_mb']:.0f} MB" if not backed else ""
        print(
            f"[memory] {label}: peak RSS {r['peak_rss_mb']:.0f} MB{extra} "
            f"(before embedding {r['rss_before_embed_mb']:.0f} MB); "
            f"{r['cells']} cells in {r['seconds']:.0f} s ({r['cells'] / r['seconds']:.0f} cells/s), "
            f"{r['genes_matched']} genes in the vocabulary; target <= 2048 MB"
        )
    print(f"[memory] scGPT's embed_data densifies the matrix first: {dense_gb:.1f} GB of float32 for the same cells")


def main() -> None:
    print(machine_line())
    if len(sys.argv) > 1 and sys.argv[1] == "--_write":
        path, genes, n_cells, n_genes, nnz = sys.argv[2:]
        _write_atlas(Path(path), json.loads(genes), int(n_cells), int(n_genes), int(nnz))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--_embed":
        _embed_atlas(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=2000, help="cells for the throughput comparison")
    parser.add_argument("--atlas-cells", type=int, default=200_000)
    parser.add_argument("--atlas-genes", type=int, default=20_000)
    parser.add_argument("--atlas-nnz", type=int, default=1_000, help="mean non-zeros per cell")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--in-memory", action="store_true", help="also embed the atlas fully loaded in memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_throughput:
            throughput(args.n_cells, work)
        if not args.skip_memory:
            memory(work, args.atlas_cells, args.atlas_genes, args.atlas_nnz, args.in_memory)


if __name__ == "__main__":
    main()
