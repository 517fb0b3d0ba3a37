"""sc_llm.core.sentences.relative: a predicted cell is its control cell plus the change its sentence writes."""

import numpy as np
import pytest

from sc_llm.core.sentences.relative import absent_shift, relative_decode


def _line(ranks, columns):
    return 5.0 - 2.0 * np.log10(np.asarray(ranks, dtype=float))  # the same for every gene


def test_the_control_cells_own_sentence_changes_nothing():
    rng = np.random.default_rng(0)
    X = np.where(rng.random((4, 12)) < 0.6, rng.integers(1, 9, (4, 12)), 0).astype(np.float32)
    own = [np.argsort(-x, kind="stable")[: min(3, int((x > 0).sum()))] for x in X]
    np.testing.assert_allclose(relative_decode(X, own, _line, 3), X)


def test_genes_move_by_the_decoded_rank_change_and_the_rest_keep_their_values():
    x = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 0.0]], dtype=np.float32)  # ranks 1..5; gene 5 not expressed
    out = relative_decode(x, [np.array([3, 0, 5])], _line, 2)[0]
    # head: generated 3, 0, 5 then the control's top-2 genes it left out (gene 1): ranks 1, 2, 3, 4
    assert out[3] == pytest.approx(3.0 + _line(1, 0) - _line(4, 0))
    assert out[0] == pytest.approx(6.0 + _line(2, 0) - _line(1, 0))
    assert out[5] == pytest.approx(_line(3, 0))  # newly expressed: the decoder's value at its new rank
    assert out[1] == pytest.approx(5.0 + _line(4, 0) - _line(2, 0))
    assert out[2] == 4.0 and out[4] == 2.0  # outside the head: unchanged
    shifted = relative_decode(x, [np.array([3, 0, 5])], _line, 2, outside_shift=np.full(6, -3.0))[0]
    assert shifted[2] == pytest.approx(1.0) and shifted[4] == 0.0 and shifted[3] == pytest.approx(out[3])


def test_errors():
    x = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="2 control cells"):
        relative_decode(x, [np.array([0])], _line, 1)
    with pytest.raises(ValueError, match="one value per gene"):
        relative_decode(x, [np.array([0])] * 2, _line, 1, outside_shift=np.zeros(2))


def test_absent_shift_is_perturbed_minus_control_absent_values():
    # gene 2 is never in the 1-gene sentences: its absent value is its mean, 3 in perturbed vs 1 in control cells
    X = np.array([[5, 0, 3], [5, 0, 3], [4, 2, 1], [4, 2, 1]], dtype=np.float32)
    indptr = np.array([0, 1, 2, 3, 4])
    genes, ranks = np.zeros(4, dtype=np.int64), np.ones(4, dtype=np.int64)
    shift = absent_shift(indptr, ranks, genes, X[:, 0].astype(float), X, np.array([0, 1]), np.array([2, 3]), 1)
    assert shift[2] == pytest.approx(2.0) and shift[1] == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="Both conditions"):
        absent_shift(indptr, ranks, genes, X[:, 0].astype(float), X, np.array([0]), np.array([], dtype=int), 1)
