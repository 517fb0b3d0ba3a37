"""``sl.tl.attributions``: which genes drive a text-encoder classifier's prediction (integrated gradients, LIME)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obs, check_obsm, get_modality, h5ad_params, read_params, uns_key
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._sentences import read_sentences
from ..._utils._validation import as_marker_mapping
from ...core.base.deps import import_optional

if TYPE_CHECKING:
    from anndata import AnnData

    from ...core.text.encoder import TextEncoder
    from ..annotation._scmpt_model import ScMPT

METHODS = ("integrated_gradients", "lime")
_ENCODER_KEYS = ("max_length", "pooling", "normalize", "prefix")


def resolve_classifier(classifier: Any) -> ScMPT:
    """Return an :class:`~sc_llm.tl.ScMPT` as is, or loaded from a folder written by :meth:`ScMPT.save`."""
    from ..annotation._scmpt_model import ScMPT

    if isinstance(classifier, ScMPT):
        return classifier
    if isinstance(classifier, str | Path):
        return ScMPT.load(classifier, device="cpu")
    msg = (
        f"`classifier` must be a trained `sl.tl.ScMPT` or the folder it was saved to, got {type(classifier).__name__}."
    )
    raise TypeError(msg)


def text_rep_of(adata: AnnData, classifier: ScMPT, text_rep: str | None) -> str:
    """The classifier input written by a text encoder: ``text_rep`` if given, else the one ``sl.tl.embed`` marked."""
    reps = classifier.use_reps
    if text_rep is not None:
        if text_rep not in reps:
            msg = f"`text_rep={text_rep!r}` is not an input of the classifier (its inputs: {reps})."
            raise ValueError(msg)
        return text_rep
    text = [k for k in reps if _encoder_of(read_params(adata.uns, uns_key(k))) == "text"]
    if len(text) == 1:
        return text[0]
    if not text and len(reps) == 1:
        return reps[0]
    msg = (
        f"Cannot tell which classifier input {reps} is the text embedding (found {text or 'none'} written by a "
        "text encoder with `sl.tl.embed`). Pass `text_rep=`."
    )
    raise ValueError(msg)


def _encoder_of(params: Mapping[str, Any]) -> str | None:
    """What wrote an embedding: ``params['encoder']`` (before 0.2, ``params['backend']`` held it)."""
    return params.get("encoder", params.get("backend"))


def build_encoder(model: Any, params: Mapping[str, Any], device: Any) -> TextEncoder:
    """Load the embedding's text encoder: ``model`` if given, else rebuilt from ``sl.tl.embed``'s params."""
    from ...core.text.encoder import TextEncoder, as_text_encoder
    from ...core.text.hf_loading import is_local

    if isinstance(model, TextEncoder):
        return model
    if model is None and params.get("model") is None:
        msg = "The text embedding has no recorded encoder (`.uns[...]['params']['model']`); pass `model=`."
        raise ValueError(msg)
    name = str(model if model is not None else params["model"])
    revision = params.get("revision") if model is None and not is_local(name) else None
    kwargs = {k: params[k] for k in _ENCODER_KEYS if params.get(k) is not None}
    return as_text_encoder(name, revision=revision, device=device, **kwargs)


def check_groups(labels: pd.Series, groups: Sequence[str] | None, groupby: str) -> list[str]:
    """The groups to explain (default: all with a cell, in category order), checked to have cells."""
    present = list(dict.fromkeys(labels.dropna().astype(str)))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = [str(g) for g in labels.cat.categories if str(g) in set(present)]
    names = present if groups is None else [str(g) for g in groups]
    missing = [g for g in names if g not in present]
    if missing or not names:
        msg = f"Groups {missing or names} have no cell in `adata.obs[{groupby!r}]` (groups present: {present})."
        raise ValueError(msg)
    return names


def _check_options(method: str, target: str, cell_selection: str, markers: Any, sizes: Mapping[str, int]) -> None:
    if method not in METHODS:
        msg = f"`method` must be one of {METHODS}, got {method!r}."
        raise ValueError(msg)
    if target not in ("predicted", "group"):
        msg = f"`target` must be 'predicted' or 'group', got {target!r}."
        raise ValueError(msg)
    for name, value in sizes.items():
        if int(value) < 1:
            msg = f"`{name}` must be a positive integer, got {value}."
            raise ValueError(msg)
    if cell_selection not in ("random", "confident"):
        msg = f"`cell_selection` must be 'random' or 'confident', got {cell_selection!r}."
        raise ValueError(msg)
    as_marker_mapping(markers)  # a clear error, with an example, for a list or another wrong shape


def _check_classes(names: list[str], classes: list[str], target: str, cell_selection: str) -> None:
    for option, needs in (("target", target == "group"), ("cell_selection", cell_selection == "confident")):
        if needs and (bad := [g for g in names if g not in classes]):
            value = "group" if option == "target" else "confident"
            msg = (
                f"`{option}={value!r}` needs every group to be a classifier class; {bad} are not (classes: "
                f"{classes}). Use the default or `groupby=` the classifier's labels."
            )
            raise ValueError(msg)


@doc_params()
def attributions(
    adata: AnnData,
    *,
    classifier: Any,
    groupby: str,
    method: Literal["integrated_gradients", "lime"] = "integrated_gradients",
    groups: Sequence[str] | None = None,
    model: Any = None,
    text_rep: str | None = None,
    sentence_key: str | None = None,
    n_cells: int = 10,
    top_n: int = 10,
    markers: Mapping[str, Sequence[str]] | None = None,
    target: Literal["predicted", "group"] = "predicted",
    cell_selection: Literal["random", "confident"] = "random",
    baseline: str = "unk",
    n_steps: int = 50,
    num_samples: int = 500,
    log_proba: bool = True,
    batch_size: int = 16,
    seed: int = 0,
    mod: str | None = None,
    device: str | None = None,
    progress: bool = True,
    key_added: str = "attributions",
    copy: bool = False,
) -> AnnData | None:
    """Attribute a text-encoder classifier's predictions to the genes of the cell sentences.

    The explained function is the one the classifier was trained on, rebuilt end to end: cell sentence →
    the frozen text encoder that wrote the embedding (model, context length, prefix, pooling and normalisation
    read from ``.uns`` as written by :func:`sc_llm.tl.embed`) → sentence vector → the classifier's network
    (:class:`sc_llm.tl.ScMPT`) → the logit (IG) or probability (LIME) of the explained class. Other inputs of
    a fusion classifier are held fixed at each cell's own values.

    ``'integrated_gradients'`` (captum) integrates gradients along the straight path from a baseline to the
    input token embeddings, where the baseline replaces every gene token by the ``baseline`` token; each gene
    gets the sum of its tokens' attributions, and all genes' scores add up to ``f(x) - f(baseline)``.
    ``'lime'`` perturbs the sentence by dropping random genes and fits a local linear model with the genes as
    features (seeded). Only genes inside the encoder's context are scored: the others cannot change the output.

    Per group of ``groupby``, up to ``n_cells`` cells (drawn with ``seed``, or the most confidently and correctly
    predicted ones with ``cell_selection='confident'``; all when fewer) are explained, their gene scores summed,
    and the ``top_n`` genes with positive total score kept, as in the first paper.
    Running the other method with the same ``key_added`` adds its rows beside the first.

    Parameters
    ----------
    adata
        Annotated data matrix with the cell sentences and the classifier's input representations (or a MuData,
        see ``mod``).
    classifier
        A trained :class:`sc_llm.tl.ScMPT` with a text-embedding input, or the folder it was saved to.
    groupby
        ``.obs`` column defining the groups (e.g. the cell-type labels).
    method
        ``'integrated_gradients'`` or ``'lime'``.
    groups
        Groups to explain; default all.
    model
        Text encoder to use instead of the one recorded with the embedding (hub id, folder or
        :class:`~sc_llm.tl.TextEncoder`).
    text_rep
        Which classifier input is the text embedding; default: the one written by a text encoder with
        :func:`sc_llm.tl.embed` (or the only input).
    sentence_key
        ``.obs`` column with the cell sentences; default: the one the embedding was computed from.
    n_cells
        Cells explained per group.
    top_n
        Genes kept per group.
    markers
        ``{group: [marker genes]}`` (for example an export of PanglaoDB) to flag markers among the top genes.
    target
        Class explained: the classifier's ``'predicted'`` class of each cell, or the cell's ``'group'`` (the groups
        must then be classes of the classifier).
    cell_selection
        Which cells of a group are explained: ``'random'`` (drawn with ``seed``: what the classifier does on typical
        cells of the group, including the ones it gets wrong, whose scores then explain another class with
        ``target='predicted'``) or ``'confident'``: the ``n_cells`` cells the classifier assigns to the group with the
        highest probability (predicted correctly first; probabilities from the stored embeddings), a common
        choice for class-level explanations, which then describe what the classifier learned the group looks like
        (on clear-cut cells, not on the group's borderline ones). ``'confident'`` needs the groups to be classes
        of the classifier.
    baseline
        Integrated gradients: token replacing gene tokens at the baseline, ``'unk'`` (the unknown token: no
        gene, and the smallest convergence error in our tests), ``'pad'``, ``'mask'``, or ``'zero'`` for the
        zero embedding.
    n_steps
        Integrated gradients: steps of the path integral.
    num_samples
        LIME: perturbed sentences per cell.
    log_proba
        LIME: explain the log-probability of the class rather than the probability, which saturates for
        confident predictions (removing one gene then barely moves it).
    batch_size
        Sentences (IG: path points) per forward pass.
    seed
        Seed of the cell draw and of LIME.
    mod
        Modality to use when ``adata`` is a MuData (default ``'rna'``); results go into that modality.
    device
        Torch device; ``None`` picks CUDA, then MPS, then CPU.
    progress
        Show a progress bar over cells.
    key_added
        ``.uns`` key of the results.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets, replacing earlier rows of the same ``method``:

    ``adata.uns[key_added]['top_genes']`` : :class:`pandas.DataFrame`
        ``method``, ``group``, ``gene``, ``score`` (summed over the group's cells), ``rank`` (1 = highest),
        ``is_marker`` (the gene is in ``markers[group]``).
    ``adata.uns[key_added]['marker_overlap']`` : :class:`pandas.DataFrame`
        ``method``, ``group``, ``n_cells`` explained, ``has_markers`` (the group is in ``markers``),
        ``n_markers`` among the top genes, ``markers`` (comma-separated).
    ``adata.uns[key_added]['params'][method]`` : :class:`dict`
        ``groupby``, ``n_cells``, ``top_n``, ``target``, ``cell_selection``, ``seed``, ``text_rep``,
        ``sentence_key``, the classifier's ``classes`` and ``use_reps``, the encoder settings, ``baseline`` and
        ``n_steps`` (IG; with ``max_relative_delta``, the largest ``|delta| / |f(x) - f(baseline)|`` of the cells) or
        ``num_samples`` and ``log_proba`` (LIME), and ``cells`` (``obs_names`` explained per group).
    """
    sizes = {"n_cells": n_cells, "top_n": top_n, "n_steps": n_steps, "num_samples": num_samples}
    _check_options(method, target, cell_selection, markers, {**sizes, "batch_size": batch_size})
    import_optional("captum" if method == "integrated_gradients" else "lime", "interpret")
    clf_model = resolve_classifier(classifier)
    data = get_modality(adata, mod)
    labels = check_obs(data, groupby)
    names = check_groups(labels, groups, groupby)
    _check_classes(names, clf_model.classes, target, cell_selection)
    text_rep = text_rep_of(data, clf_model, text_rep)
    emb_params = read_params(data.uns, uns_key(text_rep))
    sentence_key = sentence_key or emb_params.get("sentence_key") or "cell_sentence"
    sentences = np.asarray(read_sentences(data, sentence_key), dtype=object)
    reps = {k: check_obsm(data, k) for k in clf_model.use_reps}
    marker_sets = as_marker_mapping(markers) or {}

    from ...core.explain.groups import attribute_groups, overlap_table, pick_cells, pick_confident_cells, top_table

    clf = sentence_classifier(clf_model, build_encoder(model, emb_params, device), text_rep)
    enc = clf.encoder
    others = [reps[k] for k in clf_model.use_reps if k != text_rep]
    if cell_selection == "confident":
        proba = clf.proba_from_pooled(reps[text_rep], others)
        cells = pick_confident_cells(labels, names, int(n_cells), proba, clf_model.classes)
    else:
        cells = pick_cells(labels, names, int(n_cells), seed)
    start = logg.info(f"attributing {sum(map(len, cells.values()))} cells in {len(names)} groups with {method}")
    targets = {g: clf_model.classes.index(g) for g in names} if target == "group" else None
    found = attribute_groups(
        clf,
        sentences,
        reps[text_rep],
        others,
        cells,
        targets=targets,
        method=method,
        baseline=baseline,
        n_steps=n_steps,
        num_samples=num_samples,
        log_proba=log_proba,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    _warn_if_rebuilt_differs(found.embedding_error, text_rep)
    top = top_table(found.totals, marker_sets, int(top_n), method)
    overlap = overlap_table(top, cells, marker_sets, method)
    params = {"groupby": groupby, "n_cells": int(n_cells), "top_n": int(top_n), "target": target}
    params.update(cell_selection=cell_selection, seed=seed, text_rep=text_rep, sentence_key=sentence_key)
    params.update(_method_params(method, baseline, n_steps, num_samples, log_proba, found.relative_deltas))
    params.update(
        classes=list(clf_model.classes),
        use_reps=list(clf_model.use_reps),
        encoder={k: v for k, v in enc.params().items() if v is not None},
        cells={g: data.obs_names[r].tolist() for g, r in cells.items()},
        embedding_relative_error=found.embedding_error,
    )

    adata = adata.copy() if copy else adata
    _write(get_modality(adata, mod), key_added, method, top, overlap, params)
    logg.info("    finished", time=start, deep=f"added\n    '{key_added}', top genes per group (adata.uns)")
    return adata if copy else None


def sentence_classifier(classifier: ScMPT, enc: TextEncoder, text_rep: str) -> Any:
    """The classifier as a function of the cell sentence, checking that ``enc`` fits its text input."""
    from ...core.explain.attribution import SentenceClassifier

    text_index = classifier.use_reps.index(text_rep)
    if enc.dim != classifier.rep_dims[text_index]:
        msg = (
            f"The encoder makes {enc.dim}-dimensional vectors but the classifier's {text_rep!r} input has "
            f"{classifier.rep_dims[text_index]}; pass the `model=` used to embed it."
        )
        raise ValueError(msg)
    return SentenceClassifier(enc, classifier.module, text_index)


def _warn_if_rebuilt_differs(error: float, text_rep: str) -> None:
    if error > 1e-3:
        msg = (
            f"The rebuilt text embedding differs from `obsm[{text_rep!r}]` (relative error {error:.2g}); the "
            "attributions explain the rebuilt input. Pass the `model=`/`sentence_key=` used with `sl.tl.embed`."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)


def _method_params(
    method: str, baseline: str, n_steps: int, num_samples: int, log_proba: bool, deltas: list[float]
) -> dict[str, Any]:
    if method == "integrated_gradients":
        return {"baseline": baseline, "n_steps": int(n_steps), "max_relative_delta": float(max(deltas, default=0.0))}
    return {"num_samples": int(num_samples), "log_proba": bool(log_proba)}


def _write(data: AnnData, key_added: str, method: str, top: pd.DataFrame, overlap: pd.DataFrame, params: dict) -> None:
    """Write ``method``'s tables and parameters, replacing its earlier rows and keeping the other method's."""
    old = data.uns.get(key_added, {})
    keep = {k: v[v["method"] != method] for k, v in old.items() if k in ("top_genes", "marker_overlap")}
    data.uns[key_added] = {
        "top_genes": pd.concat([keep.get("top_genes", top.iloc[:0]), top], ignore_index=True),
        "marker_overlap": pd.concat([keep.get("marker_overlap", overlap.iloc[:0]), overlap], ignore_index=True),
        "params": {**{m: p for m, p in old.get("params", {}).items() if m != method}, method: h5ad_params(params)},
    }
