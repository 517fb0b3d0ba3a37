"""Gene attributions summarised per group of cells (no AnnData here): choose the cells, explain them, rank genes.

:func:`attribute_groups` is the kernel behind :func:`sc_llm.tl.attributions`: for each group it explains the chosen
cells with integrated gradients or LIME (:mod:`sc_llm.core.explain.attribution`) and sums every in-context gene's
scores;
:func:`top_table` and :func:`overlap_table` turn the sums into the tables the tool writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..text.gene_tokens import gene_token_spans
from .attribution import SentenceClassifier, integrated_gradients, lime_gene_scores


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


@dataclass
class GroupAttributions:
    """What :func:`attribute_groups` found: summed gene scores per group, and how faithful the run was."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    relative_deltas: list[float] = field(default_factory=list)  # IG: |delta| / |f(x) - f(baseline)| per cell
    embedding_error: float = 0.0  # largest relative error of the rebuilt text embedding vs the stored one


def attribute_groups(
    clf: SentenceClassifier,
    sentences: np.ndarray,
    text: np.ndarray,
    others: Sequence[np.ndarray],
    cells: Mapping[str, np.ndarray],
    *,
    targets: Mapping[str, int] | None,
    method: str,
    baseline: str = "unk",
    n_steps: int = 50,
    num_samples: int = 500,
    log_proba: bool = True,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> GroupAttributions:
    """Explain the ``cells`` of every group and sum each gene's scores over them.

    Parameters
    ----------
    clf
        The sentence classifier to explain.
    sentences
        Cell sentences of all cells.
    text
        The stored text embedding of all cells (checked against the one rebuilt from the sentences).
    others
        The classifier's other inputs, all cells, in order.
    cells
        Row indices explained per group.
    targets
        Class explained per group (``target='group'``), or ``None`` for each cell's predicted class.
    method, baseline, n_steps, num_samples, log_proba, batch_size, seed, progress
        As in :func:`sc_llm.tl.attributions`.
    """
    from tqdm.auto import tqdm

    out = GroupAttributions()
    enc = clf.encoder
    with tqdm(total=sum(map(len, cells.values())), disable=not progress, desc=method, unit="cell") as bar:
        for group, rows in cells.items():
            fixed = [X[rows] for X in others]
            sents = list(sentences[rows])
            rebuilt = enc.encode(sents, batch_size=batch_size, progress=False)[0]
            stored = text[rows]
            error = float(np.linalg.norm(rebuilt - stored) / max(np.linalg.norm(stored), 1e-12))
            out.embedding_error = max(out.embedding_error, error)
            proba = clf.proba_from_pooled(rebuilt, fixed)
            tgt = proba.argmax(1) if targets is None else np.full(len(rows), targets[group])
            _, spans = gene_token_spans(enc.genes, sents)
            in_context = [enc.genes.leading_words(s)[0][: len(sp)] for s, sp in zip(sents, spans, strict=True)]
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
                out.relative_deltas.extend((np.abs(delta) / np.maximum(np.abs(gap), 1e-12)).tolist())
                bar.update(len(rows))
            else:
                scores = []
                for i, words in enumerate(in_context):
                    fixed_i = [x[i] for x in fixed]
                    scores.append(
                        lime_gene_scores(
                            clf,
                            words,
                            int(tgt[i]),
                            fixed_rep=fixed_i,
                            num_samples=num_samples,
                            seed=seed + i,
                            batch_size=batch_size,
                            log_proba=log_proba,
                        )
                    )
                    bar.update(1)
            sums = out.totals.setdefault(group, {})
            for words, sc in zip(in_context, scores, strict=True):
                for w, s in zip(words, sc, strict=True):
                    sums[w] = sums.get(w, 0.0) + float(s)
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
