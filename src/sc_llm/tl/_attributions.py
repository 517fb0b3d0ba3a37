"""``sl.tl.attributions``: which genes drive a text-encoder classifier's prediction (integrated gradients, LIME)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._utils._anndata import check_obs, check_obsm, uns_key
from .._utils._deps import import_optional
from .._utils._logging import logg

if TYPE_CHECKING:
    from anndata import AnnData

    from ..core.text_encoder import TextEncoder
    from ._scmpt_model import ScMPT

METHODS = ("integrated_gradients", "lime")
_ENCODER_KEYS = ("max_length", "pooling", "normalize", "prefix")


def resolve_model(model: Any) -> ScMPT:
    """Return an :class:`~sc_llm.tl.ScMPT` as is, or loaded from a folder written by :meth:`ScMPT.save`."""
    from ._scmpt_model import ScMPT

    if isinstance(model, ScMPT):
        return model
    if isinstance(model, str | Path):
        return ScMPT.load(model, device="cpu")
    msg = f"`model` must be a trained `sl.tl.ScMPT` or the folder it was saved to, got {type(model).__name__}."
    raise TypeError(msg)


def text_rep_of(adata: AnnData, model: ScMPT, text_rep: str | None) -> str:
    """Find the model input written by a text encoder: ``text_rep`` if given, else the one ``sl.tl.embed`` marked."""
    if text_rep is not None:
        if text_rep not in model.use_reps:
            msg = f"`text_rep={text_rep!r}` is not an input of the model (its inputs: {model.use_reps})."
            raise ValueError(msg)
        return text_rep
    text = [k for k in model.use_reps if adata.uns.get(uns_key(k), {}).get("params", {}).get("encoder") == "text"]
    if len(text) == 1:
        return text[0]
    if not text and len(model.use_reps) == 1:
        return model.use_reps[0]
    msg = (
        f"Cannot tell which model input {model.use_reps} is the text embedding (found {text or 'none'} written by a "
        "text encoder with `sl.tl.embed`). Pass `text_rep=`."
    )
    raise ValueError(msg)


def build_encoder(encoder: Any, params: Mapping[str, Any], device: Any) -> TextEncoder:
    """Load the embedding's text encoder: ``encoder`` if given, else rebuilt from ``sl.tl.embed``'s params."""
    from ..core.hf_loading import is_local
    from ..core.text_encoder import TextEncoder

    if isinstance(encoder, TextEncoder):
        return encoder
    if encoder is None and "model" not in params:
        msg = "The text embedding has no recorded encoder (`.uns[...]['params']['model']`); pass `encoder=`."
        raise ValueError(msg)
    model = str(encoder if encoder is not None else params["model"])
    revision = params.get("revision") if encoder is None and not is_local(model) else None
    kwargs = {k: params[k] for k in _ENCODER_KEYS if params.get(k) is not None}
    return TextEncoder(model, revision=revision, device=device, **kwargs)


def pick_cells(groups: pd.Series, names: Sequence[str], n_cells: int, seed: int) -> dict[str, np.ndarray]:
    """Up to ``n_cells`` row indices per group, drawn without replacement (all when fewer), sorted."""
    rng = np.random.default_rng(seed)
    values = groups.astype(str).to_numpy()
    out = {}
    for g in names:
        rows = np.flatnonzero((values == g) & groups.notna().to_numpy())
        out[g] = np.sort(rng.choice(rows, n_cells, replace=False)) if len(rows) > n_cells else rows
    return out


def pick_confident_cells(
    groups: pd.Series, names: Sequence[str], n_cells: int, proba: np.ndarray, classes: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per group, the ``n_cells`` cells the model predicts as the group most confidently, sorted.

    Cells are ranked first by whether the model's predicted class is the group, then by the group's
    probability (ties by position), so misclassified cells are used only when too few are predicted right.
    ``proba`` is ``(n_obs, n_classes)``; every group must be one of ``classes``.
    """
    values = groups.astype(str).to_numpy()
    predicted = np.asarray(proba).argmax(1)
    out = {}
    for g in names:
        c = list(classes).index(g)
        rows = np.flatnonzero((values == g) & groups.notna().to_numpy())
        order = np.lexsort((rows, -proba[rows, c], predicted[rows] != c))
        out[g] = np.sort(rows[order[:n_cells]])
    return out


def top_table(
    totals: Mapping[str, Mapping[str, float]], markers: Mapping[str, set[str]], top_n: int, method: str
) -> pd.DataFrame:
    """Tidy top-``top_n`` positively attributed genes per group."""
    rows = []
    for group, scores in totals.items():
        ranked = sorted(((s, g) for g, s in scores.items() if s > 0), key=lambda t: (-t[0], t[1]))[:top_n]
        for rank, (score, gene) in enumerate(ranked, start=1):
            rows.append((method, group, gene, float(score), rank, gene in markers.get(group, set())))
    return pd.DataFrame(rows, columns=["method", "group", "gene", "score", "rank", "is_marker"])


