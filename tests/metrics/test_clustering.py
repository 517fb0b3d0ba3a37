import numpy as np
import pytest

from sc_llm.metrics import kmeans_ari


def test_kmeans_ari_separated_and_random():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(loc=c, size=(50, 2)) for c in (0, 20, 40)])
    labels = np.repeat(["x", "y", "z"], 50)
    assert kmeans_ari(X, labels) == pytest.approx(1.0)
    assert abs(kmeans_ari(rng.normal(size=(150, 2)), labels)) < 0.1
