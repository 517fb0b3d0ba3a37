"""A frozen Hugging Face text encoder that embeds cell sentences (tensor-only: no AnnData here)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..base.device import autocast, autocast_dtype, dtype_name, resolve_device
from ..base.identity import model_identity
from .gene_tokens import GeneTokenizer
from .hf_loading import SentenceConfig, load_hf_encoder, load_hf_tokenizer, read_sentence_config

_FALLBACK_MAX_LENGTH = 512


def pool(hidden, mask, mode: str):
    """Pool token states ``(batch, seq, dim)`` with attention ``mask`` ``(batch, seq)`` into ``(batch, dim)``."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode in ("mean", "mean_sqrt_len"):
        summed = (hidden * m).sum(1)
        counts = m.sum(1).clamp(min=1e-9)
        return summed / (counts if mode == "mean" else counts.sqrt())
    if mode == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(1).values
    if mode == "weightedmean":
        w = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)[None, :, None] * m
        return (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
    if mode == "lasttoken":
        last = mask.sum(1) - 1  # sequences are right-padded
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    msg = f"Unknown pooling {mode!r}."
    raise ValueError(msg)


def context_length(config: Any, st: SentenceConfig, max_length: int | None = None) -> int:
    """Tokens per sentence, special tokens included, checked against the model's position embeddings.

    ``max_length``, else the sentence-transformers ``max_seq_length``, else the position-embedding size capped
    at 512.
    """
    model_max = getattr(config, "max_position_embeddings", None) or _FALLBACK_MAX_LENGTH
    if max_length is None:
        max_length = st.max_seq_length or min(model_max, _FALLBACK_MAX_LENGTH)
    if max_length > model_max:
        msg = f"max_length={max_length} exceeds the model's {model_max} position embeddings."
        raise ValueError(msg)
    return int(max_length)


def load_gene_tokenizer(
    model: str, *, max_length: int | None = None, prefix: str | None = None, revision: str | None = None
) -> GeneTokenizer:
    """The :class:`GeneTokenizer` a :class:`TextEncoder` of ``model`` would use, without loading its weights."""
    tokenizer, config, _ = load_hf_tokenizer(str(model), revision=revision)
    st = read_sentence_config(str(model), revision=revision)
    return GeneTokenizer(tokenizer, context_length(config, st, max_length), prefix)


TOKENIZE_CHUNK = 4096  # sentences tokenised at a time while the GPU embeds the previous ones


def as_text_encoder(model: Any, **settings: Any) -> TextEncoder:
    """The one way to get a :class:`TextEncoder`: ``model`` itself if it is one, else loaded with ``settings``.

    ``settings`` are :class:`TextEncoder`'s keyword arguments; ``None`` values mean "the model's default".
    """
    if isinstance(model, TextEncoder):
        return model
    return TextEncoder(str(model), **settings)


class TextEncoder:
    """Frozen text encoder for cell sentences.

    Parameters
    ----------
    model
        Hugging Face hub id or local folder.
    revision
        Hub revision (branch, tag or commit).
    device
        ``None`` picks CUDA, then MPS, then CPU.
    max_length
        Tokens per sentence including special tokens. Default: the model's sentence-transformers
        ``max_seq_length``, else its ``max_position_embeddings`` (capped at 512).
    pooling, normalize
        Override the model's own sentence-transformers settings.
    dtype
        Compute dtype; default fp32 on CPU/MPS and bf16 (fp16 without bf16 support) autocast on CUDA.
    prefix
        Text placed before the genes of every sentence.
    trust_remote_code
        Passed to transformers; only set it for models whose code you trust.
    parallel_batches
        CPU only: how many batches run at once, sharing PyTorch's threads (``torch.get_num_threads()``), instead
        of PyTorch splitting every op of one batch across all of them. Default: one batch per thread, at most 4;
        ``1`` keeps PyTorch's own threading. The embeddings are the same either way. On CUDA, the next batches
        are instead prepared in a background thread, in pinned memory, while the device computes.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: Any = None,
        max_length: int | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        dtype: Any = None,
        prefix: str | None = None,
        trust_remote_code: bool = False,
        parallel_batches: int | None = None,
    ):
        import torch

        from ..base.threads import cpu_parallel_batches

        cpu_parallel_batches(parallel_batches, 1)  # a bad value fails before the weights load
        self.parallel_batches = parallel_batches

        self.model_id = str(model)
        self.device = resolve_device(device)
        self.compute_dtype = autocast_dtype(self.device, dtype)
        self.tokenizer, self.model, self.commit = load_hf_encoder(
            self.model_id, revision=revision, trust_remote_code=trust_remote_code
        )
        st = read_sentence_config(self.model_id, revision=revision)
        self.sentence_config = SentenceConfig(
            pooling=pooling or st.pooling,
            normalize=st.normalize if normalize is None else normalize,
            max_seq_length=st.max_seq_length,
            source=st.source,
        )
        self.max_length = context_length(self.model.config, st, max_length)
        self.genes = GeneTokenizer(self.tokenizer, self.max_length, prefix)
        self.model.eval().requires_grad_(False).to(self.device)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self._torch = torch

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.model.config.hidden_size)

    def params(self) -> dict[str, Any]:
        """Settings worth recording next to the embeddings."""
        return {
            "model": self.model_id,
            "revision": self.commit,
            "fingerprint": model_identity(self.model_id)["fingerprint"],
            "pooling": self.sentence_config.pooling,
            "normalize": self.sentence_config.normalize,
            "pooling_source": self.sentence_config.source,
            "max_length": self.max_length,
            "dtype": dtype_name(self.compute_dtype),
            "device": self.device.type,
            "prefix": self.genes.prefix or None,
            "tokenization": self.genes.mode,
        }

    def tokenize(self, sentences: Sequence[str]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids (special tokens included) and a truncation flag per sentence."""
        ids, truncated = self.genes(sentences)
        return ids, np.asarray(truncated, dtype=bool)

    def collate(self, ids: Sequence[Sequence[int]], *, pin: bool = False):
        """Right-padded ``input_ids`` and ``attention_mask`` on the host (page-locked with ``pin``)."""
        torch = self._torch
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
            mask[i, : len(x)] = 1
        if pin:
            return input_ids.pin_memory(), mask.pin_memory()
        return input_ids, mask

    def batch(self, ids: Sequence[Sequence[int]]):
        """Right-padded ``input_ids`` and ``attention_mask`` tensors on the encoder's device."""
        return self.to_device(self.collate(ids))

    def to_device(self, tensors):
        """Move host tensors to the encoder's device (asynchronously from pinned memory)."""
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)

    def forward_pooled(self, input_ids, attention_mask, inputs_embeds=None):
        """Sentence vectors for one batch (differentiable; callers choose the grad mode)."""
        kwargs = {"attention_mask": attention_mask}
        if inputs_embeds is not None:
            kwargs["inputs_embeds"] = inputs_embeds
        else:
            kwargs["input_ids"] = input_ids
        with autocast(self.device, self.compute_dtype):
            hidden = self.model(**kwargs).last_hidden_state
        out = pool(hidden.float(), attention_mask, self.sentence_config.pooling)
        if self.sentence_config.normalize:
            out = self._torch.nn.functional.normalize(out, p=2, dim=1)
        return out

    def encode_ids(
        self,
        ids: Sequence[Sequence[int]],
        *,
        batch_size: int = 32,
        token_budget: int | None = None,
        progress: bool = True,
        desc: str = "embedding",
    ) -> np.ndarray:
        """Embed pre-tokenised sequences; batches are formed by length and the input order is restored.

        With ``token_budget``, a batch holds as many sequences as fit in that many padded tokens (cells ×
        longest), so short sentences run in large batches and long ones in small; ``batch_size`` is then unused.
        """
        from tqdm.auto import tqdm

        batches = length_batches([len(x) for x in ids], batch_size=batch_size, token_budget=token_budget)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        with tqdm(total=len(ids), disable=not progress, desc=desc, unit="cell") as bar:
            for idx, X in self._embedded_batches(ids, batches):
                out[idx] = X
                bar.update(len(idx))
        return out

    def _embed_batch(self, ids: Sequence[Sequence[int]], idx) -> tuple[Any, np.ndarray]:
        with self._torch.inference_mode():  # thread-local: entered in the thread that computes
            return idx, self.forward_pooled(*self.batch([ids[i] for i in idx])).cpu().numpy()

    def _embedded_batches(self, ids: Sequence[Sequence[int]], batches: list) -> Iterator[tuple[Any, np.ndarray]]:
        """``(indices, embeddings)`` per batch, in order, overlapping host and device work (core.batch_pipeline)."""
        from ..base.batch_pipeline import ordered_map
        from ..base.threads import cpu_parallel_batches, cpu_threads

        torch = self._torch
        if self.device.type == "cuda":  # build the next batches in pinned memory while the GPU computes
            pinned = ordered_map(lambda idx: (idx, self.collate([ids[i] for i in idx], pin=True)), batches)
            with torch.inference_mode():
                for idx, host in pinned:
                    yield idx, self.forward_pooled(*self.to_device(host)).cpu().numpy()
            return
        n, threads = cpu_parallel_batches(self.parallel_batches, len(batches)) if self.device.type == "cpu" else (1, 0)
        if n == 1:
            for idx in batches:
                yield self._embed_batch(ids, idx)
            return
        with cpu_threads(threads):
            yield from ordered_map(lambda idx: self._embed_batch(ids, idx), batches, workers=n, ahead=n)

    def encode(
        self,
        sentences: Sequence[str],
        *,
        batch_size: int = 32,
        token_budget: int | None = None,
        progress: bool = True,
        desc: str = "embedding",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed cell sentences: ``(embeddings, truncated)``; ``desc`` labels the progress bar.

        On CUDA, sentences are tokenised in chunks of ``TOKENIZE_CHUNK`` in a background thread while the GPU
        embeds the previous chunk (tokenising is host work that would otherwise leave the GPU idle).
        """
        kw = {"batch_size": batch_size, "token_budget": token_budget}
        if self.device.type == "cuda" and len(sentences) > TOKENIZE_CHUNK:
            return self._encode_overlapped(sentences, progress=progress, desc=desc, **kw)
        ids, truncated = self.tokenize(sentences)
        return self.encode_ids(ids, progress=progress, desc=desc, **kw), truncated

    def _encode_overlapped(
        self, sentences: Sequence[str], *, chunk: int = 0, progress: bool = True, desc: str = "embedding", **kw
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode` with tokenising of the next chunk overlapping the embedding of this one."""
        from tqdm.auto import tqdm

        from ..base.batch_pipeline import prefetched

        chunk = chunk or TOKENIZE_CHUNK
        starts = range(0, len(sentences), chunk)
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        truncated = np.zeros(len(sentences), dtype=bool)
        tokenised = prefetched(starts, transform=lambda i: (i, self.tokenize(sentences[i : i + chunk])))
        with tqdm(total=len(sentences), disable=not progress, desc=desc, unit="cell") as bar:
            for start, (ids, flags) in tokenised:
                out[start : start + len(ids)] = self.encode_ids(ids, progress=False, **kw)
                truncated[start : start + len(ids)] = flags
                bar.update(len(ids))
        return out, truncated


def length_batches(lengths: Sequence[int], *, batch_size: int = 32, token_budget: int | None = None) -> list:
    """Index batches, longest sequences first: ``batch_size`` each, or as many as fit in ``token_budget``.

    With a budget, each batch starts at the longest remaining sequence ``L`` and holds ``max(1, budget // L)``
    sequences, so its padded size (cells × longest) never exceeds the budget unless one sequence alone does.
    """
    order = np.argsort([-int(x) for x in lengths], kind="stable")
    if token_budget is None:
        return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if token_budget < 1:
        msg = f"`token_budget` must be positive, got {token_budget}."
        raise ValueError(msg)
    batches, start = [], 0
    while start < len(order):
        size = max(1, int(token_budget) // max(int(lengths[order[start]]), 1))
        batches.append(order[start : start + size])
        start += size
    return batches
