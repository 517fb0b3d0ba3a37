"""How genes become tokens: subword text (``mode='text'``) or one token per gene (``mode='token'``).

Text mode keeps the model's own tokenizer: a gene is the token sequence of ``' ' + name`` as it continues
a sentence (byte-level BPE and SentencePiece both mark the word boundary in the first token), so a cell
sentence's ids are the concatenation of its genes' ids. Token mode adds one token per gene, ``<NAME>``, and
initialises its embedding (and output row, when untied) with the mean of the embeddings of the gene name's
subword tokens so pretrained knowledge carries over. :func:`build_gene_lm` makes a small Llama from scratch
whose vocabulary is the gene tokens plus a byte-level BPE for the prompt text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base.seeding import torch_seeded

_PROBE = "cell"


def continuation_ids(tokenizer: Any, word: str) -> list[int]:
    """Token ids of ``word`` as it appears after another word (with its leading space)."""
    head = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(f"{_PROBE} {word}", add_special_tokens=False)["input_ids"]
    if full[: len(head)] == head and len(full) > len(head):
        return list(full[len(head) :])
    return list(tokenizer(f" {word}", add_special_tokens=False)["input_ids"])


def gene_token(gene: str) -> str:
    """The added-token string of a gene in token mode."""
    return f"<{gene}>"


@dataclass
class GeneVocab:
    """The genes a model may write and their token ids.

    Parameters
    ----------
    genes
        Gene names, unique.
    ids
        Token ids of each gene (one id per gene in token mode).
    mode
        ``'text'`` or ``'token'``.
    """

    genes: list[str]
    ids: list[tuple[int, ...]]
    mode: str = "text"
    _index: dict[tuple[int, ...], int] = field(init=False, repr=False)

    def __post_init__(self):
        if len(set(self.genes)) != len(self.genes):
            msg = "Gene names of the vocabulary must be unique (make var_names unique first)."
            raise ValueError(msg)
        self._index = {}
        for i, seq in enumerate(self.ids):
            self._index.setdefault(tuple(seq), i)
        self.position = {g: i for i, g in enumerate(self.genes)}

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, genes: Sequence[str]) -> GeneVocab:
        """Text mode: each gene is the subword sequence the tokenizer gives its name."""
        genes = [str(g) for g in genes]
        return cls(genes, [tuple(continuation_ids(tokenizer, g)) for g in genes], mode="text")

    @classmethod
    def from_gene_tokens(cls, tokenizer: Any, genes: Sequence[str]) -> GeneVocab:
        """Token mode over a tokenizer that already holds the ``<GENE>`` tokens (see :func:`.add_gene_tokens`)."""
        genes = [str(g) for g in genes]
        ids = tokenizer.convert_tokens_to_ids([gene_token(g) for g in genes])
        missing = [g for g, i in zip(genes, ids, strict=True) if i is None or i == tokenizer.unk_token_id]
        if missing:
            msg = f"{len(missing)} genes have no gene token (e.g. {missing[:3]}); call add_gene_tokens first."
            raise ValueError(msg)
        return cls(genes, [(int(i),) for i in ids], mode="token")

    def encode(self, genes: Sequence[str]) -> list[int]:
        """Token ids of a cell sentence given as gene names; unknown genes raise."""
        try:
            return [t for g in genes for t in self.ids[self.position[g]]]
        except KeyError as e:
            msg = f"Gene {e.args[0]!r} is not in the model's gene vocabulary."
            raise KeyError(msg) from None

    def tokens_per_gene(self) -> float:
        """Mean number of tokens per gene."""
        return sum(len(s) for s in self.ids) / max(len(self.ids), 1)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"genes": self.genes, "ids": [list(s) for s in self.ids], "mode": self.mode}

    @classmethod
    def from_dict(cls, d: dict) -> GeneVocab:
        """Inverse of :meth:`to_dict`."""
        return cls(list(d["genes"]), [tuple(s) for s in d["ids"]], mode=d["mode"])


def add_gene_tokens(model: Any, tokenizer: Any, genes: Sequence[str]) -> GeneVocab:
    """Give every gene one new token, embedded as the mean of its name's subword embeddings.

    Changes ``model`` (embeddings resized) and ``tokenizer`` (tokens added) in place and returns the
    token-mode :class:`.GeneVocab`. Genes that already have a token keep it.
    """
    import torch

    genes = [str(g) for g in genes]
    subwords = [continuation_ids(tokenizer, g) for g in genes]
    tokenizer.add_tokens([gene_token(g) for g in genes])
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(len(tokenizer), rows), mean_resizing=False)
    vocab = GeneVocab.from_gene_tokens(tokenizer, genes)
    emb_in = model.get_input_embeddings().weight
    emb_out = model.get_output_embeddings().weight if model.get_output_embeddings() is not None else None
    tied = emb_out is None or emb_out.data_ptr() == emb_in.data_ptr()
    new = torch.tensor([s[0] for s in vocab.ids])
    with torch.no_grad():
        for table in [emb_in] if tied else [emb_in, emb_out]:
            means = torch.stack([table[torch.tensor(s)].float().mean(0) for s in subwords])
            table[new] = means.to(table.dtype)
    return vocab


def build_gene_lm(
    genes: Sequence[str],
    texts: Sequence[str],
    *,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    text_vocab_size: int = 512,
    max_length: int = 1024,
    seed: int = 0,
) -> tuple[Any, Any, GeneVocab]:
    """A small randomly initialised Llama whose vocabulary is one token per gene plus prompt text.

    The prompt text gets a byte-level BPE (the GPT-2/Pythia/SmolLM2 recipe) trained on ``texts`` (the filled
    prompt templates: cell types, perturbation names); any other text still tokenises byte by byte.

    Returns
    -------
    ``(model, tokenizer, vocab)``; save them with ``save_pretrained`` like any Hugging Face model.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=text_vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", model_max_length=max_length)
    tokenizer.add_tokens([gene_token(str(g)) for g in genes])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_length,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    with torch_seeded(seed):  # the initial weights; the caller's RNG is left alone
        model = LlamaForCausalLM(config)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, GeneVocab.from_gene_tokens(tokenizer, genes)


