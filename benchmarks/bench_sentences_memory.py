"""Peak memory of ``sl.pp.cell_sentences(adata, n_genes=256)`` on 1,000,000 cells x 20,000 genes.

The input is a CSR matrix with 500 non-zeros per cell (float32 data, int32 indices: ~4 GB), written
chunk by chunk into pre-allocated arrays so that building it costs no more than the matrix itself.
The measurement runs in a fresh child process: resident memory (RSS) is read just before the call, the
kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), and the peak is read again afterwards; a
sampling thread (psutil, every 10 ms) cross-checks it. The reported figure is the peak *above* the
RSS held before the call (Python, the input matrix, the AnnData), so it includes the sentences written to
``.obs``.

    python benchmarks/bench_sentences_memory.py            # defaults: 1M cells, 20k genes, 500 nnz, top 256
    python benchmarks/bench_sentences_memory.py --cells 100000

Target: peak above the input <= 4 GB (the machine has 24 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from _machine import machine_line

GB = 1024**3


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class _Sampler(threading.Thread):
    """Poll this process's RSS and keep the maximum."""

    def __init__(self, interval: float = 0.01):
        super().__init__(daemon=True)
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.peak = self._proc.memory_info().rss
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, self._proc.memory_info().rss)


def _build_csr(n_cells: int, n_genes: int, nnz: int, seed: int = 0):
    """CSR with ``nnz`` distinct genes per cell (one per contiguous gene bin), geometric counts; ~no overhead."""
    import numpy as np
    from scipy import sparse

    if n_genes % nnz:
        msg = "--genes must be a multiple of --nnz"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    width = n_genes // nnz
    data = np.empty(n_cells * nnz, dtype=np.float32)
    indices = np.empty(n_cells * nnz, dtype=np.int32)
    base = np.arange(nnz, dtype=np.int32) * width
    step = 20_000
    for start in range(0, n_cells, step):
        stop = min(start + step, n_cells)
        sl = slice(start * nnz, stop * nnz)
        offsets = rng.integers(0, width, size=(stop - start, nnz), dtype=np.int32)
        indices[sl] = (offsets + base).ravel()
        data[sl] = rng.geometric(0.3, size=(stop - start) * nnz)
    indptr = np.arange(0, n_cells * nnz + 1, nnz, dtype=np.int64)
    X = sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes), copy=False)
    return X, data.nbytes + indices.nbytes + indptr.nbytes


def child(args: argparse.Namespace) -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd

    import sc_llm as sl

    t0 = time.perf_counter()
    X, input_bytes = _build_csr(args.cells, args.genes, args.nnz)
    names = [f"GENE{i}" for i in range(args.genes)]
    adata = ad.AnnData(X, obs=pd.DataFrame(index=np.arange(args.cells).astype(str)), var=pd.DataFrame(index=names))
    t_build = time.perf_counter() - t0
    if adata.X is not X and adata.X.data is not X.data:
        sys.exit("AnnData copied the input matrix; the measurement would be off.")

    rss_before = _status_kb("VmRSS")
    kernel_peak = _reset_peak()
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    sl.pp.cell_sentences(adata, n_genes=args.n_genes, use_raw=False)
    seconds = time.perf_counter() - t0
    sampled_peak = sampler.stop()
    hwm = _status_kb("VmHWM") if kernel_peak else None
    sentences = adata.obs["cell_sentence"]
    lengths = sentences.str.count(" ").to_numpy() + 1
    out_bytes = int(sum(sys.getsizeof(s) for s in sentences))
    print(
        json.dumps(
            {
                "input_bytes": int(input_bytes),
                "build_seconds": t_build,
                "rss_before": rss_before,
                "peak_kernel": hwm,
                "peak_sampled": sampled_peak,
                "seconds": seconds,
                "output_bytes": out_bytes,
                "genes_per_cell_min": int(lengths.min()),
                "genes_per_cell_max": int(lengths.max()),
            }
        )
    )


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=500, help="non-zeros per cell")
    parser.add_argument("--n-genes", type=int, default=256, help="top genes kept per cell")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--cells",
        str(args.cells),
        "--genes",
        str(args.genes),
        "--nnz",
        str(args.nnz),
        "--n-genes",
        str(args.n_genes),
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        sys.exit(f"child failed:\n{res.stderr}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    peak = max(p for p in (r["peak_kernel"], r["peak_sampled"]) if p is not None)
    above = peak - r["rss_before"]
    print(f"data: {args.cells:,} cells x {args.genes:,} genes, {args.nnz} non-zeros per cell; n_genes={args.n_genes}")
    built = f"(built in {r['build_seconds']:.0f} s)"
    print(f"input CSR matrix                     : {r['input_bytes'] / GB:7.2f} GB {built}")
    print(f"RSS before sl.pp.cell_sentences      : {r['rss_before'] / GB:7.2f} GB")
    kernel = "n/a" if r["peak_kernel"] is None else f"{r['peak_kernel'] / GB:.2f} GB"
    print(f"peak RSS during (kernel / sampled)   : {kernel} / {r['peak_sampled'] / GB:.2f} GB")
    print(
        f"sentences held in .obs (str objects) : {r['output_bytes'] / GB:7.2f} GB, "
        f"{r['genes_per_cell_min']}-{r['genes_per_cell_max']} genes per cell"
    )
    print(f"time                                 : {r['seconds']:7.1f} s ({args.cells / r['seconds']:,.0f} cells/s)")
    print(f"peak above the input                 : {above / GB:7.2f} GB   (target <= 4 GB)")


if __name__ == "__main__":
    main()
