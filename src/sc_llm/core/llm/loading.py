"""Load a causal language model and its tokenizer for cell-sentence generation.

Sources: a Hugging Face hub id, a local folder in the ``save_pretrained`` layout (weights read only from
safetensors), or a GGUF file (``gguf_file=``, dequantised by transformers). Device and dtype follow
``sl.tl.embed``: CUDA → bfloat16 (float16 without bf16 support), anything else → float32; the weights are
cast to that dtype, so the dtype reported is the one the model computes in. The tokenizer pads on the left
(generation appends to the right end) and pads with EOS when it has no pad token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..base.device import autocast_dtype, resolve_device

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_UNSAFE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5")


def hub_offline_message(model: str) -> str:
    """The error text for a hub id that could not be fetched (no cache, no network)."""
    return (
        f"Could not load causal LM {model!r}: it is not a local folder or file, and it is neither in the Hugging "
        f"Face cache nor reachable on the hub. Download it once with network access (`hf download {model}`), or "
        "pass `model=` a local folder (config.json, tokenizer files, model.safetensors) or a .gguf file"
        + (" (HF_HUB_OFFLINE=1 is set, so only the cache is used)." if os.environ.get("HF_HUB_OFFLINE") else ".")
    )


def split_gguf_path(model: str | os.PathLike, gguf_file: str | None) -> tuple[str, str | None]:
    """``'dir/m.gguf'`` → ``('dir', 'm.gguf')``; otherwise ``(model, gguf_file)`` unchanged."""
    p = Path(model).expanduser()
    if gguf_file is None and p.suffix.lower() == ".gguf":
        if not p.is_file():
            msg = f"GGUF file {str(p)!r} does not exist."
            raise FileNotFoundError(msg)
        return str(p.parent), p.name
    return str(model), gguf_file


def _looks_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def check_local_folder(folder: Path, gguf_file: str | None) -> None:
    """Raise a clear error when a local model folder cannot hold a loadable causal LM."""
    if not folder.is_dir():
        msg = f"Model folder {str(folder)!r} does not exist."
        raise FileNotFoundError(msg)
    names = {p.name for p in folder.iterdir()}
    if not names:
        msg = f"Model folder {str(folder)!r} is empty: save a model there with `save_pretrained` or pass a hub id."
        raise FileNotFoundError(msg)
    if gguf_file is not None:
        if not (folder / gguf_file).is_file():
            ggufs = sorted(n for n in names if n.endswith(".gguf"))
            msg = f"GGUF file {gguf_file!r} is not in {str(folder)!r} (GGUF files there: {ggufs or 'none'})."
            raise FileNotFoundError(msg)
        return
    if "config.json" not in names:
        msg = f"Model folder {str(folder)!r} has no config.json; it is not a Hugging Face `save_pretrained` folder."
        raise FileNotFoundError(msg)
    if not names & set(_WEIGHT_FILES):
        unsafe = sorted(names & set(_UNSAFE_WEIGHTS))
        hint = (
            f" It holds {unsafe}, which sc_llm does not unpickle; convert them once with "
            "`AutoModelForCausalLM.from_pretrained(folder).save_pretrained(folder)` (writes safetensors)."
            if unsafe
            else ""
        )
        msg = f"Model folder {str(folder)!r} has no model.safetensors (or its index).{hint}"
        raise FileNotFoundError(msg)
    if not names & {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"}:
        msg = f"Model folder {str(folder)!r} has no tokenizer files; save the tokenizer beside the model."
        raise FileNotFoundError(msg)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Pad on the left; pad with EOS when the tokenizer has no pad token (as GPT-style models need)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            msg = "The tokenizer has neither a pad nor an EOS token; set `tokenizer.eos_token` before generating."
            raise ValueError(msg)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    model: str | os.PathLike,
    *,
    revision: str | None = None,
    gguf_file: str | None = None,
    trust_remote_code: bool = False,
    device: Any = None,
    dtype: Any = None,
    work: str = "generate",
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` of a causal LM, in eval mode, on ``device``, in the compute dtype.

    Parameters
    ----------
    model
        A hub id (``'vandijklab/C2S-Pythia-410m-cell-type-prediction'``), a local ``save_pretrained`` folder,
        a folder holding ``gguf_file``, or a path to a ``.gguf`` file.
    revision
        Hub branch, tag or commit.
    gguf_file
        Name of a GGUF file inside ``model`` (transformers dequantises it; needs the ``gguf`` package).
    trust_remote_code
        Allow code shipped with a hub model to run. Off by default.
    device
        ``None`` picks CUDA, then MPS, then CPU.
    dtype
        ``None`` / ``'auto'``: bf16 on CUDA (fp16 without bf16 support) and on CPUs with native bf16, fp32
        elsewhere (``sc_llm.core.base.device.autocast_dtype``); or ``'float32'``, ``'bfloat16'``,
        ``'float16'``. On CUDA the weights are cast to it; on a CPU they stay fp32 and bf16 runs under autocast.
    work
        What the model will do, ``'generate'`` or ``'score'`` (candidate log-likelihoods): on a CPU the default
        precision depends on it (``CPU_BF16_PAYS`` in ``sc_llm.core.base.device``).

    Returns
    -------
    The model (``compute_dtype()`` tells the dtype it computes in) and its tokenizer (left padding, a pad
    token).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, gguf_file = split_gguf_path(model, gguf_file)
    local = Path(model).expanduser().is_dir() or _looks_local(model)
    if local:
        model = str(Path(model).expanduser())
        check_local_folder(Path(model), gguf_file)
    device = resolve_device(device)
    compute = autocast_dtype(device, dtype, work=work)
    # on CUDA the weights are cast to the compute dtype; on a CPU they stay fp32 and bf16 runs under autocast
    torch_dtype = (compute or torch.float32) if device.type == "cuda" else torch.float32
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        weights = {} if gguf_file is not None else {"use_safetensors": True}
        net = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kwargs, **weights)
    except OSError as e:
        if local:
            raise
        raise OSError(hub_offline_message(model)) from e
    net = set_compute_dtype(net.to(device=device, dtype=torch_dtype).eval(), compute)
    tokenizer = prepare_tokenizer(tokenizer)
    net.generation_config.pad_token_id = tokenizer.pad_token_id
    return net, tokenizer


def set_compute_dtype(model, dtype):
    """Record on ``model`` the dtype it computes in (``None``: fp32), read back by ``compute_dtype()``."""
    model.sc_llm_compute_dtype = dtype
    return model


def compute_dtype(model):
    """The dtype a causal LM loaded here computes in (``None``: fp32, or a model not loaded by sc_llm)."""
    return getattr(model, "sc_llm_compute_dtype", None)


def model_reference(model: str | os.PathLike, gguf_file: str | None = None, revision: str | None = None) -> dict:
    """A JSON-able record of where a model came from (resolved local path or hub id, GGUF file, revision)."""
    model, gguf_file = split_gguf_path(model, gguf_file)
    p = Path(model).expanduser()
    source = str(p.resolve()) if p.is_dir() else str(model)
    return {"model": source, "gguf_file": gguf_file, "revision": revision}
