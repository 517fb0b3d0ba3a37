"""Read an scGPT checkpoint folder: ``args.json``, ``vocab.json``, ``best_model.pt``.

Validation is strict where scGPT's own loader is silent: scGPT drops weights whose shape does not match
and keeps their random initialisation; here a missing file, a missing or mis-shaped weight and an
``args.json`` option value that changes the cell-embedding path in an unsupported way raise errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARGS_FILE, VOCAB_FILE, WEIGHTS_FILE = "args.json", "vocab.json", "best_model.pt"
CLS_TOKEN = "<cls>"

_REQUIRED = {"embsize": "d_model", "nheads": "n_heads", "d_hid": "d_hid", "nlayers": "n_layers"}
# options of args.json that select the architecture of the cell-embedding path, with the values supported
_CHOICES = {
    "input_emb_style": ("continuous", "category", "scaling"),
    "cell_emb_style": ("cls",),
    "fast_transformer_backend": ("flash",),
}
# options that scGPT's embed_data does not apply to the cell embedding (and neither does sc_llm)
_NOT_APPLIED = ("DSBN", "domain_spec_batchnorm", "use_batch_labels", "use_mod")
_EMBEDDING_PATH = ("encoder.", "value_encoder.", "transformer_encoder.")


@dataclass(frozen=True)
class ScGPTConfig:
    """What ``args.json`` says about the cell-embedding path."""

    d_model: int
    n_heads: int
    d_hid: int
    n_layers: int
    pad_token: str
    pad_value: float
    input_emb_style: str = "continuous"
    n_bins: int = 51
    norm_scheme: str = "post"
    not_applied: tuple[str, ...] = ()


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_scgpt_checkpoint(model: Any) -> bool:
    """A local folder in scGPT's layout: ``best_model.pt``, or ``args.json`` with ``vocab.json``."""
    p = Path(str(model)).expanduser()
    # best_model.pt (or args.json with vocab.json) marks scGPT's layout; check_folder then names a missing file
    has = {f: (p / f).is_file() for f in (ARGS_FILE, VOCAB_FILE, WEIGHTS_FILE)} if p.is_dir() else {}
    return bool(has) and (has[WEIGHTS_FILE] or (has[ARGS_FILE] and has[VOCAB_FILE]))


def check_folder(folder: str | Path) -> Path:
    """Return the folder as a Path after checking that the three checkpoint files exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        msg = f"scGPT checkpoint folder {str(folder)!r} does not exist."
        raise FileNotFoundError(msg)
    missing = [f for f in (ARGS_FILE, VOCAB_FILE, WEIGHTS_FILE) if not (folder / f).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())
        msg = (
            f"scGPT checkpoint folder {str(folder)!r} lacks {missing}; the official layout has "
            f"{[ARGS_FILE, VOCAB_FILE, WEIGHTS_FILE]} (found {present})."
        )
        raise FileNotFoundError(msg)
    return folder


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        msg = f"{str(path)!r} is not valid JSON ({e})."
        raise ValueError(msg) from e


def read_config(folder: str | Path) -> ScGPTConfig:
    """Parse ``args.json``; raise on a missing hyper-parameter or an unsupported option value."""
    path = Path(folder) / ARGS_FILE
    args = _read_json(path)
    if not isinstance(args, dict):
        msg = f"{str(path)!r} must hold a JSON object of model options."
        raise ValueError(msg)
    missing = [k for k in (*_REQUIRED, "pad_token", "pad_value") if k not in args]
    if missing:
        msg = f"{str(path)!r} lacks {missing}; scGPT checkpoints record them when saved."
        raise ValueError(msg)
    for key in _REQUIRED:
        if not _is_int(args[key]) or args[key] < 1:
            msg = f"{str(path)!r}: {key!r} must be a positive integer, got {args[key]!r}."
            raise ValueError(msg)
    for key, allowed in _CHOICES.items():
        if key in args and args[key] not in allowed:
            msg = (
                f"{str(path)!r}: unsupported option {key}={args[key]!r}; the scGPT cell embedding supports "
                f"{list(allowed)}."
            )
            raise ValueError(msg)
    if not isinstance(args["pad_token"], str):
        msg = f"{str(path)!r}: 'pad_token' must be a string, got {args['pad_token']!r}."
        raise ValueError(msg)
    if not isinstance(args["pad_value"], int | float) or isinstance(args["pad_value"], bool):
        msg = f"{str(path)!r}: 'pad_value' must be a number, got {args['pad_value']!r}."
        raise ValueError(msg)
    n_bins = args.get("n_bins", 51)
    if not _is_int(n_bins) or n_bins < 3:
        msg = f"{str(path)!r}: 'n_bins' must be an integer of at least 3, got {n_bins!r}."
        raise ValueError(msg)
    pre_norm = args.get("pre_norm", False)
    if not isinstance(pre_norm, bool):
        msg = f"{str(path)!r}: 'pre_norm' must be true or false, got {pre_norm!r}."
        raise ValueError(msg)
    if args["embsize"] % args["nheads"]:
        msg = f"{str(path)!r}: 'embsize' ({args['embsize']}) must be divisible by 'nheads' ({args['nheads']})."
        raise ValueError(msg)
    return ScGPTConfig(
        **{field: args[key] for key, field in _REQUIRED.items()},
        pad_token=args["pad_token"],
        pad_value=args["pad_value"],
        input_emb_style=args.get("input_emb_style", "continuous"),
        n_bins=n_bins,
        norm_scheme="pre" if pre_norm else "post",
        not_applied=tuple(k for k in _NOT_APPLIED if args.get(k)),
    )


def read_vocab(folder: str | Path, pad_token: str) -> dict[str, int]:
    """Parse ``vocab.json`` (token → id), checking ids and the ``<cls>`` and padding tokens."""
    path = Path(folder) / VOCAB_FILE
    vocab = _read_json(path)
    if not isinstance(vocab, dict) or not all(_is_int(i) and i >= 0 for i in vocab.values()):
        msg = f"{str(path)!r} must map tokens to non-negative integer ids."
        raise ValueError(msg)
    if len(set(vocab.values())) != len(vocab):
        msg = f"{str(path)!r} gives the same id to several tokens."
        raise ValueError(msg)
    missing = [t for t in (CLS_TOKEN, pad_token) if t not in vocab]
    if missing:
        msg = f"{str(path)!r} lacks the special token(s) {missing} that the cell embedding needs."
        raise ValueError(msg)
    return vocab


def _unwrap(obj: Any, path: Path) -> dict:
    for key in ("model_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        msg = f"{str(path)!r} does not hold a state dict (got {type(obj).__name__})."
        raise ValueError(msg)
    return obj


def normalize_keys(state: dict) -> dict:
    """Rename flash-attention keys (``…self_attn.Wqkv.weight``) to PyTorch's (``…self_attn.in_proj_weight``).

    A ``module.`` prefix left by distributed training is dropped; keys outside the embedding path are dropped.
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").replace("self_attn.Wqkv.", "self_attn.in_proj_")
        if key.startswith(_EMBEDDING_PATH):
            out[key] = value
    return out


