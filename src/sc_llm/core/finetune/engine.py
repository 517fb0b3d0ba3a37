"""Fine-tune a Hugging Face causal LM on tokenised prompt/answer pairs (tensor-only; no AnnData).

:func:`.finetune_causal_lm` trains a peft LoRA adapter (or every weight) with the loss on answer tokens only,
validation loss with early stopping (the best weights are kept), gradient accumulation, bf16 autocast on
CUDA (fp16 + gradient scaling where bf16 is unsupported), seeded data order and initialisation, a tqdm
progress bar, and atomic checkpoints from which an interrupted run resumes to the same final weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base.seeding import torch_seeded
from ..base.threads import cpu_threads
from .checkpointing import latest_checkpoint, load_checkpoint, load_trainable_state, save_checkpoint, trainable_state
from .config import FinetuneConfig
from .data import Example, as_examples, collate, plan_batches
from .loss import accumulate_gradients, evaluate_loss


@dataclass
class FinetuneResult:
    """What :func:`.finetune_causal_lm` returns.

    Attributes
    ----------
    model
        The trained model (a ``peft.PeftModel`` for ``method='lora'``), in eval mode, holding the best weights.
    history
        JSON-ready dict: ``step``, ``epoch``, ``train_loss``, ``val_loss``, ``lr`` (one entry per evaluation;
        ``val_loss`` is ``None`` without validation data), ``best_step``, ``best_val_loss``, ``n_steps``,
        ``stopped_early``, ``resumed_from_step``, ``train_tokens`` (non-padding tokens), ``train_seconds``,
        ``step_seconds`` (per optimizer step), ``device``, ``dtype``, ``config``.
    """

    model: Any
    history: dict[str, Any]


@dataclass
class _State:
    """Progress of a run; everything in here goes into the checkpoint."""

    step: int = 0
    history: dict[str, list] = field(
        default_factory=lambda: {"step": [], "epoch": [], "train_loss": [], "val_loss": [], "lr": []}
    )
    best_loss: float = math.inf
    best_step: int | None = None
    waited: int = 0
    tokens: int = 0
    loss_sum: float = 0.0  # training loss accumulated since the last evaluation, and its token count
    loss_tokens: int = 0
    seconds: float = 0.0
    step_seconds: list = field(default_factory=list)  # wall time of every optimizer step
    stopped_early: bool = False  # a resumed run that had stopped early stays stopped
    resumed_from: int | None = None


def finetune_causal_lm(
    model,
    train: Sequence[Example | tuple[Sequence[int], Sequence[int]]],
    validation: Sequence[Example | tuple[Sequence[int], Sequence[int]]] | None = None,
    *,
    pad_token_id: int,
    eos_token_id: int,
    config: FinetuneConfig | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` (a ``transformers`` causal LM, or a ``peft.PeftModel`` to keep training) on examples.

    Parameters
    ----------
    model
        A Hugging Face causal LM. With ``config.method='lora'`` it is wrapped in a new LoRA adapter (a
        ``PeftModel`` passed in keeps its adapter); with ``'full'`` all its weights train, in place.
    train, validation
        ``(prompt_ids, answer_ids)`` pairs of token ids (or :class:`~sc_llm.core.finetune.data.Example`).
        The prompt carries any BOS token; the EOS token is appended to each answer. Only answer and EOS
        tokens are scored.
    pad_token_id, eos_token_id
        Padding id (never scored, masked out of attention) and end-of-sequence id.
    config
        :class:`~sc_llm.core.finetune.config.FinetuneConfig` (defaults if ``None``).
    callback
        Called after every optimizer step with ``{'step', 'epoch', 'loss', 'lr'}``; an exception raised there
        stops the run (the last checkpoint stays valid for resuming).

    Returns
    -------
    :class:`FinetuneResult` with the trained model and its history.
    """
    config = config or FinetuneConfig()
    config.validate()
    train_ex = as_examples(train, max_length=config.max_length, name="train")
    val_ex = as_examples(validation or [], max_length=config.max_length, name="validation")
    if not train_ex:
        msg = "No training examples: pass at least one (prompt_ids, answer_ids) pair."
        raise ValueError(msg)
    from ..base.device import autocast_dtype, dtype_name, resolve_device

    device = resolve_device(config.device)
    amp_dtype = autocast_dtype(device, config.dtype, work="train")
    # adapter initialisation and dropout are seeded; the caller's RNG is restored after
    with torch_seeded(config.seed, device), cpu_threads(config.cpu_threads, device=device):
        model = _prepare_model(model, config, device, amp_dtype)
        run = _Run(model, train_ex, val_ex, config, device, amp_dtype, pad_token_id, eos_token_id)
        state = run.restore()
        run.train(state, callback)
    run.finish(state)
    best_val = None if state.best_step is None else state.best_loss
    history = {
        **state.history,
        "best_step": state.best_step,
        "best_val_loss": best_val,
        "n_steps": state.step,
        "stopped_early": state.stopped_early,
        "resumed_from_step": state.resumed_from,
        "train_tokens": state.tokens,
        "train_seconds": state.seconds,
        "step_seconds": state.step_seconds,
        "device": str(device),
        "dtype": dtype_name(amp_dtype),
        "config": config.to_dict(),
    }
    return FinetuneResult(model=model, history=history)


