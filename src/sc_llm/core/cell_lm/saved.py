"""The folder of a saved cell LM: ``cell_lm.json`` (checksummed) beside its weights, read back safely.

``cell_lm.json`` holds the base model reference, the gene vocabulary, the prompt templates, the labels the model
was trained on, the fitted sentence decoder and the training history, plus a SHA-256 of every weight and
tokenizer file (``files``) and of its own content (``checksum``). Reading refuses, naming the file, a config that
is not JSON, was edited (two genes swapped, a changed template) or belongs to other weights, and a weight file
that was truncated or replaced: the same rule as a saved :class:`~sc_llm.tl.ScMPT`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..base.identity import changed_files, file_checksums, sha256_json
from .gene_vocab import GeneVocab

FORMAT_VERSION = 2
READABLE = (1, 2)  # format 1 (before checksums) still loads, with a warning
CONFIG_FILE = "cell_lm.json"


def jsonable(d: Any) -> Any:
    """Numpy arrays and scalars as lists and numbers, recursively."""
    if isinstance(d, dict):
        return {k: jsonable(v) for k, v in d.items()}
    if isinstance(d, np.ndarray):
        return d.tolist()
    if isinstance(d, np.generic):
        return d.item()
    return d


def write_config(folder: Path, config: dict[str, Any]) -> None:
    """Write ``cell_lm.json`` into a folder whose weights are already written, with their checksums."""
    config = {**jsonable(config), "format": FORMAT_VERSION, "files": file_checksums(folder, exclude=(CONFIG_FILE,))}
    config["checksum"] = sha256_json(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1))


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        msg = f"{str(path)!r} is not a saved cell language model (no {CONFIG_FILE}); save one with `.save()`."
        raise FileNotFoundError(msg)
    try:
        cfg = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = f"{str(file)!r} is not valid JSON ({e}): the saved cell LM is damaged. Save the model again."
        raise ValueError(msg) from e
    if not isinstance(cfg, dict) or cfg.get("format") not in READABLE:
        found = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        msg = f"{str(file)!r} has cell LM format {found!r}; this sc_llm reads formats {READABLE}."
        raise ValueError(msg)
    return cfg


def _verify(path: Path, cfg: dict[str, Any]) -> None:
    if cfg["format"] == 1:
        warnings.warn(
            f"{str(path / CONFIG_FILE)!r} was saved without checksums (sc_llm < 0.2): edits to it or to the weights "
            "cannot be detected. Save the model again to add them.",
            UserWarning,
            stacklevel=4,
        )
        return
    recorded = cfg.get("checksum")
    if recorded != sha256_json({k: v for k, v in cfg.items() if k != "checksum"}):
        msg = (
            f"{str(path / CONFIG_FILE)!r} was changed after the model was saved (its checksum no longer matches: an "
            "edited gene list, template, decoder or label would silently change the output). Restore the file or "
            "save the model again from training."
        )
        raise ValueError(msg)
    changed = changed_files(path, cfg.get("files", {}))
    if changed:
        msg = (
            f"The weights of the cell LM in {str(path)!r} changed after it was saved: {changed[:5]} (missing, "
            "truncated or replaced). Restore them or save the model again from training."
        )
        raise ValueError(msg)


def read_saved(path: str | os.PathLike) -> tuple[dict[str, Any], GeneVocab, Any]:
    """``(config, gene vocabulary, sentence decoder or None)`` of a saved cell LM folder, checked, without weights."""
    path = Path(path).expanduser()
    cfg = _read_config(path)
    _verify(path, cfg)
    decoder = None
    if cfg.get("decoder") is not None:
        from ..sentences.decoding import SentenceDecoder

        decoder = SentenceDecoder.from_dict(cfg["decoder"])
    return cfg, GeneVocab.from_dict(cfg["vocab"]), decoder
