import numpy as np
import pytest

from sc_llm.metrics import classification_scores


def test_classification_scores_by_hand():
    y_true = ["a", "a", "b", "b", "c"]
    y_pred = ["a", "b", "b", "b", "a"]
    s = classification_scores(y_true, y_pred)
    assert s["accuracy"] == pytest.approx(3 / 5)
    # per class precision a: 1/2, b: 2/3, c: 0; recall a: 1/2, b: 1, c: 0
    assert s["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert s["recall_macro"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    f1 = [2 * p * r / (p + r) if p + r else 0 for p, r in [(1 / 2, 1 / 2), (2 / 3, 1), (0, 0)]]
    assert s["f1_macro"] == pytest.approx(np.mean(f1))
    assert s["n"] == 5


def test_classification_scores_errors():
    with pytest.raises(ValueError, match="entries"):
        classification_scores(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="No cells"):
        classification_scores([], [])
