import numpy as np
import pytest

from sc_llm.core.knn import cosine_knn, vote


def brute_force(ref, qry, k):
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    q = qry / np.linalg.norm(qry, axis=1, keepdims=True)
    S = q @ r.T
    idx = np.array([sorted(range(len(r)), key=lambda j: (-S[i, j], j))[:k] for i in range(len(q))])
    return idx, np.take_along_axis(S, idx, 1)


def test_exact_matches_brute_force():
    rng = np.random.default_rng(0)
    ref, qry = rng.normal(size=(300, 8)), rng.normal(size=(50, 8))
    idx, sim = cosine_knn(ref, qry, 10, method="exact")
    ridx, rsim = brute_force(ref, qry, 10)
    assert np.array_equal(idx, ridx)
    np.testing.assert_allclose(sim, rsim, rtol=1e-5)


def test_exclude_self_is_leave_one_out():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 5))
    idx, _ = cosine_knn(X, X, 5, exclude_self=True)
    assert not (idx == np.arange(100)[:, None]).any()
    full, _ = cosine_knn(X, X, 6)
    assert np.array_equal(full[:, 0], np.arange(100)) and np.array_equal(idx, full[:, 1:])


def test_pynndescent_agrees_with_exact():
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(5, 16)) * 5
    X = np.vstack([c + rng.normal(size=(200, 16)) for c in centers]).astype(np.float32)
    exact, _ = cosine_knn(X, X, 10, exclude_self=True, method="exact")
    approx, sim = cosine_knn(X, X, 10, exclude_self=True, method="pynndescent")
    assert not (approx == np.arange(len(X))[:, None]).any()
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall > 0.9
    assert (np.diff(sim, axis=1) <= 1e-6).all()


def test_errors():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="k=3"):
        cosine_knn(X, X, 3, exclude_self=True)
    with pytest.raises(ValueError, match="method"):
        cosine_knn(X, X, 1, method="faiss")


def test_vote_majority_ties_and_padding():
    codes = np.array([[0, 1, 1, 2], [0, 0, 1, 1], [2, 2, 2, 2]])
    sims = np.array([[0.9, 0.5, 0.5, 0.1], [0.5, 0.5, 0.9, 0.9], [1, 1, 1, 1]])
    top, score = vote(codes, sims, n_classes=3, top=3)
    assert top[0].tolist() == [1, 0, 2] and score[0].tolist() == [0.5, 0.25, 0.25]
    assert top[1].tolist()[:2] == [1, 0]  # tie on votes broken by summed similarity
    assert top[2].tolist() == [2, -1, -1] and score[2].tolist() == [1.0, 0.0, 0.0]
    top, score = vote(np.array([[0, 0]]), np.ones((1, 2)), n_classes=1, top=3)
    assert top.tolist() == [[0, -1, -1]]


def test_knn_vote_is_neighbours_then_vote():
    from sc_llm.core.knn import knn_vote

    rng = np.random.default_rng(3)
    ref, qry = rng.normal(size=(80, 6)), rng.normal(size=(25, 6))
    codes = rng.integers(0, 4, 80)
    idx, sim = cosine_knn(ref, qry, 7)
    expected = vote(codes[idx], sim, 4, 3)
    got = knn_vote(ref, codes, qry, 7, 4, top=3)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
