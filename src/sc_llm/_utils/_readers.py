"""Read what an AnnData-facing tool learns from: representations in ``.obsm`` and labels in ``.obs``.

One reader per concept, shared by every tool: :func:`read_reps` for representations (AnnData, or a MuData
with modality-qualified keys such as ``'rna:X_scgpt'``), :func:`read_labels` + :func:`labelled` for labels,
:func:`check_class_sizes` before training on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._anndata import check_obs, check_obsm, is_mudata, read_params, uns_key


def _available_reps(data: Any) -> list[str]:
    if not is_mudata(data):
        return list(data.obsm)
    own = [k for k in data.obsm if k not in data.mod]
    return own + [f"{m}:{k}" for m, a in data.mod.items() for k in a.obsm]


def align_rows(values, index: pd.Index, target: pd.Index, what: str):
    """Rows of ``values`` (indexed by ``index``) reordered to ``target``; error when cells are missing."""
    if index.equals(target):
        return values
    pos = index.get_indexer(target)
    if (pos < 0).any():
        msg = (
            f"{int((pos < 0).sum())} cells of the MuData are missing from {what}. Keep only cells present in "
            "every modality used, e.g. `muon.pp.intersect_obs(mdata)`."
        )
        raise ValueError(msg)
    return values[pos] if isinstance(values, np.ndarray) else values.iloc[pos]


def read_rep(data: Any, key: str) -> np.ndarray:
    """Return a representation ``(n_obs, dim)`` as float32, checked finite.

    On a MuData, ``key`` is a key of the MuData's own ``.obsm`` or a modality-qualified key such as
    ``'rna:X_scgpt'``, whose rows are aligned to the MuData's cells.
    """
    if not is_mudata(data):
        if key not in data.obsm:
            msg = (
                f"`{key}` not found in `adata.obsm` (available: {list(data.obsm)}). "
                "Compute it first, e.g. with `sl.tl.embed`."
            )
            raise KeyError(msg)
        return check_obsm(data, key)
    if key in data.obsm and key not in data.mod:
        return check_obsm(data, key)
    mod, sep, rep = key.partition(":")
    if not sep or mod not in data.mod or rep not in data.mod[mod].obsm:
        msg = (
            f"Representation {key!r} not found in the MuData. Use a modality-qualified key such as "
            f"'rna:X_scgpt' (available: {_available_reps(data)})."
        )
        raise KeyError(msg)
    X = check_obsm(data.mod[mod], rep)
    return align_rows(X, data.mod[mod].obs_names, data.obs_names, f"modality {mod!r}")


def read_reps(data: Any, use_reps: Sequence[str]) -> list[np.ndarray]:
    """All representations of ``use_reps``, each checked; errors name the first bad key."""
    use_reps = [use_reps] if isinstance(use_reps, str) else list(use_reps)
    if not use_reps:
        msg = "`use_reps` must name at least one `.obsm` representation."
        raise ValueError(msg)
    if len(set(use_reps)) != len(use_reps):
        msg = f"`use_reps` lists a representation twice: {use_reps}."
        raise ValueError(msg)
    return [read_rep(data, k) for k in use_reps]


def read_labels(data: Any, label_key: str) -> pd.Series:
    """``.obs[label_key]`` (MuData: also ``'mod:column'`` from a modality), aligned to the cells."""
    if is_mudata(data) and label_key not in data.obs:
        mod, sep, col = label_key.partition(":")
        if sep and mod in data.mod and col in data.mod[mod].obs:
            obs = data.mod[mod].obs
            return align_rows(obs[col], obs.index, data.obs_names, f"modality {mod!r}").set_axis(data.obs_names)
    return check_obs(data, label_key)


def has_labels(data: Any, label_key: str) -> bool:
    """``label_key`` can be read by :func:`read_labels`."""
    if label_key in data.obs:
        return True
    mod, sep, col = label_key.partition(":")
    return is_mudata(data) and bool(sep) and mod in data.mod and col in data.mod[mod].obs


def labelled(labels: pd.Series, where: str, *, keep_categories: bool = False) -> tuple[np.ndarray, pd.Categorical]:
    """``(mask of labelled cells, their labels as a Categorical)``; an error naming ``where`` when none is labelled.

    By default labels are compared as strings and the categories are the classes present, sorted.
    ``keep_categories``: keep the values and, for a categorical column, all its categories in their order.
    """
    has = labels.notna().to_numpy()
    if not has.any():
        msg = f"`{where}` has no labelled cell."
        raise ValueError(msg)
    _warn_near_duplicates(labels[has], where)
    if keep_categories:
        return has, pd.Categorical(labels)[has]
    values = labels[has].astype(str).to_numpy()
    return has, pd.Categorical(values, categories=sorted(set(values)))


def _warn_near_duplicates(labels: pd.Series, where: str) -> None:
    """Warn when labels differ only in case or spaces (``'B cell'`` and ``'B  Cell'``): likely one class twice."""
    import warnings

    groups: dict[str, set[str]] = {}
    for value in pd.unique(labels.astype(str)):
        groups.setdefault(" ".join(value.split()).casefold(), set()).add(value)
    twins = [sorted(g) for g in groups.values() if len(g) > 1]
    if twins:
        warnings.warn(
            f"Labels of `{where}` differ only in case or spaces: {twins[:3]}. They are kept as different classes; "
            "merge them first if they are one (e.g. `adata.obs[key] = adata.obs[key].str.strip()`).",
            UserWarning,
            stacklevel=4,
        )


def check_class_sizes(labels: pd.Categorical, minimum: int, why: str, *, other_fix: str | None = None) -> None:
    """Raise when a class has fewer than ``minimum`` cells, naming the classes and the fix.

    ``other_fix`` names a remedy besides dropping the classes that this caller accepts (e.g.
    ``'pass `validation_fraction=0`'``).
    """
    counts = pd.Series(labels).value_counts()
    small = counts[counts < minimum]
    if len(small):
        msg = (
            f"Classes with fewer than {minimum} labelled cells, too few for {why}: {small.to_dict()}. "
            "Drop or merge these classes (e.g. set their labels to NaN)" + (f", or {other_fix}." if other_fix else ".")
        )
        raise ValueError(msg)
    if len(counts) < 2:
        msg = f"Training a classifier needs at least 2 classes; found only {list(counts.index)}."
        raise ValueError(msg)


IDENTITY_FIELDS = ("encoder", "model", "revision", "fingerprint", "max_length", "prefix", "pooling", "n_bins")


def rep_identity(data: Any, key: str) -> dict[str, Any] | None:
    """What made the representation ``key`` (``sl.tl.embed``'s model identity and settings), or ``None``.

    Read from ``.uns[key without 'X_']['params']`` (of the modality for ``'mod:key'`` on a MuData); ``None`` for
    a representation no sc_llm tool recorded (a PCA, say): nothing to compare.
    """
    uns, rep = data.uns, key
    if is_mudata(data) and key not in data.obsm:
        mod, _, rep = key.partition(":")
        uns = data.mod[mod].uns if mod in data.mod else {}
    params = read_params(uns, uns_key(rep))
    ident = {f: params[f] for f in IDENTITY_FIELDS if f in params and params[f] is not None}
    return ident or None


def check_same_rep(ours: dict | None, theirs: dict | None, key: str, what: str) -> None:
    """Refuse two embeddings under one key made by different models or settings (same width, other space)."""
    if ours is None or theirs is None:
        return
    differ = {f: (ours[f], theirs[f]) for f in set(ours) & set(theirs) if ours[f] != theirs[f]}
    if differ:
        shown = "; ".join(f"{f}: {a!r} here, {b!r} in {what}" for f, (a, b) in sorted(differ.items()))
        msg = (
            f"`obsm[{key!r}]` was computed differently here and in {what} ({shown}): the two embeddings are not in "
            "one space. Embed both with the same model and settings."
        )
        raise ValueError(msg)
