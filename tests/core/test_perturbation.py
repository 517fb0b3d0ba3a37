"""Perturbation baselines as arithmetic."""

import numpy as np
import pytest

from sc_llm.core.perturbation import mean_shift_vector, predict_control, predict_mean_shift, predict_pca_shift


def test_mean_shift_vector_averages_cell_types_equally():
    ctrl = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]])
    pert = np.array([[1.0, 0.0], [12.0, 10.0], [12.0, 10.0], [12.0, 10.0]])
    cg, pg = np.array(["a", "a", "b"]), np.array(["a", "b", "b", "b"])
    np.testing.assert_allclose(mean_shift_vector(ctrl, pert, cg, pg), [(1 + 2) / 2, 0.0])
    np.testing.assert_allclose(mean_shift_vector(ctrl, pert), pert.mean(0) - ctrl.mean(0))
    with pytest.raises(ValueError, match="No group"):
        mean_shift_vector(ctrl, pert, np.array(["x", "x", "x"]), pg)


def test_mean_shift_adds_and_clips():
    q = np.array([[1.0, 0.2]])
    np.testing.assert_allclose(predict_mean_shift(q, np.array([0.5, -1.0])), [[1.5, 0.0]])
    np.testing.assert_allclose(predict_control(q), q, rtol=1e-6)
    with pytest.raises(ValueError, match="genes"):
        predict_mean_shift(q, np.zeros(3))


def test_pca_shift_with_all_components_is_the_mean_shift():
    rng = np.random.default_rng(0)
    ctrl = rng.normal(5.0, 1.0, size=(12, 6))
    pert = rng.normal(6.0, 1.0, size=(10, 6))
    query = ctrl[:4]  # inside the span of the training cells, so the PCA reconstructs it exactly
    out = predict_pca_shift(ctrl, pert, query, n_comps=6)
    np.testing.assert_allclose(out, predict_mean_shift(query, mean_shift_vector(ctrl, pert)), atol=1e-4)


def test_pca_shift_loses_what_few_components_miss():
    rng = np.random.default_rng(1)
    ctrl, pert = rng.normal(5.0, 1.0, size=(30, 20)), rng.normal(6.0, 1.0, size=(30, 20))
    full = predict_mean_shift(ctrl[:5], mean_shift_vector(ctrl, pert))
    low = predict_pca_shift(ctrl, pert, ctrl[:5], n_comps=2, seed=0)
    assert low.shape == full.shape and not np.allclose(low, full, atol=1e-2)
