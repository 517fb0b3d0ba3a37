"""``sl.tl.ScMPT``: a trained scMPT fusion classifier that can be saved, loaded and applied to new cells."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._utils._anndata import check_obs, check_obsm
from .._utils._logging import logg

if TYPE_CHECKING:
    pass

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
TRAIN_DEFAULTS: dict[str, Any] = {
    "hidden": 128,
    "dropout": 0.3,
    "scaling": "representation",
    "input_dropout": 0.0,
    "pretrain": True,
    "validation_fraction": 0.1,
    "class_weight": None,
    "max_epochs": 200,
    "patience": 15,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-2,
    "seed": 0,
}


def is_mudata(data: Any) -> bool:
    """Tell whether ``data`` is a MuData (checked by name, so mudata need not be installed)."""
    return type(data).__name__ == "MuData"


def _available_reps(data: Any) -> list[str]:
    if not is_mudata(data):
        return list(data.obsm)
    own = [k for k in data.obsm if k not in data.mod]
    return own + [f"{m}:{k}" for m, a in data.mod.items() for k in a.obsm]


def _align(values, index: pd.Index, target: pd.Index, what: str):
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
    return _align(X, data.mod[mod].obs_names, data.obs_names, f"modality {mod!r}")


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
            return _align(obs[col], obs.index, data.obs_names, f"modality {mod!r}").set_axis(data.obs_names)
    return check_obs(data, label_key)


def has_labels(data: Any, label_key: str) -> bool:
    """``label_key`` can be read by :func:`read_labels`."""
    if label_key in data.obs:
        return True
    mod, sep, col = label_key.partition(":")
    return is_mudata(data) and bool(sep) and mod in data.mod and col in data.mod[mod].obs


def labelled(labels: pd.Series, where: str) -> tuple[np.ndarray, pd.Categorical]:
    """``(mask of labelled cells, their labels as a Categorical with only the classes present)``."""
    has = labels.notna().to_numpy()
    if not has.any():
        msg = f"`{where}` has no labelled cell."
        raise ValueError(msg)
    values = labels[has].astype(str).to_numpy()
    return has, pd.Categorical(values, categories=sorted(set(values)))


def check_class_sizes(labels: pd.Categorical, minimum: int, why: str) -> None:
    """Raise when a class has fewer than ``minimum`` cells, naming the classes and the fix."""
    counts = pd.Series(labels).value_counts()
    small = counts[counts < minimum]
    if len(small):
        msg = (
            f"Classes with fewer than {minimum} labelled cells, too few for {why}: {small.to_dict()}. "
            "Drop or merge these classes (e.g. set their labels to NaN), or lower the held-out fraction to 0."
        )
        raise ValueError(msg)
    if len(counts) < 2:
        msg = f"Training a classifier needs at least 2 classes; found only {list(counts.index)}."
        raise ValueError(msg)


class ScMPT:
    """A trained scMPT fusion classifier over one or more frozen cell representations.

    Create one with :meth:`ScMPT.fit` (or :meth:`ScMPT.load`); :func:`sc_llm.tl.scmpt_annotate` wraps it
    for AnnData workflows.

    Attributes
    ----------
    module
        The :class:`sc_llm.core.fusion.FusionClassifier` (in eval mode).
    classes
        Class labels, in the order of the probability columns.
    use_reps
        Representation keys, in the order the module takes them.
    rep_dims
        Expected dimension of each representation.
    label_key
        ``.obs`` column the model was trained on.
    params
        Training parameters.
    history
        Training history: per-epoch losses, ``best_epoch``, ``n_epochs``, ``stopped_early``.
    """

    def __init__(
        self,
        module,
        *,
        classes: Sequence[str],
        use_reps: Sequence[str],
        label_key: str,
        params: dict[str, Any] | None = None,
        history: dict[str, Any] | None = None,
    ):
        self.module = module
        self.classes = [str(c) for c in classes]
        self.use_reps = list(use_reps)
        self.rep_dims = list(module.in_dims)
        self.label_key = label_key
        self.params = dict(params or {})
        self.history = dict(history or {})
        if len(self.classes) != module.n_classes or len(self.use_reps) != len(self.rep_dims):
            msg = "The module's number of classes or inputs does not match `classes`/`use_reps`."
            raise ValueError(msg)

    def __repr__(self) -> str:
        reps = ", ".join(f"{k} ({d})" for k, d in zip(self.use_reps, self.rep_dims, strict=True))
        return f"ScMPT({len(self.classes)} classes of {self.label_key!r} from {reps})"

    @classmethod
    def from_arrays(
        cls,
        reps: Sequence[np.ndarray],
        labels: pd.Categorical,
        *,
        use_reps: Sequence[str],
        label_key: str,
        device: Any = None,
        progress: bool = True,
        **train: Any,
    ) -> ScMPT:
        """Train on arrays: ``reps`` (one ``(n, dim)`` array per key of ``use_reps``) and ``labels``.

        Classes are the categories present in ``labels``; ``**train`` as in :meth:`fit`.
        """
        from ..core.fusion_training import stratified_split, train_fusion

        unknown = set(train) - set(TRAIN_DEFAULTS)
        if unknown:
            msg = f"Unexpected training arguments: {sorted(unknown)} (known: {sorted(TRAIN_DEFAULTS)})."
            raise TypeError(msg)
        p = {**TRAIN_DEFAULTS, **train}
        labels = pd.Categorical(labels).remove_unused_categories()
        codes = np.asarray(labels.codes)
        if (codes < 0).any() or any(len(X) != len(codes) for X in reps):
            msg = "Every training cell needs a label and a row in every representation."
            raise ValueError(msg)
        frac = float(p["validation_fraction"])
        if not 0.0 <= frac < 1.0:
            msg = f"`validation_fraction` must be in [0, 1), got {frac}."
            raise ValueError(msg)
        check_class_sizes(labels, 2 if frac > 0 else 1, "a stratified validation split" if frac > 0 else "training")
        weights = _class_weights(p["class_weight"], labels)
        if frac > 0:
            tr, va = stratified_split(codes, frac, p["seed"])
        else:
            tr, va = np.arange(len(codes)), np.array([], dtype=np.int64)

        start = logg.info(
            f"training scMPT on {len(tr)} cells ({len(va)} for validation), {len(labels.categories)} classes"
        )
        arch = {k: p[k] for k in ("hidden", "dropout", "scaling", "input_dropout")}
        fit = {k: p[k] for k in ("max_epochs", "patience", "batch_size", "lr", "weight_decay", "seed")}
        module, history = train_fusion(
            [X[tr] for X in reps],
            codes[tr],
            len(labels.categories),
            val_reps=[X[va] for X in reps] if len(va) else None,
            val_codes=codes[va] if len(va) else None,
            pretrain=p["pretrain"],
            class_weights=weights,
            architecture=arch,
            device=device,
            progress=progress,
            **fit,
        )
        logg.info(f"    finished after {history['n_epochs']} epochs (best: {history['best_epoch']})", time=start)
        class_weight = (
            p["class_weight"]
            if p["class_weight"] is None or isinstance(p["class_weight"], str)
            else {str(k): float(v) for k, v in dict(p["class_weight"]).items()}
        )
        params = {
            **p,
            "class_weight": class_weight,
            "n_train": len(tr),
            "n_validation": len(va),
            "device": history["device"],
        }
        return cls(
            module,
            classes=list(labels.categories),
            use_reps=use_reps,
            label_key=label_key,
            params=params,
            history=history,
        )

    @classmethod
    def fit(
        cls,
        adata: Any,
        *,
        label_key: str,
        use_reps: Sequence[str] = ("X_scgpt", "X_ember"),
        device: Any = None,
        progress: bool = True,
        **train: Any,
    ) -> ScMPT:
        """Train on the labelled cells of ``adata`` (an AnnData, or a MuData with modality-qualified keys).

        Parameters
        ----------
        adata
            Cells with the representations in ``.obsm`` and labels in ``.obs[label_key]``; unlabelled (NaN)
            cells are ignored.
        label_key
            ``.obs`` column with the cell labels.
        use_reps
            ``.obsm`` keys of the frozen representations, e.g. ``['X_scgpt', 'X_ember']``; one key trains the
            single-representation MLP baseline. On a MuData: ``'mod:key'``.
        device
            Torch device; ``None`` picks CUDA, then MPS, then CPU.
        progress
            Show a progress bar over epochs.
        **train
            ``hidden`` (feature width per representation, 128), ``dropout`` (0.3), ``scaling``
            (``'representation'``: centre features, one scale per representation; or ``'feature'``),
            ``input_dropout`` (0), ``pretrain`` (True: train each representation's MLP first, start the fusion
            from their validation-weighted logit sum, then fine-tune; see
            :func:`sc_llm.core.fusion_training.train_fusion`), ``validation_fraction``
            (0.1; stratified, used for early stopping; 0 trains ``max_epochs`` epochs without one),
            ``class_weight`` (``None``, ``'balanced'`` or a ``{label: weight}`` dict), ``max_epochs`` (200),
            ``patience`` (15), ``batch_size`` (64), ``lr`` (1e-3), ``weight_decay`` (1e-2), ``seed`` (0).
        """
        use_reps = [use_reps] if isinstance(use_reps, str) else list(use_reps)
        reps = read_reps(adata, use_reps)
        has, labels = labelled(read_labels(adata, label_key), f"obs[{label_key!r}]")
        return cls.from_arrays(
            [X[has] for X in reps],
            labels,
            use_reps=use_reps,
            label_key=label_key,
            device=device,
            progress=progress,
            **train,
        )

    def _checked_reps(self, adata: Any) -> list[np.ndarray]:
        reps = read_reps(adata, self.use_reps)
        for key, X, d in zip(self.use_reps, reps, self.rep_dims, strict=True):
            if X.shape[1] != d:
                msg = (
                    f"`obsm[{key!r}]` has {X.shape[1]} dimensions but the model was trained on {d}; "
                    "embed the query with the same model as the training cells."
                )
                raise ValueError(msg)
        return reps

    def predict_proba(self, adata: Any, *, batch_size: int = 1024, device: Any = None) -> np.ndarray:
        """Class probabilities ``(n_obs, n_classes)``, columns in the order of :attr:`classes`."""
        from ..core.fusion_training import predict_proba

        return predict_proba(self.module, self._checked_reps(adata), batch_size=batch_size, device=device)

    def predict(self, adata: Any, *, batch_size: int = 1024, device: Any = None) -> pd.Series:
        """Most probable class of each cell, as a categorical Series indexed by ``obs_names``."""
        proba = self.predict_proba(adata, batch_size=batch_size, device=device)
        labels = pd.Categorical.from_codes(proba.argmax(1), categories=self.classes)
        return pd.Series(labels, index=adata.obs_names, name=self.label_key)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` (labels, representation keys and dimensions, parameters) and ``model.pt``."""
        import torch

        folder = Path(folder)
        if (folder / CONFIG_FILE).exists() and not overwrite:
            msg = f"{folder / CONFIG_FILE} exists; pass `overwrite=True` to replace it."
            raise FileExistsError(msg)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "format": "sc_llm.ScMPT",
            "format_version": FORMAT_VERSION,
            "classes": self.classes,
            "use_reps": self.use_reps,
            "rep_dims": self.rep_dims,
            "label_key": self.label_key,
            "module": self.module.config(),
            "params": self.params,
            "history": summarize_history(self.history),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        torch.save(state, folder / WEIGHTS_FILE)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: Any = None) -> ScMPT:
        """Load a model written by :meth:`save` (weights read with ``weights_only=True``)."""
        import torch

        from ..core.device import resolve_device
        from ..core.fusion import FusionClassifier

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            msg = f"{folder} is not a saved ScMPT model (expected {CONFIG_FILE} and {WEIGHTS_FILE})."
            raise FileNotFoundError(msg)
        config = json.loads((folder / CONFIG_FILE).read_text())
        if config.get("format") != "sc_llm.ScMPT" or config.get("format_version", 0) > FORMAT_VERSION:
            msg = f"{folder / CONFIG_FILE} is not an ScMPT config this version of sc_llm can read."
            raise ValueError(msg)
        module = FusionClassifier(**config["module"])
        module.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        module.to(resolve_device(device)).eval()
        return cls(
            module,
            classes=config["classes"],
            use_reps=config["use_reps"],
            label_key=config["label_key"],
            params=config.get("params"),
            history=config.get("history"),
        )


