"""Atomic, safe checkpoints of a fine-tuning run: trainable weights, optimizer, scheduler, RNG, progress.

Layout of ``output_dir``::

    checkpoint-<step>/trainable.safetensors   trainable parameters (LoRA adapter, or all weights)
    checkpoint-<step>/best.safetensors        trainable parameters at the best validation loss (if any)
    checkpoint-<step>/trainer_state.pt        optimizer, scheduler, RNG states, step, history (weights_only)
    latest                                    name of the newest complete checkpoint

A checkpoint is written into a temporary folder that is renamed once complete, then ``latest`` is replaced
atomically (:mod:`sc_llm.core.base.atomic`), so a run killed at any moment leaves the previous checkpoint usable.
Everything loads with safetensors or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..base.atomic import atomic_folder, write_text

LATEST = "latest"


def trainable_state(model) -> dict[str, Any]:
    """Detached CPU copies of the parameters that require gradients, by name."""
    return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict[str, Any]) -> None:
    """Copy ``state`` (from :func:`trainable_state`) into ``model``'s trainable parameters, checking names match."""
    import torch

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, unexpected = sorted(set(params) - set(state))[:3], sorted(set(state) - set(params))[:3]
        msg = (
            f"The checkpoint does not match the model's trainable parameters (missing {missing}, unexpected "
            f"{unexpected}): resume with the same base model and fine-tuning config, or use a new output_dir."
        )
        raise ValueError(msg)
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state[n].to(p.device, p.dtype))


def save_checkpoint(
    output_dir: str | os.PathLike,
    *,
    step: int,
    trainable: dict[str, Any],
    best: dict[str, Any] | None,
    trainer_state: dict[str, Any],
    keep: int = 1,
) -> Path:
    """Write ``checkpoint-<step>`` atomically, point ``latest`` at it, and keep only the newest ``keep``."""
    import torch
    from safetensors.torch import save_file

    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    with atomic_folder(final) as tmp:
        save_file(trainable, tmp / "trainable.safetensors")
        if best is not None:
            save_file(best, tmp / "best.safetensors")
        torch.save(trainer_state, tmp / "trainer_state.pt")
    write_text(root / LATEST, final.name)
    old = sorted((p for p in root.glob("checkpoint-*") if p != final), key=lambda p: int(p.name.split("-")[1]))
    for path in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def latest_checkpoint(output_dir: str | os.PathLike | None) -> Path | None:
    """The folder ``latest`` points at, or ``None`` when ``output_dir`` holds no complete checkpoint."""
    if output_dir is None:
        return None
    pointer = Path(output_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(output_dir) / pointer.read_text().strip()
    return folder if (folder / "trainer_state.pt").is_file() else None


def load_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """``(trainable, best or None, trainer_state)`` of a checkpoint folder, through safe loaders only."""
    import torch
    from safetensors.torch import load_file

    trainable = load_file(folder / "trainable.safetensors")
    best = load_file(folder / "best.safetensors") if (folder / "best.safetensors").is_file() else None
    state = torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)
    return trainable, best, state


def save_trained(model, folder: str | os.PathLike) -> Path:
    """Save a fine-tuned model atomically into ``folder`` (replacing it), as safetensors.

    A peft model writes its adapter (``adapter_config.json``, ``adapter_model.safetensors``); a fully
    fine-tuned model writes everything (``save_pretrained``).
    """
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return folder


def load_adapter(base_model, folder: str | os.PathLike, *, is_trainable: bool = False):
    """Attach the LoRA adapter saved by :func:`save_trained` in ``folder`` to ``base_model`` (safetensors only)."""
    from peft import PeftModel

    if not (Path(folder) / "adapter_model.safetensors").is_file():
        msg = f"{str(folder)!r} holds no adapter_model.safetensors; save the adapter with save_trained first."
        raise FileNotFoundError(msg)
    return PeftModel.from_pretrained(base_model, str(folder), is_trainable=is_trainable)
