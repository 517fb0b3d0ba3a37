"""Settings of a causal-LM fine-tuning run (:class:`FinetuneConfig`), checked before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FinetuneConfig:
    """How :func:`~sc_llm.core.finetune.engine.finetune_causal_lm` trains.

    Attributes
    ----------
    method
        ``'lora'`` (a peft LoRA adapter; the base weights stay frozen) or ``'full'`` (every weight; small models).
    epochs
        Passes over the training examples; ignored when ``max_steps`` is set.
    max_steps
        Number of optimizer steps (overrides ``epochs``; the data is cycled, reshuffled each epoch).
    lr, weight_decay
        AdamW learning rate (> 0) and decoupled weight decay.
    batch_size, gradient_accumulation_steps
        Examples per forward pass and forward passes per optimizer step. The loss is the mean over the answer
        tokens of the whole step, so ``batch_size=2, gradient_accumulation_steps=2`` equals ``batch_size=4``.
    warmup_steps, lr_schedule
        Linear warm-up over the first steps, then ``'linear'`` decay to 0, ``'cosine'`` decay, or ``'constant'``.
    max_grad_norm
        Gradient clipping by global norm (``None``: no clipping).
    lora_r, lora_alpha, lora_dropout, lora_target_modules
        LoRA rank, scaling numerator, dropout and the modules it adapts (``'all-linear'``: every linear layer
        but the output head; or a list of module names such as ``('q_proj', 'v_proj')``).
    modules_to_save
        Modules trained in full next to the adapter (e.g. ``('embed_tokens', 'lm_head')``).
    trainable_token_indices
        Token ids whose embedding rows are trained (peft's trainable tokens), e.g. newly added gene tokens.
    max_length
        Longest example allowed (prompt + answer + EOS); longer ones raise an error. ``None``: no limit.
    padding_side
        ``'right'`` or ``'left'``; attention masks and position ids make both give the same loss.
    token_budget
        If set, batches group examples of similar length with at most this many padded tokens per batch
        (and at most ``batch_size`` examples).
    eval_every
        Evaluate the validation loss every this many optimizer steps (``None``: at the end of every epoch);
        also before training (with validation data) and after the last step.
    patience, min_delta
        Stop after ``patience`` evaluations without the validation loss falling by more than ``min_delta``
        (``None``: never stop early). The weights with the best validation loss are restored at the end.
    eval_batch_size
        Batch size for validation (default: ``2 * batch_size``).
    seed
        Seeds adapter initialisation, dropout and data order; the caller's global RNG is left untouched.
    output_dir, save_every, resume
        Checkpoint folder (``None``: no checkpoints), steps between checkpoints (default: at every
        evaluation), and whether to continue from the latest checkpoint found in ``output_dir``.
    device, dtype
        Device (``None``: CUDA, then MPS, then CPU) and autocast dtype (``None``: bf16 on CUDA, fp16 with a
        gradient scaler where bf16 is unsupported, fp32 elsewhere).
    cpu_threads
        Intra-op threads on CPU during the run (``None``: leave torch's setting). Tiny models on a busy
        machine train many times faster on one thread.
    progress
        Show a tqdm progress bar.
    """

    method: str = "lora"
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 0
    lr_schedule: str = "linear"
    max_grad_norm: float | None = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str | tuple[str, ...] = "all-linear"
    modules_to_save: tuple[str, ...] | None = None
    trainable_token_indices: tuple[int, ...] | None = None
    max_length: int | None = None
    padding_side: str = "right"
    token_budget: int | None = None
    eval_every: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    eval_batch_size: int | None = None
    seed: int = 0
    output_dir: str | None = None
    save_every: int | None = None
    resume: bool = True
    device: Any = None
    dtype: Any = None
    cpu_threads: int | None = None
    progress: bool = True

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the field and the fix for any invalid setting."""
        choices = {"method": ("lora", "full"), "lr_schedule": ("linear", "cosine", "constant")}
        choices["padding_side"] = ("right", "left")
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                _fail(f"{name}={getattr(self, name)!r} is not one of {allowed}.")
        positive = ["epochs", "batch_size", "gradient_accumulation_steps", "lora_r"]
        optional = (
            "max_steps",
            "eval_every",
            "patience",
            "save_every",
            "eval_batch_size",
            "max_length",
            "token_budget",
            "cpu_threads",
        )
        positive += [n for n in optional if getattr(self, n) is not None]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(f"{name} must be a positive integer, got {value!r}.")
        if not self.lr > 0:
            _fail(f"lr must be > 0, got {self.lr!r}; typical LoRA values are 1e-4 to 1e-3.")
        if self.weight_decay < 0 or self.warmup_steps < 0 or self.min_delta < 0:
            _fail("weight_decay, warmup_steps and min_delta must be >= 0.")
        if not 0.0 <= self.lora_dropout < 1.0:
            _fail(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}.")
        if self.lora_alpha <= 0 or (self.max_grad_norm is not None and self.max_grad_norm <= 0):
            _fail("lora_alpha and max_grad_norm must be > 0 (max_grad_norm=None disables clipping).")
        if self.token_budget is not None and self.max_length is not None and self.token_budget < self.max_length:
            _fail(f"token_budget={self.token_budget} is below max_length={self.max_length}: no long example would fit.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python copy (tuples as lists, device/dtype as strings) for ``.uns`` or JSON."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
            elif key in ("device", "dtype") and value is not None:
                out[key] = str(value)
        return out


def _fail(message: str) -> None:
    msg = f"Invalid FinetuneConfig: {message}"
    raise ValueError(msg)
