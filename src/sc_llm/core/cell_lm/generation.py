"""Batched, KV-cached generation of cell sentences, constrained to the genes of a vocabulary.

:class:`GeneConstraint` is a transformers ``LogitsProcessor``: at every step it allows only tokens that
continue a gene of the vocabulary (a prefix tree over the genes' token sequences; in token mode every gene
is one token), start a gene not yet written in that sentence, or end the sentence. So every generated word
is a valid gene and no gene appears twice; after ``max_genes`` genes the sentence must end.
:func:`generate_sentences` runs Hugging Face ``generate`` over left-padded batches (sorted by prompt length
to waste little padding), greedy or sampled (per cell, see :mod:`~sc_llm.core.cell_lm.sampling`), and reports the
share of valid genes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gene_vocab import GeneVocab


class GeneTrie:
    """Prefix tree over the token sequences of a :class:`.GeneVocab` (node 0 is the root)."""

    def __init__(self, vocab: GeneVocab):
        self.children: list[dict[int, int]] = [{}]
        self.gene: list[int] = [-1]
        self.count: list[int] = [0]
        self.paths: list[list[int]] = []
        for gi, seq in enumerate(vocab.ids):
            node, path = 0, [0]
            for t in seq:
                nxt = self.children[node].get(t)
                if nxt is None:
                    nxt = len(self.gene)
                    self.children[node][t] = nxt
                    self.children.append({})
                    self.gene.append(-1)
                    self.count.append(0)
                node = nxt
                path.append(node)
            self.paths.append(path)
            if self.gene[node] == -1:  # a second gene with the same tokens would be unreachable
                self.gene[node] = gi
                for n in path:
                    self.count[n] += 1
        self.max_depth = max((len(s) for s in vocab.ids), default=1)


class _RowState:
    """Where one sentence is in the tree, and how many genes under every node it has written."""

    def __init__(self, n_nodes: int):
        self.node = 0
        self.n_done = 0
        self.finished = False
        self.used = np.zeros(n_nodes, dtype=np.int32)
        self.done_genes: set[int] = set()


class GeneConstraint:
    """Logits processor: only genes of the vocabulary, none twice, at most ``max_genes``, then the end.

    Parameters
    ----------
    trie
        The :class:`GeneTrie` of the vocabulary.
    end_ids
        Tokens that end a sentence (e.g. ``'.'`` and EOS); allowed once ``min_genes`` genes are complete.
    max_genes, min_genes
        Bounds on the number of genes per sentence.
    stop_ids
        Tokens allowed once a sentence has ended (default ``end_ids``); generation should stop on them. Pass
        EOS when an end token can also occur inside gene names (``'.'`` in ``AC009133.22``): a token that
        continues the current gene is read as part of it, and the sentence then ends only at a gene boundary.
    """

    def __init__(
        self,
        trie: GeneTrie,
        end_ids: Sequence[int],
        *,
        max_genes: int,
        min_genes: int = 1,
        stop_ids: Sequence[int] | None = None,
    ):
        self.trie, self.end_ids = trie, list(end_ids)
        self.stop_ids = list(stop_ids) if stop_ids is not None else self.end_ids
        self.max_genes, self.min_genes = int(max_genes), int(min_genes)
        self.rows: list[_RowState] | None = None
        self.prompt_len: int | None = None
        self._count = np.asarray(trie.count, dtype=np.int32)
        self._tokens = [np.fromiter(c.keys(), dtype=np.int64, count=len(c)) for c in trie.children]
        self._nodes = [np.fromiter(c.values(), dtype=np.int64, count=len(c)) for c in trie.children]

    def _available(self, row: _RowState, node: int, also_used: int = -1) -> np.ndarray:
        """Child tokens of ``node`` whose subtree still holds a gene this row has not written."""
        nodes = self._nodes[node]
        left = self._count[nodes] - row.used[nodes]
        if also_used >= 0:
            left = left - np.isin(nodes, self.trie.paths[also_used])
        return self._tokens[node][left > 0]

    def _complete(self, row: _RowState) -> None:
        gi = self.trie.gene[row.node]
        row.used[self.trie.paths[gi]] += 1
        row.done_genes.add(gi)
        row.n_done += 1

    def _advance(self, row: _RowState, t: int) -> None:
        if row.finished:
            return
        children = self.trie.children
        if row.node != 0 and t in children[row.node]:
            row.node = children[row.node][t]
        elif t in self.end_ids or t in self.stop_ids:
            if row.node != 0 and self.trie.gene[row.node] >= 0:
                self._complete(row)
            row.finished = True
        elif t in children[0]:
            if row.node != 0 and self.trie.gene[row.node] >= 0:
                self._complete(row)
            row.node = children[0][t]
        else:  # a token outside the vocabulary (only when not constrained): the sentence is broken
            row.finished = True

    def allowed(self, row: _RowState) -> list[int] | np.ndarray:
        """Token ids allowed next for one row."""
        if row.finished:
            return self.stop_ids
        gi = self.trie.gene[row.node] if row.node != 0 else -1
        ending_ok = row.node == 0 or (gi >= 0 and gi not in row.done_genes)
        n_after = row.n_done + (1 if row.node != 0 else 0)  # genes complete if the current one ends now
        parts = [self._available(row, row.node)] if row.node != 0 else []
        if ending_ok and n_after < self.max_genes:
            parts.append(self._available(row, 0, also_used=gi))
        if ending_ok and n_after >= self.min_genes:
            parts.append(np.asarray(self.end_ids, dtype=np.int64))
        out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return out if len(out) else self.end_ids

    def __call__(self, input_ids, scores):
        """Mask ``scores`` (batch × vocab) to the allowed tokens of every row."""
        import torch

        if self.rows is None or self.prompt_len is None:
            self.rows = [_RowState(len(self._count)) for _ in range(input_ids.shape[0])]
            self.prompt_len = input_ids.shape[1]
        elif input_ids.shape[1] > self.prompt_len:
            for row, t in zip(self.rows, input_ids[:, -1].tolist(), strict=True):
                self._advance(row, t)
        mask = torch.ones(scores.shape, dtype=torch.bool)
        for i, row in enumerate(self.rows):
            mask[i, torch.as_tensor(np.asarray(self.allowed(row), dtype=np.int64))] = False
        return scores.masked_fill(mask.to(scores.device), float("-inf"))


@dataclass
class GenerationResult:
    """Generated sentences and how valid they are.

    ``genes[i]`` are the valid genes of sentence ``i`` in order (invalid words and repeats dropped);
    ``n_words[i]`` counts every word written, ``n_valid[i]`` the valid, first-occurrence genes among them.
    """

    genes: list[list[str]]
    n_words: np.ndarray
    n_valid: np.ndarray
    n_new_tokens: int
    seconds: float
    dtype: str = "float32"  # the precision the sentences were computed in

    @property
    def valid_share(self) -> float:
        """Share of valid genes over all words generated."""
        return float(self.n_valid.sum() / max(self.n_words.sum(), 1))

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens (up to each sentence's end) per second."""
        return self.n_new_tokens / max(self.seconds, 1e-9)


