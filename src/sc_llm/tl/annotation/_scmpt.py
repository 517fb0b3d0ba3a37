"""``sl.tl.scmpt_annotate``: cell-type annotation by scMPT, a small network fusing frozen representations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._readers import has_labels, labelled, read_labels, read_reps
from ..._utils._validation import check_writes
from ...core.fusion.defaults import TRAIN_DEFAULTS
from ...metrics import classification_scores, expected_calibration_error
from ._scmpt_model import CONFIG_FILE, ScMPT, summarize_history

if TYPE_CHECKING:
    from anndata import AnnData


@doc_params()
def scmpt_annotate(
    adata: AnnData,
    reference: AnnData | None = None,
    *,
    label_key: str,
    use_reps: Sequence[str] = ("X_scgpt", "X_ember"),
    key_added: str = "scmpt",
    hidden: int = TRAIN_DEFAULTS["hidden"],
    dropout: float = TRAIN_DEFAULTS["dropout"],
    fusion: str = TRAIN_DEFAULTS["fusion"],
    n_folds: int = TRAIN_DEFAULTS["n_folds"],
    validation_fraction: float = TRAIN_DEFAULTS["validation_fraction"],
    class_weight: str | dict[str, float] | None = TRAIN_DEFAULTS["class_weight"],
    max_epochs: int = TRAIN_DEFAULTS["max_epochs"],
    patience: int = TRAIN_DEFAULTS["patience"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    lr: float = TRAIN_DEFAULTS["lr"],
    weight_decay: float = TRAIN_DEFAULTS["weight_decay"],
    seed: int = TRAIN_DEFAULTS["seed"],
    mod: str | None = None,
    device: str | None = None,
    progress: bool = True,
    save_model: str | Path | None = None,
    overwrite: bool = False,
    copy: bool = False,
) -> AnnData | None:
    """Annotate cells with scMPT: a small classifier trained on frozen cell representations fused together.

    As in the first paper, each representation (e.g. scGPT's and a text encoder's embeddings of the same
    cells) goes through its own small feature extractor (linear → layer norm → GELU → dropout, after
    centring and scaling with the training cells' statistics); the features are concatenated and a linear layer
    classifies them. The design is deliberately simple, so that gains over a single representation come from
    their synergy rather than from capacity. With a single key in ``use_reps`` this is the paper's
    single-encoder MLP baseline; text embeddings plus expression PCA work where scGPT weights are not at hand.

    Training uses AdamW and cross-entropy with early stopping on held-out cells (the best validation-loss
    weights are kept); it is seeded and reproducible on CPU. ``fusion='concat'`` trains exactly that network
    end to end. The default, ``fusion='stacked'``, cross-fits each representation's MLP on ``n_folds`` folds
    and combines their probabilities as a product of experts whose non-negative weights are learned on the
    out-of-fold predictions of all training cells: a weak representation gets a small weight instead of
    dragging the fusion down, and the weights' scale calibrates the confidences. For the object API (save the
    model, apply it to other data) see :class:`sc_llm.tl.ScMPT`.

    Parameters
    ----------
    adata
        Cells to annotate, with the representations in ``.obsm``; or a MuData, with modality-qualified keys
        (``'rna:X_scgpt'``, ``'text:X_ember'``) or keys of the MuData's own ``.obsm``. Results go to the MuData.
    reference
        Labelled cells to train on (same kind of object and representations). ``None``: train on the cells
        of ``adata`` whose ``label_key`` is set.
    label_key
        ``.obs`` column with the training labels (NaN = unlabelled); in ``adata`` it is also the truth
        for ``metrics``. On a MuData also ``'mod:column'``.
    use_reps
        ``.obsm`` keys of the representations to fuse, in order.
    key_added
        Prefix of the written keys.
    hidden
        Output width of each representation's feature extractor.
    dropout
        Dropout rate of the feature extractors.
    fusion
        How two or more representations are combined: ``'stacked'`` (cross-fitted MLPs per representation,
        product of experts with weights learned out of fold), ``'pretrained'`` (each representation's MLP
        trained first, the fused network started from their validation-weighted logit sum and fine-tuned end
        to end) or ``'concat'`` (the first paper's network, trained end to end from a random start).
    n_folds
        Folds of ``fusion='stacked'`` (members per representation).
    validation_fraction
        Fraction of every class held out for early stopping and for the temperature that calibrates a
        network's confidences (each class needs ≥ 2 cells). ``0``: train ``max_epochs`` epochs without
        validation. Not used by ``fusion='stacked'``, whose folds play its role.
    class_weight
        ``None``, ``'balanced'`` (inverse class frequency) or ``{label: weight}`` for the loss.
    max_epochs
        Upper limit on training epochs.
    patience
        Epochs without validation-loss improvement before stopping.
    batch_size
        Cells per optimisation step.
    lr
        AdamW learning rate.
    weight_decay
        AdamW weight decay.
    seed
        Seed of the split, the initial weights, shuffling and dropout.
    mod
        On a MuData: the modality to work in (its ``.obsm`` keys and ``.obs`` labels; results go to it).
        ``None``: the MuData itself, with modality-qualified keys to fuse representations across modalities.
    device
        ``'cuda'``, ``'mps'``, ``'cpu'``; ``None`` picks the first available in that order.
    progress
        Show a progress bar over epochs.
    save_model
        Folder to save the trained model to (see :meth:`sc_llm.tl.ScMPT.load`); must not hold one yet unless
        ``overwrite=True``.
    overwrite
        Replace a model already saved in ``save_model``.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.obs[key_added]`` : :class:`pandas.Categorical`
        Predicted labels of all cells (training cells included).
    ``adata.obs[key_added + '_confidence']`` : ``float``
        Probability of the predicted label, calibrated on held-out cells (out-of-fold cells for
        ``fusion='stacked'``, the validation cells for a network).
    ``adata.obsm[key_added + '_proba']`` : :class:`numpy.ndarray` (``n_obs`` × ``n_classes``)
        Class probabilities, columns in the order of ``uns[key_added]['classes']``.
    ``adata.uns[key_added]`` : :class:`dict`
        ``classes``; ``params`` (``use_reps``, ``rep_dims``, ``label_key``, ``reference``, the training
        arguments, ``n_train``, ``n_validation``, ``device``); ``history`` (``n_epochs``, ``best_epoch``,
        ``stopped_early``, ``final_train_loss``, ``best_val_loss``, ``best_val_accuracy``; for
        ``fusion='stacked'`` the expert ``weights``, one per representation, and ``class_evidence``, per class and
        representation, drawn by :func:`sc_llm.pl.fusion_weights`); and, when truth is
        known for cells not trained on, ``metrics`` (accuracy, macro precision/recall/F1, ``ece`` (expected
        calibration error of the confidences, 15 bins), ``n``) with
        ``metrics_on``: ``'query'`` (cells of ``adata`` labelled in ``label_key``, given a ``reference``) or
        ``'validation'`` (the held-out validation cells, without a ``reference``; they also steered early
        stopping, so this estimate is slightly optimistic; ``fusion='stacked'`` has none: every cell is trained
        on, and ``history`` holds the out-of-fold ``oof_accuracy`` instead).
    """
    use_reps = [use_reps] if isinstance(use_reps, str) else list(use_reps)
    target = get_modality(adata, mod, whole_mudata=True)
    train_reps, has, train_labels = _training_data(target, reference, use_reps, label_key, mod)
    if save_model is not None and (Path(save_model) / CONFIG_FILE).exists() and not overwrite:
        msg = (
            f"`save_model={str(save_model)!r}` already holds a model; pass `overwrite=True` to replace it, or choose "
            "another folder."
        )
        raise FileExistsError(msg)
    outputs = [key_added, f"{key_added}_confidence"]
    reads = {"obs": [label_key], "obsm": use_reps}
    check_writes(target, {"obs": outputs, "obsm": [f"{key_added}_proba"], "uns": [key_added]}, reads)

    train = {
        "hidden": hidden,
        "dropout": dropout,
        "fusion": fusion,
        "n_folds": n_folds,
        "validation_fraction": validation_fraction,
        "class_weight": class_weight,
        "max_epochs": max_epochs,
        "patience": patience,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
    }
    start = logg.info(f"annotating {target.n_obs} cells with scMPT on {use_reps}")
    model = ScMPT.from_arrays(
        train_reps, train_labels, use_reps=use_reps, label_key=label_key, device=device, progress=progress, **train
    )
    proba = model.predict_proba(target, device=device)
    predicted = pd.Categorical.from_codes(proba.argmax(1), categories=model.class_values)
    params = {"use_reps": use_reps, "rep_dims": model.rep_dims, "label_key": label_key}
    params.update(reference="adata" if reference is None else "external", **model.params)
    uns = {
        "classes": list(model.class_values),
        "params": h5ad_params(params),
        "history": summarize_history(model.history),
    }
    held_out = validation_fraction if model.params["n_validation"] else 0.0
    validation = None if reference is not None else (has, train_labels, held_out, seed)
    uns.update(_held_out_metrics(target, label_key, predicted, proba.max(1), validation))

    if save_model is not None:
        model.save(save_model, overwrite=overwrite)
    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod, whole_mudata=True)
    target.obs[key_added] = predicted
    target.obs[f"{key_added}_confidence"] = proba.max(1)
    target.obsm[f"{key_added}_proba"] = proba
    target.uns[key_added] = uns
    logg.info(
        "    finished",
        time=start,
        deep=(
            f"added\n    '{key_added}', '{key_added}_confidence' (adata.obs)\n    '{key_added}_proba' (adata.obsm)\n"
            f"    '{key_added}' (adata.uns)" + (f"\n    model saved to {save_model}" if save_model is not None else "")
        ),
    )
    return adata if copy else None


def _training_data(
    target: Any, reference: Any, use_reps: list[str], label_key: str, mod: str | None
) -> tuple[list[np.ndarray], np.ndarray, pd.Categorical]:
    """``(training representations, mask of the training rows in their object, their labels)``."""
    query_reps = read_reps(target, use_reps)
    if reference is None:
        has, train_labels = labelled(read_labels(target, label_key), f"adata.obs[{label_key!r}]", keep_categories=True)
        return [X[has] for X in query_reps], has, train_labels
    ref = get_modality(reference, mod, whole_mudata=True)
    train_reps = read_reps(ref, use_reps)
    has, train_labels = labelled(read_labels(ref, label_key), f"reference.obs[{label_key!r}]", keep_categories=True)
    train_reps = [X[has] for X in train_reps]
    for key, Xq, Xr in zip(use_reps, query_reps, train_reps, strict=True):
        if Xq.shape[1] != Xr.shape[1]:
            msg = (
                f"`obsm[{key!r}]` has {Xq.shape[1]} dimensions in adata but {Xr.shape[1]} in the reference; "
                "embed both with the same model."
            )
            raise ValueError(msg)
    return train_reps, has, train_labels


def _held_out_metrics(
    target: Any, label_key: str, predicted: pd.Categorical, confidence: np.ndarray, validation: tuple[Any, ...] | None
) -> dict[str, Any]:
    """``metrics`` and ``metrics_on`` for cells with known truth that were not trained on (``{}`` when none).

    ``validation`` (training on ``target`` itself): ``(training mask, training labels, validation fraction,
    seed)``, which rebuild the validation split; ``None``: a reference was trained on, score the query.
    """
    from ...core.base.splits import stratified_split

    rows, on = np.array([], dtype=np.int64), ""
    if validation is None and has_labels(target, label_key):
        truth = read_labels(target, label_key)
        rows, on = np.flatnonzero(truth.notna().to_numpy()), "query"
    elif validation is not None and validation[2] > 0:
        has, train_labels, fraction, seed = validation
        truth = read_labels(target, label_key)
        _, val = stratified_split(np.asarray(train_labels.remove_unused_categories().codes), fraction, seed)
        rows, on = np.flatnonzero(has)[val], "validation"
    if not len(rows):
        return {}
    truth = truth.iloc[rows].astype(str)
    metrics = classification_scores(truth, predicted[rows])
    metrics["ece"] = expected_calibration_error(truth, predicted[rows], confidence[rows])
    return {"metrics": metrics, "metrics_on": on}
