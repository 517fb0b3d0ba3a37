"""Locate Hugging Face models (hub id or local folder) and read their sentence-transformers settings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class SentenceConfig:
    """How a model turns token states into one sentence vector."""

    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    source: str = "default"  # 'sentence-transformers' when read from the model's own files


def offline_hint(model: str) -> str:
    """The message shown when a model is neither a local folder nor reachable on the hub."""
    return (
        f"Could not load model {model!r}: it is not a local folder, and it is not in the Hugging Face cache "
        "or the hub could not be reached. Pass `model=` a local folder holding the model (config.json, "
        "tokenizer and weights), or download it once with network access (`hf download "
        f"{model}`) so the cache holds it; set `HF_HUB_OFFLINE=1` to use only the cache"
        + (" (it is set now)." if os.environ.get("HF_HUB_OFFLINE") else ".")
    )


def is_local(model: str | os.PathLike) -> bool:
    """True for an existing folder; a path-looking string that does not exist raises FileNotFoundError."""
    p = Path(model).expanduser()
    if p.is_dir():
        return True
    s = str(model)
    if s.startswith((".", "/", "~")) or s.count("/") > 1 or (os.sep != "/" and os.sep in s):
        msg = f"Model folder {s!r} does not exist."
        raise FileNotFoundError(msg)
    return False


def _read_json(model: str, filename: str, revision: str | None, local: bool) -> dict | list | None:
    """Read a small JSON file from a local folder or the hub; ``None`` when the model does not ship it."""
    if local:
        path = Path(model).expanduser() / filename
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        path = hf_hub_download(model, filename, revision=revision)
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
    return json.loads(Path(path).read_text())


def read_sentence_config(model: str, *, revision: str | None = None) -> SentenceConfig:
    """Pooling, normalisation and maximum length from a sentence-transformers layout, if the model has one.

    Reads ``modules.json``, the Pooling module's ``config.json`` and ``sentence_bert_config.json``.
    Without them: mean pooling over non-padding tokens, no normalisation.
    """
    local = is_local(model)
    modules = _read_json(model, "modules.json", revision, local)
    if not modules:
        return SentenceConfig()
    pooling, normalize = "mean", False
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Pooling"):
            cfg = _read_json(model, f"{module.get('path', '1_Pooling')}/config.json", revision, local) or {}
            modes = [name for flag, name in _POOLING_FLAGS.items() if cfg.get(flag)]
            if len(modes) > 1:
                msg = f"Model {model!r} concatenates several poolings ({modes}); sc_llm supports one pooling mode."
                raise NotImplementedError(msg)
            pooling = modes[0] if modes else "mean"
        elif kind.endswith("Normalize"):
            normalize = True
    st_cfg = _read_json(model, "sentence_bert_config.json", revision, local) or {}
    return SentenceConfig(
        pooling=pooling,
        normalize=normalize,
        max_seq_length=st_cfg.get("max_seq_length"),
        source="sentence-transformers",
    )


_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


def check_local_folder(model: str, *, weights: bool = True) -> None:
    """Name what a local model folder lacks (config, tokenizer, weights) before transformers gives a vaguer error."""
    folder = Path(model).expanduser()
    found = sorted(p.name for p in folder.iterdir())
    lacks = []
    if not (folder / "config.json").is_file():
        lacks.append("config.json")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        lacks.append(f"tokenizer files (one of {list(_TOKENIZER_FILES)})")
    if weights and not any(next(folder.glob(pat), None) for pat in _WEIGHT_PATTERNS):
        lacks.append("weights (*.safetensors or pytorch_model.bin)")
    if lacks:
        msg = (
            f"Model folder {str(folder)!r} is not a complete Hugging Face model: it lacks {', '.join(lacks)} "
            f"(found {found[:10]}). Pass a folder written by `save_pretrained` or `hf download`; an scGPT checkpoint "
            "folder needs args.json, vocab.json and best_model.pt."
        )
        raise FileNotFoundError(msg)


def _weight_files(model: str) -> list[str]:
    folder = Path(model).expanduser()
    return sorted(str(p) for pat in _WEIGHT_PATTERNS for p in folder.glob(pat))


def load_hf_encoder(
    model: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[Any, Any, str | None]:
    """Load ``(tokenizer, model, commit)`` with transformers' Auto classes, with a clear offline error."""
    from transformers import AutoModel, AutoTokenizer

    local = is_local(model)
    if local:
        check_local_folder(model)
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    except OSError as e:
        if local:
            raise
        raise OSError(offline_hint(model)) from e
    try:
        net = AutoModel.from_pretrained(model, **kwargs)
    except OSError as e:
        if local:
            raise _damaged(model, e) from e
        raise OSError(offline_hint(model)) from e
    except Exception as e:  # safetensors / torch raise their own types for truncated files
        if local:
            raise _damaged(model, e) from e
        raise
    return tokenizer, net, _commit(model, net.config, local)


def _damaged(model: str, error: Exception) -> OSError:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    files = _weight_files(model)
    return OSError(
        f"Could not read the weights of {model!r} ({type(error).__name__}: {first}). The weight file "
        f"{files[0] if len(files) == 1 else files} may be truncated or damaged: download or save it again."
    )


def load_hf_tokenizer(
    model: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[Any, Any, str | None]:
    """Load ``(tokenizer, config, commit)`` without the weights (offline errors as :func:`load_hf_encoder`)."""
    from transformers import AutoConfig, AutoTokenizer

    local = is_local(model)
    if local:
        check_local_folder(model, weights=False)
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        config = AutoConfig.from_pretrained(model, **kwargs)
    except OSError as e:
        if local:
            raise
        raise OSError(offline_hint(model)) from e
    return tokenizer, config, _commit(model, config, local)


def _commit(model: str, config: Any, local: bool) -> str | None:
    commit = getattr(config, "_commit_hash", None)
    if local and commit is None and len(Path(model).name) == 40:
        commit = Path(model).name  # a hub cache snapshot folder is named after its commit
    return commit
