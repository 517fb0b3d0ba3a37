"""Check and parse what users pass in, so that bad input gives a clear error instead of a wrong answer.

Every public function calls these at its top, before computing anything, so a failing call leaves the
AnnData as it was. The parsers of user text (cell sentences, gene lists, marker mappings) live here too:
one rule each, shared by every tool.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    pass

_DIGITS = re.compile(r"^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?$")
_SPECIAL = re.compile(r"^(\[[A-Za-z_]+\]|<\|?[^<>\s]+\|?>)$")  # [CLS], [PAD], <pad>, <|endoftext|>


# ---------------------------------------------------------------------------------------------- numbers
def check_count(value: Any, name: str, *, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an ``int`` of at least ``minimum``; ``True``/``2.5``/``'3'`` are refused, not rounded."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = " or None" if allow_none else ""
        msg = f"`{name}` must be an integer ≥ {minimum}{hint}, got {value!r} ({type(value).__name__})."
        raise TypeError(msg)
    if value < minimum:
        msg = f"`{name}` must be an integer ≥ {minimum}, got {value}."
        raise ValueError(msg)
    return int(value)


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer ≥ 0 (NumPy's generators take no negative seed)."""
    return check_count(value, name, minimum=0)


def check_seeds(values: Any, name: str = "seeds") -> list[int]:
    """A non-empty list of distinct seeds."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        msg = f"`{name}` must be a list of integer seeds, e.g. [0, 1, 2]; got {values!r}."
        raise TypeError(msg)
    seeds = [check_seed(v, f"{name}[{i}]") for i, v in enumerate(values)]
    if not seeds or len(set(seeds)) != len(seeds):
        msg = f"`{name}` must list at least one seed, without repeats; got {seeds}."
        raise ValueError(msg)
    return seeds


def check_sampling(
    *, n_genes: Any, temperature: Any, top_k: Any = None, top_p: Any = None, seed: Any = 0, batch_size: Any = 16
) -> dict[str, Any]:
    """Generation settings of a cell LM, checked: counts are integers ≥ 1, ``temperature`` > 0, ``top_p`` in (0, 1]."""
    out = {"n_genes": check_count(n_genes, "n_genes"), "seed": check_seed(seed)}
    out["batch_size"] = check_count(batch_size, "batch_size")
    out["top_k"] = check_count(top_k, "top_k", allow_none=True)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        msg = f"`temperature` must be a number > 0, got {temperature!r}."
        raise ValueError(msg)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1):
        msg = f"`top_p` must be a number in (0, 1] or None, got {top_p!r}."
        raise ValueError(msg)
    out |= {"temperature": float(temperature), "top_p": None if top_p is None else float(top_p)}
    return out


def requested_cell_types(cell_type: Any, n_cells: Any) -> list[str]:
    """One cell type per cell to generate: ``n_cells`` times one type, or a list with one type per cell."""
    if isinstance(cell_type, str):
        types = [cell_type] * check_count(n_cells, "n_cells", minimum=0)
    else:
        types = as_name_list(cell_type, "cell_type")
    if not types:
        msg = "Nothing to generate: pass `n_cells` ≥ 1 (or a non-empty list of cell types)."
        raise ValueError(msg)
    return types


def check_batching(batch_size: int, token_budget: int | None, *, scgpt: bool) -> None:
    """Validate ``batch_size`` and ``token_budget`` (text encoders only) before anything is loaded."""
    check_count(batch_size, "batch_size")
    check_count(token_budget, "token_budget", allow_none=True)
    if scgpt and token_budget is not None:
        msg = "`token_budget` batches text encoders; scGPT batches by `batch_size` cells."
        raise ValueError(msg)


# ---------------------------------------------------------------------------------------------- gene names
_NOT_PRINTABLE_ASCII = re.compile(r"[^!-~\n]|\n\n|^\n|\n$")  # a space, a non-ASCII character, or an empty name


def _invisible(name: str) -> bool:
    return any(c.isspace() or unicodedata.category(c) in {"Cf", "Cc", "Zs", "Zl", "Zp"} for c in name)


def check_gene_names(names: np.ndarray, where: str) -> np.ndarray:
    """Check every gene name that will become a word of a cell sentence.

    Refused: empty names, names with whitespace or invisible characters (zero-width spaces, control
    characters), duplicated names, purely numeric names (an integer index rather than gene symbols) and names
    that look like special tokens (``[CLS]``, ``<pad>``).
    Every name is checked, not a sample.
    """
    names = np.asarray(names, dtype=object)
    text = pd.Index([str(n) for n in names])
    # fast path: visible ASCII only (one regex over all names joined); else each non-ASCII name char by char
    suspects = text if _NOT_PRINTABLE_ASCII.search("\n".join(text)) else [n for n in text if not n]
    bad = [n for n in suspects if not n or _invisible(n)]
    if bad:
        msg = (
            f"{len(bad)} gene name(s) of {where} are empty or contain whitespace or invisible characters, which "
            f"would split or hide words of the cell sentences: {[*bad[:5]]!r}. Rename them first, e.g. "
            "`adata.var_names = adata.var_names.str.replace(r'\\s+', '_', regex=True)`."
        )
        raise ValueError(msg)
    dup = text[text.duplicated()].unique()
    if len(dup):
        msg = (
            f"{len(dup)} gene name(s) of {where} occur more than once ({list(dup[:5])!r}), so one gene would "
            "appear several times in a sentence. Make them unique first: `adata.var_names_make_unique()` "
            "(or aggregate the duplicated genes)."
        )
        raise ValueError(msg)
    numeric = [n for n in text if _DIGITS.match(n)]
    if numeric:
        msg = (
            f"{len(numeric)} gene name(s) of {where} are numbers ({numeric[:5]!r}), not gene symbols: were the "
            "gene names lost (an integer index)? Set `adata.var_names` to gene symbols, or pass `gene_symbols=` "
            "naming a `.var` column holding them."
        )
        raise ValueError(msg)
    special = [n for n in text if _SPECIAL.match(n)]
    if special:
        msg = (
            f"{len(special)} gene name(s) of {where} look like a tokenizer's special tokens ({special[:5]!r}), which "
            "a language model reads as control tokens, not genes. Drop or rename those genes first."
        )
        raise ValueError(msg)
    return text.to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------- gene lists
def as_name_list(values: Any, name: str) -> list[str]:
    """A list of names (genes, groups, keys) from one string or an iterable of strings; one string is one name."""
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping) or not isinstance(values, Iterable):
        msg = f"`{name}` must be a name or a list of names, got {type(values).__name__}."
        raise TypeError(msg)
    out = list(values)
    bad = [v for v in out if not isinstance(v, str | np.str_)]
    if bad:
        msg = f"`{name}` must hold names (strings); got {bad[0]!r} ({type(bad[0]).__name__})."
        raise TypeError(msg)
    return [str(v) for v in out]


def as_gene_list(genes: Any, name: str = "genes") -> list[str]:
    """Gene names from a list, or from one string of names separated by whitespace or commas; order kept."""
    if isinstance(genes, str):
        return [g for g in re.split(r"[\s,;]+", genes) if g]
    return [g.strip() for g in as_name_list(genes, name) if g.strip()]


def as_marker_mapping(markers: Any) -> dict[str, set[str]] | None:
    """``{group: {genes}}`` from a mapping of group → list of genes (or one string of genes).

    A list, a set or a string is refused with an example of the expected shape (a bare list has no groups).
    """
    if markers is None:
        return None
    if not isinstance(markers, Mapping):
        kind = type(markers).__name__
        msg = (
            f"`markers` must map each group to its marker genes, e.g. {{'B cell': ['CD79A', 'MS4A1'], "
            f"'NK cell': ['GNLY', 'NKG7']}}; got a {kind}. A plain list of genes has no groups: "
            "use `{group: genes}` for the group(s) it belongs to."
        )
        raise TypeError(msg)
    return {str(group): set(as_gene_list(genes, f"markers[{group!r}]")) for group, genes in markers.items()}


# ---------------------------------------------------------------------------------------------- outputs
def check_writes(adata: Any, writes: Mapping[str, Iterable[str]], reads: Mapping[str, Iterable[str]]) -> None:
    """Refuse to overwrite what the same call reads; warn when replacing existing results.

    ``writes``/``reads`` map a slot (``'obs'``, ``'obsm'``, ``'uns'``) to keys. Call before computing.
    """
    for slot, keys in writes.items():
        inputs = set(reads.get(slot, ()))
        present = getattr(adata, slot)
        for key in keys:
            if key in inputs:
                msg = (
                    f"`adata.{slot}[{key!r}]` is an input of this call and would be overwritten by its result; "
                    "pass a different `key_added`."
                )
                raise ValueError(msg)
            if key in present:
                warnings.warn(
                    f"Replacing the existing `adata.{slot}[{key!r}]`; pass another `key_added` to keep it.",
                    UserWarning,
                    stacklevel=3,
                )


def check_embedding(X: np.ndarray, model: str) -> np.ndarray:
    """Refuse an embedding with NaN/inf values (a broken checkpoint or an overflow), naming the cause."""
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        msg = (
            f"The encoder {model!r} produced NaN or infinite values for {int(bad.sum())} of {len(X)} cells: its "
            "weights may be corrupted (check the checkpoint files) or reduced precision overflowed "
            "(try `dtype='float32'`). Nothing was written."
        )
        raise ValueError(msg)
    return X


def check_nonzero_rows(X: np.ndarray, where: str) -> None:
    """Refuse all-zero rows in an embedding used for cosine similarity (they have no direction)."""
    zero = ~np.any(X != 0, axis=1)
    if zero.any():
        msg = (
            f"{int(zero.sum())} cell(s) of {where} have an all-zero embedding, which has no cosine similarity to "
            "anything (empty sentences or no gene matched?). Drop those cells or recompute their embedding."
        )
        raise ValueError(msg)
