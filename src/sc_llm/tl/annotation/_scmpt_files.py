"""The files of a saved :class:`~sc_llm.tl.ScMPT`: ``config.json`` and ``model.pt``, checked on load.

A checksum over the weights and everything that gives them meaning (the classes and their order, the input
representations, the network) is written with them, so an edited class order cannot silently relabel
predictions.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
_REQUIRED_KEYS = ("format", "classes", "use_reps", "rep_dims", "label_key", "module")


def checksum(config: dict[str, Any], weights: bytes) -> str:
    """SHA-256 of the weights and of everything that gives them meaning: classes and their order, inputs, network."""
    h = hashlib.sha256(weights)
    meaning = {k: config[k] for k in ("classes", "use_reps", "rep_dims", "label_key", "module")}
    h.update(json.dumps(meaning, sort_keys=True).encode())
    return h.hexdigest()


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a saved model, with errors that name the file and what is wrong with it."""
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = f"{path} is not valid JSON ({e}); the saved model is damaged. Save it again from training."
        raise ValueError(msg) from e
    if not isinstance(config, dict) or config.get("format") != "sc_llm.ScMPT":
        msg = f"{path} is not the config of a saved ScMPT model (no 'format': 'sc_llm.ScMPT')."
        raise ValueError(msg)
    if config.get("format_version", 0) > FORMAT_VERSION:
        msg = f"{path} was written by a newer sc_llm (format {config['format_version']}); upgrade sc_llm to read it."
        raise ValueError(msg)
    missing = [k for k in _REQUIRED_KEYS if k not in config]
    if missing:
        msg = f"{path} lacks {missing}; the saved model is incomplete. Save it again from training."
        raise ValueError(msg)
    return config


def verify_checksum(folder: Path, config: dict[str, Any], weights: bytes) -> None:
    """Refuse a model whose weights, classes or their order changed since it was saved."""
    if "checksum" not in config:
        warnings.warn(
            f"{folder / CONFIG_FILE} has no checksum (saved by an older sc_llm): its class order cannot be verified.",
            UserWarning,
            stacklevel=3,
        )
        return
    if checksum(config, weights) != config["checksum"]:
        msg = (
            f"The model in {folder} changed after it was saved: {CONFIG_FILE} (e.g. its class order) or "
            f"{WEIGHTS_FILE} no longer matches the checksum written with them, so predictions could carry the wrong "
            "labels. Restore the original files or save the model again from training."
        )
        raise ValueError(msg)
