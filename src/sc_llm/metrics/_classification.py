"""Classification scores: accuracy and macro precision/recall/F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_scores(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1, as in both papers.

    Macro averages run over the classes present in ``y_true`` or ``y_pred``; a class never predicted
    has precision 0.

    Returns
    -------
    ``{'accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'n'}``.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    if len(y_true) != len(y_pred):
        msg = f"y_true has {len(y_true)} entries but y_pred has {len(y_pred)}."
        raise ValueError(msg)
    if len(y_true) == 0:
        msg = "No cells to score."
        raise ValueError(msg)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
        "n": len(y_true),
    }
