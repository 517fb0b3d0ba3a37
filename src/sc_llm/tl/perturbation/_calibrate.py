"""Calibrating a perturbation comparison: a positive control, and every score placed between the controls.

A score alone does not say whether a method is good: a prediction of the unchanged control cells already
scores R² of means around 0.7–0.8 on Kang 2018. :func:`sc_llm.tl.compare_perturbation` therefore scores, in
every fold, next to the methods:

- the **positive control** (``'positive_control'``): a seeded half of the held-out real perturbed cells predicting
  the other half (:func:`~sc_llm.core.response_scores.split_half`), scored against that other half with the
  fold's DEGs and space: what a perfect model scores, up to the sampling noise of half as many cells;
- the **negative controls** ``'control'`` (no change) and ``'mean_shift'`` (the training types' average
  response).

Each fold's score ``s`` of a method is also reported as ``<score>_norm`` =
:func:`~sc_llm.core.response_scores.calibrate` ``(s, negative, positive)``: 0 for the negative control, 1 for
the positive one. The negative is ``'control'``; for the scores ``'control'`` leaves undefined (correlations of
deltas, which it has none of) it is ``'mean_shift'`` (``params['normalised_against']`` says which per score).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...core.response_scores import calibrate, split_half
from ...metrics._perturbation_scores import SCORE_NAMES, score_arrays

POSITIVE = "positive_control"
NEGATIVES = ("control", "mean_shift")


def positive_control_row(task, de, pca, *, space: str, context: dict[str, Any], seed: int) -> dict[str, Any]:
    """Scores of the split-half positive control in one fold (``context``: the other :func:`score_arrays` inputs)."""
    a, b = split_half(len(task.truth_X), seed)
    P, R = task.truth_X[a], task.truth_X[b]
    Ps, Rs = (P, R) if pca is None else (pca.transform(P), pca.transform(R))
    return score_arrays(P, R, task.query_X, de, Ps, Rs, space=space, seed=seed, **context)


def negative_for(per: pd.DataFrame, score: str) -> str:
    """The negative control a score is normalised against: ``'control'``, or ``'mean_shift'`` where it is undefined."""
    vals = per.loc[per["method"] == "control", score].to_numpy(dtype=float)
    return "control" if len(vals) and np.isfinite(vals).all() else "mean_shift"


def add_normalised(per: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """``per`` with a ``<score>_norm`` column per score (per fold, between its controls) and the negatives used."""
    per = per.copy()
    negatives = {s: negative_for(per, s) for s in SCORE_NAMES}
    for s, neg in negatives.items():
        by_fold = per.pivot_table(index="held_out", columns="method", values=s, aggfunc="first", dropna=False)
        lo = per["held_out"].map(by_fold[neg]) if neg in by_fold else np.nan
        hi = per["held_out"].map(by_fold[POSITIVE]) if POSITIVE in by_fold else np.nan
        per[f"{s}_norm"] = [calibrate(v, n, p) for v, n, p in zip(per[s], lo, hi, strict=True)]
    return per, negatives


def calibrated_table(per: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Mean over held-out types of every normalised score, one row per method (controls included)."""
    grouped = per.groupby("method", sort=False)
    table = pd.DataFrame(index=pd.Index(methods, name="method"))
    for s in SCORE_NAMES:
        table[s] = grouped[f"{s}_norm"].mean()
    return table
