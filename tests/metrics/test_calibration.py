from __future__ import annotations

import numpy as np
import pytest

from sc_llm.metrics import expected_calibration_error


def ece_by_loops(y_true, y_pred, conf, n_bins=15):
    """Independent computation: explicit bins (lo, hi], mean accuracy and confidence per bin."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = [i for i in range(len(conf)) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if in_bin:
            acc = np.mean([y_true[i] == y_pred[i] for i in in_bin])
            mean_conf = np.mean([conf[i] for i in in_bin])
            total += len(in_bin) / len(conf) * abs(acc - mean_conf)
    return total


def test_ece_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4) * 0.5, 400)
    y_true = rng.integers(0, 4, 400)
    y_pred, conf = proba.argmax(1), proba.max(1)
    expected = ece_by_loops(y_true, y_pred, conf)
    assert expected_calibration_error(y_true, y_pred, conf) == pytest.approx(expected, abs=1e-12)
    assert expected_calibration_error(y_true, y_pred, conf, n_bins=5) == pytest.approx(
        ece_by_loops(y_true, y_pred, conf, 5), abs=1e-12
    )


def test_ece_by_hand_and_edge_cases():
    # 2 cells at 0.9 (1 right): |0.5 - 0.9| * 2/4; 2 cells at 0.6 (both right): |1 - 0.6| * 2/4
    assert expected_calibration_error(list("aabb"), list("abbb"), [0.9, 0.9, 0.6, 0.6]) == pytest.approx(0.4)
    assert expected_calibration_error(["x"] * 3, ["x"] * 3, [1.0, 1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="confidences"):
        expected_calibration_error(["a"], ["a"], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error(["a"], ["a"], [1.5])
