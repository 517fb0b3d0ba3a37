"""Inference-only scGPT cell encoder, state-dict compatible with scGPT's ``TransformerModel``.

Only the parts on the path to the ``<cls>`` cell embedding exist here: the gene-token embedding
(``encoder.*``), the expression-value encoder (``value_encoder.*``) and the transformer stack
(``transformer_encoder.layers.{i}.*``, PyTorch's ``in_proj_`` naming). Decoders, batch-label and
batch-norm modules of a checkpoint are not needed for the cell embedding and are not built.
Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`; flash-attn is not needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VALUE_ENCODERS = ("continuous", "category", "scaling")
NORM_SCHEMES = ("post", "pre")


class GeneEncoder(nn.Module):
    """Gene-token embedding followed by layer norm (keys ``embedding``, ``enc_norm``)."""

    def __init__(self, n_tokens: int, d_model: int):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, d_model)
        self.enc_norm = nn.LayerNorm(d_model)

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` token ids → ``(batch, seq, d_model)``."""
        return self.enc_norm(self.embedding(genes))


class ContinuousValueEncoder(nn.Module):
    """Binned value → ``Linear(1, d)`` → ReLU → ``Linear(d, d)`` → layer norm; values clipped at 512."""

    def __init__(self, d_model: int, max_value: float = 512):
        super().__init__()
        self.linear1 = nn.Linear(1, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.max_value = max_value

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` binned values → ``(batch, seq, d_model)``."""
        x = values.unsqueeze(-1).clamp(max=self.max_value)
        return self.norm(self.linear2(F.relu(self.linear1(x))))


class CategoryValueEncoder(nn.Module):
    """One learned vector per bin, followed by layer norm (keys ``embedding``, ``enc_norm``)."""

    def __init__(self, n_bins: int, d_model: int):
        super().__init__()
        self.embedding = nn.Embedding(n_bins, d_model)
        self.enc_norm = nn.LayerNorm(d_model)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` bin indices → ``(batch, seq, d_model)``."""
        return self.enc_norm(self.embedding(values.long()))


class SelfAttention(nn.Module):
    """Multi-head self-attention with PyTorch's parameter names (``in_proj_weight``, ``out_proj``)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, *, first_only: bool = False) -> torch.Tensor:
        """Attend over ``x`` ``(batch, seq, d)``; ``keep`` ``(batch, seq)`` is False at padding.

        With ``first_only`` only the first position is queried (all that the ``<cls>`` output needs).
        """
        d = x.shape[-1]
        w, bias = self.in_proj_weight, self.in_proj_bias
        q_in = x[:, :1] if first_only else x
        q = F.linear(q_in, w[:d], bias[:d])
        k, v = F.linear(x, w[d:], bias[d:]).chunk(2, dim=-1)
        mask = keep[:, None, None, :]
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), attn_mask=mask)
        out = out.transpose(1, 2).reshape(q_in.shape)
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    """One transformer layer: self-attention and a ReLU feed-forward block, each with residual and norm.

    ``norm_scheme='post'`` is PyTorch's ``TransformerEncoderLayer`` (what scGPT runs without flash-attn);
    ``'pre'`` is scGPT's own pre-norm variant of its flash-attention layer.
    """

    def __init__(self, d_model: int, n_heads: int, d_hid: int, norm_scheme: str = "post", eps: float = 1e-5):
        super().__init__()
        self.self_attn = SelfAttention(d_model, n_heads)
        self.linear1 = nn.Linear(d_model, d_hid)
        self.linear2 = nn.Linear(d_hid, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.norm_scheme = norm_scheme

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))

    def forward(self, x: torch.Tensor, keep: torch.Tensor, *, first_only: bool = False) -> torch.Tensor:
        """Transform ``x`` ``(batch, seq, d)``; with ``first_only`` return only the first position's output."""
        if self.norm_scheme == "pre":
            x = self.norm1(x)
            x = (x[:, :1] if first_only else x) + self.self_attn(x, keep, first_only=first_only)
            x = self.norm2(x)
            return x + self._ff(x)
        x = self.norm1((x[:, :1] if first_only else x) + self.self_attn(x, keep, first_only=first_only))
        return self.norm2(x + self._ff(x))


class LayerStack(nn.Module):
    """Holds ``layers`` so that keys read ``transformer_encoder.layers.{i}.…`` as in scGPT."""

    def __init__(self, layers: list[EncoderLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class ScGPTCellEncoder(nn.Module):
    """scGPT's encoder path up to the ``<cls>`` output.

    Parameters
    ----------
    n_tokens
        Rows of the gene-token embedding (the vocabulary size of the checkpoint).
    d_model, n_heads, d_hid, n_layers
        ``embsize``, ``nheads``, ``d_hid``, ``nlayers`` of ``args.json``.
    input_emb_style
        Value encoder: ``'continuous'`` (scGPT's default), ``'category'`` or ``'scaling'``.
    n_value_bins
        Rows of the category value embedding (``'category'`` only).
    norm_scheme
        ``'post'`` (default) or ``'pre'`` (``pre_norm: true`` in ``args.json``).
    """

    def __init__(
        self,
        n_tokens: int,
        d_model: int,
        n_heads: int,
        d_hid: int,
        n_layers: int,
        *,
        input_emb_style: str = "continuous",
        n_value_bins: int | None = None,
        norm_scheme: str = "post",
    ):
        super().__init__()
        if input_emb_style not in VALUE_ENCODERS:
            msg = f"input_emb_style must be one of {VALUE_ENCODERS}, got {input_emb_style!r}."
            raise ValueError(msg)
        if norm_scheme not in NORM_SCHEMES:
            msg = f"norm_scheme must be one of {NORM_SCHEMES}, got {norm_scheme!r}."
            raise ValueError(msg)
        if d_model % n_heads:
            msg = f"embsize ({d_model}) must be divisible by nheads ({n_heads})."
            raise ValueError(msg)
        self.input_emb_style = input_emb_style
        self.d_model = d_model
        self.encoder = GeneEncoder(n_tokens, d_model)
        if input_emb_style == "continuous":
            self.value_encoder = ContinuousValueEncoder(d_model)
        elif input_emb_style == "category":
            if not n_value_bins:
                msg = "input_emb_style='category' needs the number of value bins (`n_value_bins`)."
                raise ValueError(msg)
            self.value_encoder = CategoryValueEncoder(n_value_bins, d_model)
        else:
            self.value_encoder = None
        self.transformer_encoder = LayerStack(
            [EncoderLayer(d_model, n_heads, d_hid, norm_scheme) for _ in range(n_layers)]
        )

    def forward(self, genes: torch.Tensor, values: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """``<cls>`` output ``(batch, d_model)`` (not normalised).

        Parameters
        ----------
        genes
            Token ids ``(batch, seq)``, ``<cls>`` first.
        values
            Binned expression ``(batch, seq)``; the ``<cls>`` and padding positions hold ``pad_value``.
        padding_mask
            ``(batch, seq)``, True at padding (scGPT's ``src_key_padding_mask``).
        """
        x = self.encoder(genes)
        if self.value_encoder is None:
            x = x * values.unsqueeze(-1).to(x.dtype)
        else:
            x = x + self.value_encoder(values)
        keep = ~padding_mask
        layers = self.transformer_encoder.layers
        for i, layer in enumerate(layers):
            x = layer(x, keep, first_only=i == len(layers) - 1)
        return x[:, 0]