def _prepare_model(model, config: FinetuneConfig, device, amp_dtype):
    """Wrap in LoRA (or unfreeze everything), move to ``device``, keep trainable weights in fp32 under fp16."""
    import torch

    if config.method == "lora":
        try:
            from peft import LoraConfig, PeftModel, get_peft_model
        except ImportError as err:  # pragma: no cover - peft is a declared dependency of the llm extra
            msg = "LoRA fine-tuning needs peft: pip install 'sc-llm[llm]'."
            raise ImportError(msg) from err
        if not isinstance(model, PeftModel):
            tokens = list(config.trainable_token_indices) if config.trainable_token_indices else None
            lora = LoraConfig(
                task_type="CAUSAL_LM",
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=_as_target(config.lora_target_modules),
                modules_to_save=list(config.modules_to_save) if config.modules_to_save else None,
                trainable_token_indices=tokens,
            )
            model = get_peft_model(model, lora)
        else:
            for name, p in model.named_parameters():
                p.requires_grad_("lora_" in name or "modules_to_save" in name or "trainable_tokens" in name)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    model.to(device)
    if amp_dtype == torch.float16:  # gradient scaling needs fp32 master weights
        for p in model.parameters():
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()
    if not any(p.requires_grad for p in model.parameters()):
        msg = "The model has no trainable parameters: check lora_target_modules names against the model's modules."
        raise ValueError(msg)
    return model


def _as_target(target):
    return target if isinstance(target, str) else list(target)


