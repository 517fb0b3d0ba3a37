"""Speed of ``sl.pp.cell_sentences`` against cell2sentence's ``generate_sentences``, measured in one run.

Data: a synthetic sparse matrix, 20,000 cells x 20,000 genes with 1,000 non-zero integer counts per cell
(many ties). Both tools rank every expressed gene of every cell. The check afterwards compares the two
rankings cell by cell *up to ties*: same genes, and the same expression value at every position
(cell2sentence breaks ties at random; sc_llm keeps the ``.var`` order).

cell2sentence 1.2.0 lives in the benchmarks' own environment (``bash benchmarks/setup_peers.sh``)::

    /tmp/sc_llm_bench_venv/bin/python benchmarks/bench_cell_sentences.py
    /tmp/sc_llm_bench_venv/bin/python benchmarks/bench_cell_sentences.py --peer-cells 5000  # time the peer on a subset

Target: sc_llm >= 10x the peer's cells/s. Each side is timed as the best of ``--rounds`` calls, and the run ends
with where sc_llm's time goes (ranking, spelling the sentences out, the rest), read from a profile of one call.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the peer draws a progress bar per call

import anndata as ad
import numpy as np
import pandas as pd
from _machine import best_of, machine_line
from scipy import sparse


def synthetic_counts(n_cells: int, n_genes: int, nnz_per_cell: int, seed: int = 0) -> sparse.csr_matrix:
    """CSR counts with exactly ``nnz_per_cell`` distinct genes per cell, built directly from arrays.

    Genes are split into ``nnz_per_cell`` contiguous bins and each cell draws one gene per bin, which gives
    distinct, sorted column indices without a per-cell loop. Counts are geometric (1, 2, 3, ...), so ties abound.
    """
    if n_genes % nnz_per_cell:
        msg = "n_genes must be a multiple of nnz_per_cell"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    width = n_genes // nnz_per_cell
    offsets = rng.integers(0, width, size=(n_cells, nnz_per_cell), dtype=np.int32)
    indices = (offsets + np.arange(nnz_per_cell, dtype=np.int32) * width).ravel()
    data = rng.geometric(0.3, size=n_cells * nnz_per_cell).astype(np.float32)
    indptr = np.arange(0, n_cells * nnz_per_cell + 1, nnz_per_cell, dtype=np.int64)
    return sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


def same_order_up_to_ties(X: sparse.csr_matrix, names: np.ndarray, ours: list[str], theirs: list[str]) -> int:
    """Number of cells whose two rankings differ beyond tie order (0 means they agree)."""
    index = {n: i for i, n in enumerate(names)}
    bad = 0
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        ga = np.array([index[w] for w in a.split()], dtype=np.int64)
        gb = np.array([index[w] for w in b.split()], dtype=np.int64)
        row = X[i]
        values = np.zeros(X.shape[1], dtype=np.float32)
        values[row.indices] = row.data
        ok = (
            len(ga) == len(gb) == row.nnz
            and np.array_equal(np.sort(ga), np.sort(gb))
            and np.array_equal(values[ga], values[gb])
            and np.all(np.diff(values[ga]) <= 0)
        )
        bad += not ok
    return bad


def where_time_goes(adata) -> str:
    """Shares of one ``sl.pp.cell_sentences`` call spent ranking, joining and elsewhere (a profile's view)."""
    import sc_llm as sl

    profile = cProfile.Profile()
    profile.runcall(sl.pp.cell_sentences, adata.copy())
    stats = pstats.Stats(profile).stats
    cumulative = {f"{Path(k[0]).name}:{k[2]}": v[3] for k, v in stats.items()}
    total = cumulative["_sentences.py:cell_sentences"]
    parts = {"ranking": cumulative["ranking.py:rank_genes"], "spelling out": cumulative["ranking.py:__call__"]}
    parts["validation and the rest"] = total - sum(parts.values())
    return ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in parts.items())


def main() -> None:
    warnings.filterwarnings("ignore", message="Replacing the existing")  # each timed call rewrites the same keys
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=1_000, help="non-zeros per cell")
    parser.add_argument("--peer-cells", type=int, default=None, help="time the peer on the first N cells only")
    parser.add_argument("--rounds", type=int, default=3, help="each side: the best of this many calls")
    args = parser.parse_args()

    try:
        from cell2sentence.utils import generate_sentences, generate_vocabulary
    except ImportError as err:
        sys.exit(f"cell2sentence is not importable ({err}). Run `bash benchmarks/setup_peers.sh` and use its python.")
    from importlib.metadata import version

    import sc_llm as sl

    X = synthetic_counts(args.cells, args.genes, args.nnz)
    names = np.array([f"GENE{i}" for i in range(args.genes)])  # upper-case: cell2sentence upper-cases its vocabulary
    adata = ad.AnnData(
        X, obs=pd.DataFrame(index=[f"cell{i}" for i in range(args.cells)]), var=pd.DataFrame(index=names)
    )
    n_peer = min(args.peer_cells or args.cells, args.cells)
    peer_adata = adata[:n_peer].copy()
    vocab = generate_vocabulary(peer_adata)  # set-up, not timed

    print(f"data: {args.cells:,} cells x {args.genes:,} genes, {args.nnz:,} non-zeros per cell (CSR float32)")
    print(f"sc_llm {sl.__version__}; cell2sentence {version('cell2sentence')}; numpy {np.__version__}")

    # warm-up of both code paths on a few cells (imports, first-call overheads)
    sl.pp.cell_sentences(adata[:50].copy())
    generate_sentences(adata[:50].copy(), vocab)

    t_ours = best_of(lambda: sl.pp.cell_sentences(adata), args.rounds, warmup=False)
    ours = adata.obs["cell_sentence"].tolist()
    theirs = []

    def peer() -> None:
        theirs[:] = generate_sentences(peer_adata, vocab)

    t_peer = best_of(peer, args.rounds, warmup=False)

    rate_ours, rate_peer = args.cells / t_ours, n_peer / t_peer
    subset = "" if n_peer == args.cells else f" (timed on the first {n_peer:,} cells)"
    print(f"sl.pp.cell_sentences                 : {t_ours:8.2f} s  {rate_ours:12,.0f} cells/s")
    print(f"cell2sentence.generate_sentences     : {t_peer:8.2f} s  {rate_peer:12,.0f} cells/s{subset}")
    print(
        f"speed-up (cells/s ratio)             : {rate_ours / rate_peer:8.1f}x   (target >= 10x; best of {args.rounds})"
    )
    print(f"where sc_llm's time goes             : {where_time_goes(adata)}")

    bad = same_order_up_to_ties(X, names, ours[:n_peer], theirs)
    print(f"same gene order up to ties           : {n_peer - bad:,}/{n_peer:,} cells agree")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