def parse_sentence(ids: Sequence[int], vocab: GeneVocab, tokenizer: Any, end_ids: Sequence[int]):
    """Words of generated ids up to the end → ``(valid genes in order, number of words)``.

    Token mode maps ids up to the first end token to genes (any other token is an invalid word); text mode
    decodes the ids up to EOS (an end token such as ``'.'`` may sit inside a gene name), splits on
    whitespace and drops a period glued to the last word. Repeated genes count as invalid.
    """
    ids = list(ids)
    cut = end_ids if vocab.mode == "token" else [tokenizer.eos_token_id]
    for i, t in enumerate(ids):
        if t in cut:
            ids = ids[:i]
            break
    if vocab.mode == "token":
        by_id = {s[0]: g for g, s in zip(vocab.genes, vocab.ids, strict=True)}
        words = [by_id.get(t) for t in ids]
    else:
        words = tokenizer.decode(ids, skip_special_tokens=True).split()
        # a closing period glued to the last word is not part of it (gene names may hold dots: AC009133.22)
        words = [w if w in vocab.position else w.rstrip(".") for w in words]
    seen: set[str] = set()
    valid = []
    for w in words:
        if w is not None and w in vocab.position and w not in seen:
            seen.add(w)
            valid.append(w)
    return valid, len(words)