def _class_weights(spec: Any, labels: pd.Categorical) -> np.ndarray | None:
    from ..core.fusion_training import balanced_class_weights

    if spec is None:
        return None
    if isinstance(spec, str):
        if spec != "balanced":
            msg = f"`class_weight` must be None, 'balanced' or a {{label: weight}} dict, got {spec!r}."
            raise ValueError(msg)
        return balanced_class_weights(np.asarray(labels.codes), len(labels.categories))
    spec = {str(k): float(v) for k, v in dict(spec).items()}
    missing = [c for c in labels.categories if c not in spec]
    if missing:
        msg = f"`class_weight` has no weight for classes {missing}."
        raise ValueError(msg)
    return np.array([spec[c] for c in labels.categories], dtype=np.float32)


def summarize_history(history: dict[str, Any]) -> dict[str, Any]:
    """Scalars of a training history: epochs run, best epoch, final/best losses (JSON and h5ad friendly)."""
    keys = ("n_epochs", "best_epoch", "stopped_early", "branch_weights")
    out: dict[str, Any] = {k: history[k] for k in keys if k in history}
    if history.get("train_loss"):
        out["final_train_loss"] = float(history["train_loss"][-1])
    if history.get("val_loss"):
        best = int(np.argmin(history["val_loss"]))
        out["best_val_loss"] = float(history["val_loss"][best])
        out["best_val_accuracy"] = float(history["val_accuracy"][best])
    for k in ("final_train_loss", "best_val_loss", "best_val_accuracy", "n_epochs", "best_epoch", "stopped_early"):
        if k in history and k not in out:
            out[k] = history[k]
    return out
