"""``sl.tl.ScMPT``: a trained scMPT fusion classifier that can be saved, loaded and applied to new cells."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._logging import logg
from ..._utils._readers import check_class_sizes, check_same_rep, labelled, read_labels, read_reps, rep_identity
from ...core.fusion.defaults import ARCHITECTURE_KEYS, FIT_KEYS, TRAIN_DEFAULTS
from ._scmpt_files import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, checksum, read_config, verify_checksum

if TYPE_CHECKING:
    from anndata import AnnData


class ScMPT:
    """A trained scMPT fusion classifier over one or more frozen cell representations.

    Create one with :meth:`ScMPT.fit` (or :meth:`ScMPT.load`); :func:`sc_llm.tl.scmpt_annotate` wraps it
    for AnnData workflows.

    Attributes
    ----------
    module
        The trained network, a :class:`sc_llm.core.fusion.network.FusionClassifier` (or, for ``fusion='stacked'``, a
        :class:`sc_llm.core.fusion.stacking.StackedFusion`), in eval mode.
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
        # the label values themselves (integers stay integers), which predict() returns
        self.class_values = [c.item() if isinstance(c, np.generic) else c for c in classes]
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
        from ...core.base.splits import stratified_split
        from ...core.fusion.stacking import train_any_fusion

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
        _check_training_labels(labels, frac)
        weights = _class_weights(p["class_weight"], labels)
        if frac > 0:
            tr, va = stratified_split(codes, frac, p["seed"])
        else:
            tr, va = np.arange(len(codes)), np.array([], dtype=np.int64)

        start = logg.info(
            f"training scMPT on {len(tr)} cells ({len(va)} for validation), {len(labels.categories)} classes"
        )
        arch = {k: p[k] for k in ARCHITECTURE_KEYS}
        fit = {k: p[k] for k in FIT_KEYS}
        module, history = train_any_fusion(
            [X[tr] for X in reps],
            codes[tr],
            len(labels.categories),
            fusion=p["fusion"],
            n_folds=int(p["n_folds"]),
            val_reps=[X[va] for X in reps] if len(va) else None,
            val_codes=codes[va] if len(va) else None,
            class_weights=weights,
            architecture=arch,
            device=device,
            progress=progress,
            **fit,
        )
        logg.info(f"    finished after {history['n_epochs']} epochs (best: {history['best_epoch']})", time=start)
        if history["fusion"] == "stacked":  # the folds used the validation cells for training too
            tr, va = np.arange(len(codes)), np.array([], dtype=np.int64)
        params = _recorded_params(p, len(tr), len(va), history["device"])
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
            ``input_dropout`` (0), ``fusion`` (how two or more representations are combined: ``'stacked'``, the
            default: each representation's MLP is cross-fitted on ``n_folds`` (5) folds of the training cells and
            the MLPs' mean probabilities are combined as a product of experts with non-negative weights learned
            on the out-of-fold predictions; ``'pretrained'``: each representation's MLP is trained first, the
            fusion starts from their validation-weighted logit sum and is fine-tuned; ``'concat'``: the first
            paper's network, concatenated features trained end to end from a random start), ``n_folds`` (5),
            ``validation_fraction`` (0.1; stratified, used for early stopping and to calibrate the
            temperature of a network; ignored by ``'stacked'``, whose folds play its role; 0 trains
            ``max_epochs`` epochs without one),
            ``class_weight`` (``None``, ``'balanced'`` or a ``{label: weight}`` dict), ``max_epochs`` (200),
            ``patience`` (15), ``batch_size`` (64), ``lr`` (1e-3), ``weight_decay`` (1e-2), ``seed`` (0).
        """
        use_reps = [use_reps] if isinstance(use_reps, str) else list(use_reps)
        reps = read_reps(adata, use_reps)
        has, labels = labelled(read_labels(adata, label_key), f"obs[{label_key!r}]", keep_categories=True)
        model = cls.from_arrays(
            [X[has] for X in reps],
            labels,
            use_reps=use_reps,
            label_key=label_key,
            device=device,
            progress=progress,
            **train,
        )
        identities = {k: rep_identity(adata, k) for k in use_reps}
        model.params["rep_identities"] = {k: v for k, v in identities.items() if v is not None}
        return model

    def _checked_reps(self, data: AnnData | Sequence[np.ndarray]) -> list[np.ndarray]:
        if isinstance(data, list | tuple):
            reps = [np.asarray(X, dtype=np.float32) for X in data]
            if len(reps) != len(self.use_reps) or len({len(X) for X in reps}) > 1 or any(X.ndim != 2 for X in reps):
                msg = (
                    f"Pass one 2-d array per representation {self.use_reps}, all with the same number of rows; "
                    f"got {len(reps)} arrays."
                )
                raise ValueError(msg)
        else:
            reps = read_reps(data, self.use_reps)
            for key, ident in self.params.get("rep_identities", {}).items():
                check_same_rep(rep_identity(data, key), ident, key, "the training cells")
        for key, X, d in zip(self.use_reps, reps, self.rep_dims, strict=True):
            if X.shape[1] != d:
                msg = (
                    f"`obsm[{key!r}]` has {X.shape[1]} dimensions but the model was trained on {d}; "
                    "embed the query with the same model as the training cells."
                )
                raise ValueError(msg)
        return reps

    def predict_proba(
        self, data: AnnData | Sequence[np.ndarray], *, batch_size: int = 1024, device: Any = None
    ) -> np.ndarray:
        """Class probabilities ``(n_obs, n_classes)``, columns in the order of :attr:`classes`.

        ``data`` is an AnnData (or MuData) holding :attr:`use_reps` in ``.obsm``, or a list of arrays, one
        ``(n_cells, dim)`` array per key of :attr:`use_reps`, in that order.
        """
        from ...core.fusion.training import predict_proba

        return predict_proba(self.module, self._checked_reps(data), batch_size=batch_size, device=device)

    def predict(self, data: AnnData | Sequence[np.ndarray], *, batch_size: int = 1024, device: Any = None) -> pd.Series:
        """Most probable class of each cell, as a categorical Series.

        Indexed by ``obs_names`` for an AnnData, by position for a list of arrays (see :meth:`predict_proba`).
        """
        proba = self.predict_proba(data, batch_size=batch_size, device=device)
        labels = pd.Categorical.from_codes(proba.argmax(1), categories=self.class_values)
        index = None if isinstance(data, list | tuple) else data.obs_names
        return pd.Series(labels, index=index, name=self.label_key)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` (labels, representation keys and dimensions, parameters) and ``model.pt``."""
        import torch

        from ...core.base.atomic import atomic_file, write_json

        folder = Path(folder)
        if (folder / CONFIG_FILE).exists() and not overwrite:
            msg = f"{folder / CONFIG_FILE} exists; pass `overwrite=True` to replace it."
            raise FileExistsError(msg)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "format": "sc_llm.ScMPT",
            "format_version": FORMAT_VERSION,
            "classes": self.class_values,
            "use_reps": self.use_reps,
            "rep_dims": self.rep_dims,
            "label_key": self.label_key,
            "module": self.module.config(),
            "params": self.params,
            "history": summarize_history(self.history),
        }
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        with atomic_file(folder / WEIGHTS_FILE) as tmp:
            torch.save(state, tmp)
            config["checksum"] = checksum(config, tmp.read_bytes())
        write_json(folder / CONFIG_FILE, config, indent=2, sort_keys=False)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: Any = None) -> ScMPT:
        """Load a model written by :meth:`save` (weights read with ``weights_only=True``)."""
        import torch

        from ...core.base.device import resolve_device
        from ...core.fusion.stacking import build_module

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            msg = f"{folder} is not a saved ScMPT model (expected {CONFIG_FILE} and {WEIGHTS_FILE})."
            raise FileNotFoundError(msg)
        config = read_config(folder / CONFIG_FILE)
        weights = (folder / WEIGHTS_FILE).read_bytes()
        verify_checksum(folder, config, weights)
        try:
            module = build_module(config["module"])
            module.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
        except Exception as e:  # torch raises many types for damaged files (RuntimeError, UnpicklingError, EOFError)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            msg = (
                f"{folder / WEIGHTS_FILE} cannot be loaded into the network described by {CONFIG_FILE} ({first}). "
                "The files are damaged or do not belong together; save the model again from training."
            )
            raise ValueError(msg) from e
        module.to(resolve_device(device)).eval()
        return cls(
            module,
            classes=config["classes"],
            use_reps=config["use_reps"],
            label_key=config["label_key"],
            params=config.get("params"),
            history=config.get("history"),
        )


def _recorded_params(p: dict[str, Any], n_train: int, n_validation: int, device: str) -> dict[str, Any]:
    """Training parameters as recorded in :attr:`ScMPT.params` (a class-weight dict with string keys)."""
    class_weight = (
        p["class_weight"]
        if p["class_weight"] is None or isinstance(p["class_weight"], str)
        else {str(k): float(v) for k, v in dict(p["class_weight"]).items()}
    )
    return {**p, "class_weight": class_weight, "n_train": n_train, "n_validation": n_validation, "device": device}


def _class_weights(spec: Any, labels: pd.Categorical) -> np.ndarray | None:
    from ...core.fusion.training import balanced_class_weights

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
    keys = (
        "fusion",
        "n_epochs",
        "best_epoch",
        "stopped_early",
        "branch_weights",
        "temperature",
        "weights",
        "class_evidence",
        "oof_loss",
        "oof_accuracy",
    )
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


def _check_training_labels(labels: pd.Categorical, validation_fraction: float) -> None:
    if validation_fraction > 0:
        check_class_sizes(labels, 2, "a stratified validation split", other_fix="pass `validation_fraction=0`")
    else:
        check_class_sizes(labels, 1, "training")
