"""What a ``model=`` names, decided in one place from its files (nothing is loaded, nothing is downloaded).

Every tool that accepts several kinds of checkpoint (``sl.tl.embed``, ``sl.jobs.embed``, the ``'llm'``
perturbation method) asks :func:`checkpoint_kind` instead of looking for files itself, so they agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

KINDS = ("cell_lm", "scgpt", "gguf", "folder", "hub", "object")


def checkpoint_kind(model: Any) -> str:
    """``'cell_lm'``, ``'scgpt'``, ``'gguf'``, ``'folder'``, ``'hub'`` or ``'object'`` for what ``model=`` holds.

    - ``'cell_lm'``: a folder written by :meth:`sc_llm.tl.CellLM.save` (it holds ``cell_lm.json``);
    - ``'scgpt'``: a folder in scGPT's layout (``best_model.pt``, or ``args.json`` with ``vocab.json``; a
      missing file of the three is named when it loads);
    - ``'gguf'``: a ``.gguf`` file;
    - ``'folder'``: any other local folder (a Hugging Face ``save_pretrained`` layout);
    - ``'hub'``: any other string, a Hugging Face hub id;
    - ``'object'``: not a string or path (an already loaded model, such as a ``TextEncoder``).

    A string that looks like a path (starts with ``.``, ``/`` or ``~``, or has two ``/``) but does not exist is
    refused with :class:`FileNotFoundError`, instead of being sent to the hub as an id.
    """
    from .cell_lm.saved import CONFIG_FILE
    from .scgpt.checkpoint import is_scgpt_checkpoint

    if not isinstance(model, str | os.PathLike):
        return "object"
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return "cell_lm"
        return "scgpt" if is_scgpt_checkpoint(path) else "folder"
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return "gguf"
        msg = f"{text!r} is a file; pass a model folder, a .gguf file or a hub id."
        raise ValueError(msg)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or (os.sep != "/" and os.sep in text):
        msg = f"Model folder {text!r} does not exist."
        raise FileNotFoundError(msg)
    return "hub"