def overlap_table(
    top: pd.DataFrame, cells: Mapping[str, np.ndarray], markers: Mapping[str, set[str]], method: str
) -> pd.DataFrame:
    """Per group: cells explained and the group's markers found among its top genes."""
    rows = []
    for group, idx in cells.items():
        hit = top.loc[(top["group"] == group) & top["is_marker"], "gene"].tolist()
        rows.append((method, group, len(idx), group in markers, len(hit), ",".join(hit)))
    return pd.DataFrame(rows, columns=["method", "group", "n_cells", "has_markers", "n_markers", "markers"])


def attributions(
    adata: AnnData,
    *,
    model: Any,
    groupby: str,
    method: Literal["integrated_gradients", "lime"] = "integrated_gradients",
    groups: Sequence[str] | None = None,
    encoder: Any = None,
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
    a fusion model are held fixed at each cell's own values.

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
        Annotated data matrix with the cell sentences and the model's input representations.
    model
        A trained :class:`sc_llm.tl.ScMPT` with a text-embedding input, or the folder it was saved to.
    groupby
        ``.obs`` column defining the groups (e.g. the cell-type labels).
    method
        ``'integrated_gradients'`` or ``'lime'``.
    groups
        Groups to explain; default all.
    encoder
        Text encoder to use instead of the one recorded with the embedding (hub id, folder or
        :class:`~sc_llm.core.text_encoder.TextEncoder`).
    text_rep
        Which model input is the text embedding; default: the one written by a text encoder with
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
        Class explained: the model's ``'predicted'`` class of each cell, or the cell's ``'group'`` (the groups
        must then be classes of the model).
    cell_selection
        Which cells of a group are explained: ``'random'`` (drawn with ``seed``: what the model does on typical
        cells of the group, including the ones it gets wrong, whose scores then explain another class with
        ``target='predicted'``) or ``'confident'``: the ``n_cells`` cells the model assigns to the group with the
        highest probability (predicted correctly first; probabilities from the stored embeddings), a common
        choice for class-level explanations, which then describe what the model learned the group looks like
        (on clear-cut cells, not on the group's borderline ones). ``'confident'`` needs the groups to be classes
        of the model.
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
    device
        Torch device; ``None`` picks CUDA, then MPS, then CPU.
    progress
        Show a progress bar over cells.
    key_added
        ``.uns`` key of the results.
    copy
        Return a copy instead of writing to ``adata``.

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
        ``sentence_key``, the model's ``classes`` and ``use_reps``, the encoder settings, ``baseline`` and
        ``n_steps`` (IG; with ``max_relative_delta``, the largest ``|delta| / |f(x) - f(baseline)|`` of the cells) or
        ``num_samples`` and ``log_proba`` (LIME), and ``cells`` (``obs_names`` explained per group).
    """
    if method not in METHODS:
        msg = f"`method` must be one of {METHODS}, got {method!r}."
        raise ValueError(msg)
    if target not in ("predicted", "group"):
        msg = f"`target` must be 'predicted' or 'group', got {target!r}."
        raise ValueError(msg)
    for name, value in (
        ("n_cells", n_cells),
        ("top_n", top_n),
        ("n_steps", n_steps),
        ("num_samples", num_samples),
        ("batch_size", batch_size),
    ):
        if int(value) < 1:
            msg = f"`{name}` must be a positive integer, got {value}."
            raise ValueError(msg)
    import_optional("captum" if method == "integrated_gradients" else "lime", "interpret")
    model = resolve_model(model)
    labels = check_obs(adata, groupby)
    as_str = labels.dropna().astype(str)
    present = list(dict.fromkeys(as_str))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = [str(g) for g in labels.cat.categories if str(g) in set(present)]
    names = present if groups is None else [str(g) for g in groups]
    missing = [g for g in names if g not in present]
    if missing or not names:
        msg = f"Groups {missing or names} have no cell in `adata.obs[{groupby!r}]` (groups present: {present})."
        raise ValueError(msg)
    if cell_selection not in ("random", "confident"):
        msg = f"`cell_selection` must be 'random' or 'confident', got {cell_selection!r}."
        raise ValueError(msg)
    for option, needs in (("target", target == "group"), ("cell_selection", cell_selection == "confident")):
        if needs and (bad := [g for g in names if g not in model.classes]):
            value = "group" if option == "target" else "confident"
            msg = (
                f"`{option}={value!r}` needs every group to be a model class; {bad} are not (classes: "
                f"{model.classes}). Use the default or `groupby=` the model's labels."
            )
            raise ValueError(msg)
    text_rep = text_rep_of(adata, model, text_rep)
    emb_params = adata.uns.get(uns_key(text_rep), {}).get("params", {})
    sentence_key = sentence_key or emb_params.get("sentence_key", "cell_sentence")
    sentences = check_obs(adata, sentence_key).fillna("").astype(str).to_numpy()
    reps = {k: check_obsm(adata, k) for k in model.use_reps}
    marker_sets = {str(g): {str(m) for m in genes} for g, genes in (markers or {}).items()}
    if markers is not None and not isinstance(markers, Mapping):
        msg = "`markers` must be a mapping {group: [genes]}."
        raise TypeError(msg)

    from ..core.ablation import gene_token_spans
    from ..core.attribution import SentenceClassifier, integrated_gradients, lime_gene_scores

    enc = build_encoder(encoder, emb_params, device)
    text_index = model.use_reps.index(text_rep)
    if enc.dim != model.rep_dims[text_index]:
        msg = (
            f"The encoder makes {enc.dim}-dimensional vectors but the model's {text_rep!r} input has "
            f"{model.rep_dims[text_index]}; pass the `encoder=` used to embed it."
        )
        raise ValueError(msg)
    clf = SentenceClassifier(enc, model.module, text_index)
    others = [k for k in model.use_reps if k != text_rep]
    if cell_selection == "confident":
        proba = clf.proba_from_pooled(reps[text_rep], [reps[k] for k in others])
        cells = pick_confident_cells(labels, names, int(n_cells), proba, model.classes)
    else:
        cells = pick_cells(labels, names, int(n_cells), seed)
    start = logg.info(f"attributing {sum(map(len, cells.values()))} cells in {len(names)} groups with {method}")

    from tqdm.auto import tqdm

    totals: dict[str, dict[str, float]] = {}
    rel_delta: list[float] = []
    mismatch = 0.0
    with tqdm(total=sum(map(len, cells.values())), disable=not progress, desc=method, unit="cell") as bar:
        for group, rows in cells.items():
            fixed = [reps[k][rows] for k in others]
            sents = list(sentences[rows])
            rebuilt = enc.encode(sents, batch_size=batch_size, progress=False)[0]
            stored = reps[text_rep][rows]
            mismatch = max(mismatch, float(np.linalg.norm(rebuilt - stored) / max(np.linalg.norm(stored), 1e-12)))
            proba = clf.proba_from_pooled(rebuilt, fixed)
            tgt = proba.argmax(1) if target == "predicted" else np.full(len(rows), model.classes.index(group))
            _, spans = gene_token_spans(enc.genes, sents)
            in_context = [enc.genes.leading_words(s)[0][: len(sp)] for s, sp in zip(sents, spans, strict=True)]
            sums = totals.setdefault(group, {})
            if method == "integrated_gradients":
                scores, delta, gap = integrated_gradients(
                    clf,
                    sents,
                    tgt.tolist(),
                    fixed_reps=fixed,
                    baseline=baseline,
                    n_steps=n_steps,
                    internal_batch_size=batch_size,
                )
                rel_delta.extend((np.abs(delta) / np.maximum(np.abs(gap), 1e-12)).tolist())
                bar.update(len(rows))
            else:
                scores = []
                for i, words in enumerate(in_context):
                    scores.append(
                        lime_gene_scores(
                            clf,
                            words,
                            int(tgt[i]),
                            fixed_rep=[x[i] for x in fixed],
                            num_samples=num_samples,
                            seed=seed + i,
                            batch_size=batch_size,
                            log_proba=log_proba,
                        )
                    )
                    bar.update(1)
            for words, sc in zip(in_context, scores, strict=True):
                for w, s in zip(words, sc, strict=True):
                    sums[w] = sums.get(w, 0.0) + float(s)
    if mismatch > 1e-3:
        warnings.warn(
            f"The rebuilt text embedding differs from `obsm[{text_rep!r}]` (relative error {mismatch:.2g}); the "
            "attributions explain the rebuilt input. Pass the `encoder=`/`sentence_key=` used with `sl.tl.embed`.",
            UserWarning,
            stacklevel=2,
        )

    top = top_table(totals, marker_sets, int(top_n), method)
    overlap = overlap_table(top, cells, marker_sets, method)
    params = {
        "groupby": groupby,
        "n_cells": int(n_cells),
        "top_n": int(top_n),
        "target": target,
        "cell_selection": cell_selection,
        "seed": seed,
        "text_rep": text_rep,
        "sentence_key": sentence_key,
        "classes": list(model.classes),
        "use_reps": list(model.use_reps),
        "encoder": {k: v for k, v in enc.params().items() if v is not None},
        "cells": {g: adata.obs_names[r].tolist() for g, r in cells.items()},
        "embedding_relative_error": mismatch,
    }
    if method == "integrated_gradients":
        params.update(baseline=baseline, n_steps=int(n_steps), max_relative_delta=float(max(rel_delta, default=0.0)))
    else:
        params.update(num_samples=int(num_samples), log_proba=bool(log_proba))

    adata = adata.copy() if copy else adata
    old = adata.uns.get(key_added, {})
    keep = {k: v[v["method"] != method] for k, v in old.items() if k in ("top_genes", "marker_overlap")}
    adata.uns[key_added] = {
        "top_genes": pd.concat([keep.get("top_genes", top.iloc[:0]), top], ignore_index=True),
        "marker_overlap": pd.concat([keep.get("marker_overlap", overlap.iloc[:0]), overlap], ignore_index=True),
        "params": {**{m: p for m, p in old.get("params", {}).items() if m != method}, method: params},
    }
    logg.info("    finished", time=start, deep=f"added\n    '{key_added}', top genes per group (adata.uns)")
    return adata if copy else None