def _batches(prompts: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    order = np.argsort([-len(p) for p in prompts], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _left_pad(prompts: list[Sequence[int]], pad_id: int, device):
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


def generate_sentences(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    vocab: GeneVocab,
    *,
    end_ids: Sequence[int],
    max_genes: int,
    min_genes: int = 1,
    constrained: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    cell_keys: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 16,
    progress: bool = False,
    max_new_tokens: int | None = None,
    generate_kwargs: dict[str, Any] | None = None,
    dtype: Any = None,
) -> GenerationResult:
    """Generate one cell sentence per prompt (token ids), batched with left padding and a KV cache.

    Parameters
    ----------
    model, tokenizer
        From ``sc_llm.core.llm.loading.load_causal_lm`` (or any causal LM and its tokenizer).
    prompts
        Prompt token ids, one list per sentence to generate.
    vocab
        The genes allowed.
    end_ids
        Tokens that end a sentence (the answer template's closing text, EOS).
    max_genes, min_genes
        Bounds on genes per sentence (enforced only when ``constrained``).
    constrained
        Apply :class:`GeneConstraint`. Without it the model writes freely and invalid words are counted.
    do_sample, temperature, top_k, top_p, seed
        Greedy decoding, or sampling: each sentence from its own random stream, seeded by ``seed`` and its
        cell key (:class:`~sc_llm.core.cell_lm.sampling.CellSampler`), so it is the same in any batch or shard.
    cell_keys
        One non-negative 64-bit key per prompt, the identity of the cell it writes (default: its position).
    batch_size
        Sentences generated together.
    progress
        Show a progress bar over batches.
    max_new_tokens
        Token limit per sentence (default: enough for ``max_genes`` of the longest genes and the end token).
    generate_kwargs
        Further arguments of ``model.generate`` (e.g. ``min_new_tokens`` for fixed-length benchmarks).
    dtype
        Compute precision (``sc_llm.core.base.device.autocast_dtype``); ``None``: the one the model was loaded
        to compute in (``sc_llm.core.llm.loading.compute_dtype``). The result's ``dtype`` says which ran.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import LogitsProcessorList

    from ..base.device import autocast, autocast_dtype, dtype_name
    from ..llm.loading import compute_dtype
    from .sampling import CellSampler

    trie = GeneTrie(vocab)
    device = next(model.parameters()).device
    max_new = max_new_tokens or trie.max_depth * int(max_genes) + 2
    stop = [tokenizer.eos_token_id]  # constrained: the processor ends a sentence with its end tokens, then EOS
    keys = np.arange(len(prompts), dtype=np.uint64) if cell_keys is None else np.asarray(cell_keys, dtype=np.uint64)
    if len(keys) != len(prompts):
        msg = f"`cell_keys` has {len(keys)} entries for {len(prompts)} prompts."
        raise ValueError(msg)
    genes: list[list[str]] = [[] for _ in prompts]
    n_words = np.zeros(len(prompts), dtype=np.int64)
    n_tokens, start = 0, time.perf_counter()
    amp_dtype = compute_dtype(model) if dtype is None else autocast_dtype(device, dtype, work="generate")
    amp = autocast(device, amp_dtype)
    with torch.inference_mode(), amp:
        for idx in tqdm(_batches(prompts, batch_size), disable=not progress, desc="generating", unit="batch"):
            ids, mask = _left_pad([prompts[i] for i in idx], tokenizer.pad_token_id, device)
            processors = LogitsProcessorList()
            if constrained:
                processors.append(
                    GeneConstraint(trie, end_ids, max_genes=max_genes, min_genes=min_genes, stop_ids=stop)
                )
            if do_sample:  # after the constraint: noise never revives a forbidden token (-inf stays -inf)
                processors.append(CellSampler(keys[idx], seed, temperature=temperature, top_k=top_k, top_p=top_p))
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new,
                logits_processor=processors,
                eos_token_id=stop if constrained else list(end_ids),
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
                do_sample=False,
                top_k=None,
                top_p=None,
                temperature=None,
                **(generate_kwargs or {}),
            )
            for row, i in zip(out[:, ids.shape[1] :].tolist(), idx, strict=True):
                genes[i], n_words[i] = parse_sentence(row, vocab, tokenizer, end_ids)
                n_tokens += _n_generated(row, stop if constrained else end_ids)
    n_valid = np.array([len(g) for g in genes], dtype=np.int64)
    seconds = time.perf_counter() - start
    return GenerationResult(genes, n_words, n_valid, n_tokens, seconds, dtype=dtype_name(amp_dtype))


def _n_generated(row: Sequence[int], end_ids: Sequence[int]) -> int:
    """Tokens generated up to and including the first end token (the rest is padding)."""
    for i, t in enumerate(row):
        if t in end_ids:
            return i + 1
    return len(row)
