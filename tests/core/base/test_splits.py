import numpy as np
import pytest

from sc_llm.core.base.splits import fold_assignments, split_cells, stratified_split, validation_split


def test_split_cells_is_seeded_sorted_and_complete():
    train, test = split_cells(50, 0.2, 3)
    assert len(test) == 10 and np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert sorted([*train, *test]) == list(range(50))
    np.testing.assert_array_equal(test, split_cells(50, 0.2, 3)[1])
    assert not np.array_equal(test, split_cells(50, 0.2, 4)[1])
    with pytest.raises(ValueError, match="Cannot hold out"):
        split_cells(1, 0.5, 0)


def test_stratified_split_and_folds_keep_every_class_on_both_sides():
    codes = np.repeat([0, 1, 2], [10, 4, 2])
    train, held = stratified_split(codes, 0.25, 0)
    for c in range(3):
        assert (codes[train] == c).any() and (codes[held] == c).any()
    folds = fold_assignments(codes, 3, 0)
    assert set(folds) == {0, 1, 2} and np.array_equal(folds, fold_assignments(codes, 3, 0))


def test_validation_split_keeps_the_shuffled_order_and_allows_none():
    train, val = validation_split(10, 0.3, 0)
    order = np.random.default_rng(0).permutation(10)
    np.testing.assert_array_equal(val, order[:3])
    np.testing.assert_array_equal(train, order[3:])
    assert len(validation_split(1, 0.5, 0)[1]) == 0 and len(validation_split(10, 0.0, 0)[1]) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        validation_split(10, 1.0, 0)