def _torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``, with an error naming the file when it is truncated or damaged."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or damaged: torch raises OSError, RuntimeError, UnpicklingError, ...
        msg = (
            f"Could not read the scGPT weights {str(path)!r} ({type(e).__name__}: {e}); the file may be truncated "
            "or damaged: download it again."
        )
        raise ValueError(msg) from e


def load_encoder(folder: str | Path, config: ScGPTConfig, vocab: dict[str, int]):
    """Load ``best_model.pt`` (``weights_only=True``) into a :class:`~.model.ScGPTCellEncoder` in eval mode.

    Raises
    ------
    ValueError
        When a weight is missing, has an unexpected shape, or the vocabulary does not fit the embedding.
    """
    import torch

    from .model import ScGPTCellEncoder

    path = Path(folder) / WEIGHTS_FILE
    state = normalize_keys(_unwrap(_torch_load(path), path))
    emb = state.get("encoder.embedding.weight")
    if emb is None or emb.ndim != 2:
        msg = f"{str(path)!r} has no 2-d 'encoder.embedding.weight'; is it an scGPT TransformerModel state dict?"
        raise ValueError(msg)
    if max(vocab.values()) >= emb.shape[0]:
        msg = (
            f"Shape mismatch: vocab.json has ids up to {max(vocab.values())} but 'encoder.embedding.weight' "
            f"in {str(path)!r} has only {emb.shape[0]} rows. Use the vocab.json saved with these weights."
        )
        raise ValueError(msg)
    category = state.get("value_encoder.embedding.weight")
    with torch.device("meta"):
        model = ScGPTCellEncoder(
            emb.shape[0],
            config.d_model,
            config.n_heads,
            config.d_hid,
            config.n_layers,
            input_emb_style=config.input_emb_style,
            n_value_bins=category.shape[0] if category is not None else config.n_bins + 2,
            norm_scheme=config.norm_scheme,
        )
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        msg = (
            f"{str(path)!r} lacks {len(missing)} weight(s) that args.json implies, e.g. {missing[:4]}. "
            "Check that args.json (nlayers, input_emb_style) belongs to these weights."
        )
        raise ValueError(msg)
    extra = [k for k in state if k not in expected]
    if extra:
        msg = (
            f"{str(path)!r} holds weights that args.json does not describe, e.g. {extra[:4]} "
            f"(nlayers={config.n_layers}, input_emb_style={config.input_emb_style!r})."
        )
        raise ValueError(msg)
    bad = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        msg = (
            f"Shape mismatch in {str(path)!r}: {k!r} is {got} but args.json implies {want} "
            f"({len(bad)} mismatched weight(s) in total; embsize={config.d_model}, d_hid={config.d_hid})."
        )
        raise ValueError(msg)
    if config.input_emb_style == "category":
        n_rows = state["value_encoder.embedding.weight"].shape[0]
        if not (0 <= config.pad_value < n_rows and float(config.pad_value).is_integer()) or config.n_bins > n_rows:
            msg = (
                f"input_emb_style='category' needs 0 <= pad_value < {n_rows} and n_bins <= {n_rows} "
                f"(the rows of 'value_encoder.embedding.weight'); args.json has pad_value={config.pad_value}, "
                f"n_bins={config.n_bins}."
            )
            raise ValueError(msg)
    model.load_state_dict({k: state[k].float() for k in expected}, strict=True, assign=True)
    return model.eval().requires_grad_(False)
