"""sc_llm.core.response_scores: DEG weights, weighted scores, rank scores, discrimination, calibration."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from sc_llm.core import response_scores as RS


def test_deg_weights_are_squared_min_max_scaled_scores():
    w = RS.deg_weights(np.array([-4.0, 2.0, 0.0, 1.0]))
    np.testing.assert_allclose(w, [1.0, 0.25, 0.0, 1 / 16])
    np.testing.assert_allclose(RS.deg_weights(np.zeros(3)), 1.0)
    np.testing.assert_allclose(RS.deg_weights(np.array([np.nan, 2.0, 1.0])), [0.0, 1.0, 0.25])


def test_weighted_mse_and_r2_match_their_definitions():
    rng = np.random.default_rng(0)
    pred, real, ref, w = rng.normal(size=(4, 30))
    w = np.abs(w)
    assert RS.weighted_mse(pred, real, w) == pytest.approx(np.sum(w * (pred - real) ** 2) / w.sum())
    assert RS.weighted_r2_delta(pred, real, ref, w) == pytest.approx(r2_score(real - ref, pred - ref, sample_weight=w))
    assert RS.weighted_r2_delta(real, real, ref, w) == pytest.approx(1.0)
    assert RS.weighted_r2_delta(ref, real, ref, w) < 0  # no delta: below 0, never flattering
    assert np.isnan(RS.weighted_mse(pred, real, np.zeros(30)))
    with pytest.raises(ValueError, match="different lengths"):
        RS.weighted_mse(pred, real[:5], w)


def test_spearman_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 40))
    b[:5] = b[5]  # ties
    assert RS.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert np.isnan(RS.spearman(np.ones(5), a[:5]))


def test_de_overlap_counts_the_degs_among_the_most_changed_genes():
    ctrl = np.zeros(10)
    pred = np.array([5.0, 4.0, 0, 0, 3.0, 0, 0, 0, 0, -2.0])  # changes genes 0, 1, 4, 9 (most: 0, 1, 4)
    assert RS.de_overlap(pred, ctrl, np.array([0, 4, 7])) == pytest.approx(2 / 3)
    assert RS.de_overlap(ctrl, ctrl, np.array([0, 1])) == 0.0  # no change, no DEGs
    with pytest.raises(ValueError, match="column indices"):
        RS.de_overlap(pred, ctrl, np.array([12]))


def test_discrimination_score_is_one_minus_the_share_of_closer_groups():
    effects = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    assert RS.discrimination_score(np.array([0.9, 0.1]), effects, 0) == 1.0
    assert RS.discrimination_score(np.array([0.9, 0.1]), effects, 2) == pytest.approx(1 - 2 / 3)
    assert RS.discrimination_score(np.array([0.5, 0.5]), effects, 1, metric="l2") == 1.0  # a tie counts for it
    with pytest.raises(ValueError, match="'l1' or 'l2'"):
        RS.discrimination_score(np.zeros(2), effects, 0, metric="cosine")
    with pytest.raises(ValueError, match="row index"):
        RS.discrimination_score(np.zeros(2), effects, 3)


def test_split_half_and_calibrate():
    a, b = RS.split_half(9, seed=0)
    assert len(a) == 4 and len(b) == 5 and not set(a) & set(b) and set(a) | set(b) == set(range(9))
    assert list(RS.split_half(9, seed=0)[0]) == list(a)
    with pytest.raises(ValueError, match="at least 4"):
        RS.split_half(3, seed=0)
    assert RS.calibrate(0.8, 0.6, 1.0) == pytest.approx(0.5)
    assert RS.calibrate(2.0, 4.0, 0.0) == pytest.approx(0.5)  # lower is better: the same formula
    assert np.isnan(RS.calibrate(1.0, np.nan, 2.0)) and np.isnan(RS.calibrate(1.0, 2.0, 2.0))