def init_gene_embeddings(model: Any, vocab: GeneVocab, vectors: Any) -> int:
    """Set the gene tokens' embedding rows from a genes × dimensions table (e.g. gene-description embeddings).

    ``vectors`` has one row per gene of ``vocab`` (in its order; a row of NaN keeps that gene's current
    embedding). The rows are centred and projected onto their first principal components, as many as the
    model's hidden size (padded with zeros when there are fewer dimensions), then scaled so that their mean
    norm equals the current gene rows' (random initialisation, or the mean of subword embeddings), so the
    change keeps the scale training expects. Tied output rows change with them; untied ones are left alone.
    Token mode only. Returns the number of genes set.
    """
    import torch

    if vocab.mode != "token":
        msg = "Gene embeddings initialise gene tokens: build the model with one token per gene (gene_tokens=True)."
        raise ValueError(msg)
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] != len(vocab.genes):
        msg = f"`gene_embeddings` must have one row per gene ({len(vocab.genes)}); got shape {V.shape}."
        raise ValueError(msg)
    ok = np.isfinite(V).all(1)
    if ok.sum() < 2:
        msg = "`gene_embeddings` has fewer than 2 genes with finite values: nothing to initialise from."
        raise ValueError(msg)
    table = model.get_input_embeddings().weight
    hidden = table.shape[1]
    A = V[ok] - V[ok].mean(0)
    _, _, vt = np.linalg.svd(A, full_matrices=False)  # principal axes, deterministic up to sign
    k = min(hidden, vt.shape[0])
    proj = np.zeros((len(A), hidden))
    proj[:, :k] = A @ vt[:k].T
    rows = torch.tensor([s[0] for s, keep in zip(vocab.ids, ok, strict=True) if keep])
    with torch.no_grad():
        target = table[rows].float().norm(dim=1).mean().item()
        scale = target / max(float(np.linalg.norm(proj, axis=1).mean()), 1e-12)
        table[rows] = torch.as_tensor(proj * scale, dtype=table.dtype)
    return int(ok.sum())