class _Run:
    """The training loop's parts, each small: batches, one optimizer step, evaluation, checkpoints."""

    def __init__(self, model, train, val, config, device, amp_dtype, pad_token_id, eos_token_id):
        import torch

        self.model, self.train_ex, self.val_ex, self.config = model, train, val, config
        self.device, self.amp_dtype = device, amp_dtype
        self.collate = {"pad_token_id": pad_token_id, "eos_token_id": eos_token_id, "padding_side": config.padding_side}
        self.lengths = np.array([len(e) for e in train])
        self.total_steps = self._count_steps()
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        self.best: dict[str, Any] | None = None

    def _epoch_groups(self, epoch: int) -> list[list[np.ndarray]]:
        c = self.config
        batches = plan_batches(
            self.lengths, batch_size=c.batch_size, seed=c.seed, epoch=epoch, token_budget=c.token_budget
        )
        k = c.gradient_accumulation_steps
        return [batches[s : s + k] for s in range(0, len(batches), k)]

    def _count_steps(self) -> int:
        if self.config.max_steps is not None:
            return self.config.max_steps
        return sum(len(self._epoch_groups(e)) for e in range(self.config.epochs))

    def _schedule(self, start: int) -> Iterator[tuple[int, float, bool, list[np.ndarray]]]:
        """``(step, epochs done, last_of_epoch, microbatches)`` for steps ``start + 1`` to ``total_steps``."""
        step, epoch = 0, 0
        while step < self.total_steps:
            groups = self._epoch_groups(epoch)
            for i, group in enumerate(groups):
                step += 1
                if step > start:
                    yield step, epoch + (i + 1) / len(groups), i == len(groups) - 1, group
                if step == self.total_steps:
                    return
            epoch += 1

    def _lr_factor(self, step: int) -> float:
        warm, total = self.config.warmup_steps, max(self.total_steps, 1)
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = min(1.0, (step - warm) / max(1, total - warm))
        if self.config.lr_schedule == "linear":
            return 1.0 - progress
        if self.config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    def restore(self) -> _State:
        """A fresh state, or the one of the latest checkpoint in ``output_dir`` (weights, optimizer, RNG)."""
        import torch

        folder = latest_checkpoint(self.config.output_dir) if self.config.resume else None
        if folder is None:
            return _State()
        trainable, self.best, saved = load_checkpoint(folder)
        load_trainable_state(self.model, trainable)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng_cpu"])
        if self.device.type == "cuda" and saved.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(saved["rng_cuda"], self.device)
        state = _State(**saved["state"])
        state.resumed_from = state.step
        return state

    def checkpoint(self, state: _State) -> None:
        import torch

        if self.config.output_dir is None:
            return
        rng_cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        saved = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": rng_cuda,
            "state": {k: v for k, v in vars(state).items() if k != "resumed_from"},
        }
        save_checkpoint(
            self.config.output_dir,
            step=state.step,
            trainable=trainable_state(self.model),
            best=self.best,
            trainer_state=saved,
        )

    def train(self, state: _State, callback) -> None:
        from tqdm.auto import tqdm

        c = self.config
        if state.step == 0 and state.resumed_from is None and self.val_ex:  # the untrained baseline
            self.evaluate(state, epoch=0.0)
        bar = tqdm(total=self.total_steps, initial=state.step, desc="fine-tuning", unit="step", disable=not c.progress)
        start = time.perf_counter() - state.seconds
        schedule = [] if state.stopped_early else self._schedule(state.step)
        for step, epoch, last_of_epoch, group in schedule:
            tick = time.perf_counter()
            loss = self.optimizer_step(group, state)
            state.step = step
            state.step_seconds.append(time.perf_counter() - tick)
            state.seconds = time.perf_counter() - start
            lr = self.scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            due = (step % c.eval_every == 0) if c.eval_every else last_of_epoch
            final = step == self.total_steps
            if due or final:
                if self.evaluate(state, epoch=epoch):
                    state.stopped_early = not final
            periodic = (step % c.save_every == 0) if c.save_every else due
            if periodic or final or state.stopped_early:
                self.checkpoint(state)
            if callback is not None:
                callback({"step": step, "epoch": epoch, "loss": loss, "lr": lr})
            if state.stopped_early:
                break
        bar.close()

    def optimizer_step(self, group: list[np.ndarray], state: _State) -> float:
        """One optimizer step over ``group``'s micro-batches; the loss is averaged over all its answer tokens."""
        import torch

        self.model.train()
        batches = [collate([self.train_ex[i] for i in idx], **self.collate) for idx in group]
        loss = accumulate_gradients(
            self.model, batches, device=self.device, amp_dtype=self.amp_dtype, scaler=self.scaler
        )
        if self.config.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        n_tokens = sum(int((b["labels"] != -100).sum()) for b in batches)
        state.tokens += sum(int(b["attention_mask"].sum()) for b in batches)
        state.loss_sum += loss * n_tokens
        state.loss_tokens += n_tokens
        return loss

    def evaluate(self, state: _State, *, epoch: float) -> bool:
        """Record train/validation loss; keep the best weights; ``True`` when patience has run out."""
        c, h = self.config, state.history
        val = None
        if self.val_ex:
            bs = c.eval_batch_size or 2 * c.batch_size
            val = evaluate_loss(
                self.model,
                self.val_ex,
                batch_size=bs,
                collate_kwargs=self.collate,
                device=self.device,
                amp_dtype=self.amp_dtype,
            )
        h["step"].append(state.step)
        h["epoch"].append(epoch)
        h["train_loss"].append(state.loss_sum / state.loss_tokens if state.loss_tokens else None)
        h["val_loss"].append(val)
        h["lr"].append(self.scheduler.get_last_lr()[0])
        state.loss_sum, state.loss_tokens = 0.0, 0
        if val is None:
            return False
        if val < state.best_loss - c.min_delta:
            state.best_loss, state.best_step, state.waited = val, state.step, 0
            self.best = trainable_state(self.model)
            return False
        state.waited += 1
        return c.patience is not None and state.waited >= c.patience

    def finish(self, state: _State) -> None:
        """Restore the best weights (if validation ran) and leave the model in eval mode."""
        if self.best is not None and state.best_step != state.step:
            load_trainable_state(self.model, self.best)
        self.model.eval()
