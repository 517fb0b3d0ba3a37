import numpy as np
import pytest

from sc_llm.core.llm.pairs import pair_with_controls, pair_within_controls, split_cells


def test_controls_are_of_the_same_type_without_replacement_while_they_last():
    types = np.array(["A"] * 10 + ["B"] * 6)
    ctrl = np.array([True] * 6 + [False] * 4 + [True] * 2 + [False] * 4)
    perturbed, control = pair_with_controls(types, ctrl, seed=0)
    assert perturbed.tolist() == [6, 7, 8, 9, 12, 13, 14, 15]
    assert (types[control] == types[perturbed]).all() and ctrl[control].all()
    a = control[types[perturbed] == "A"]
    assert len(set(a.tolist())) == 4  # 6 controls for 4 cells: all distinct
    b = control[types[perturbed] == "B"]
    assert set(b.tolist()) <= {10, 11}  # 2 controls for 4 cells: drawn with replacement
    again = pair_with_controls(types, ctrl, seed=0)
    other = pair_with_controls(types, ctrl, seed=1)
    assert (again[1] == control).all() and not (other[1] == control).all()


def test_types_without_controls_raise_or_drop():
    types = np.array(["A", "A", "B", "B"])
    ctrl = np.array([True, False, False, False])
    with pytest.raises(ValueError, match=r"\['B'\] have perturbed cells but no control"):
        pair_with_controls(types, ctrl)
    perturbed, control = pair_with_controls(types, ctrl, missing="drop")
    assert perturbed.tolist() == [1] and control.tolist() == [0]
    with pytest.raises(ValueError, match="equal length"):
        pair_with_controls(types, ctrl[:3])


def test_split_by_cell_with_held_out_types():
    types = np.array(["A"] * 50 + ["B"] * 30 + ["C"] * 20)
    split = split_cells(100, test_size=0.2, seed=0, cell_types=types, held_out_types=["C"])
    assert (split[types == "C"] == "held_out").all()
    assert (split[types != "C"] != "held_out").all()
    assert (split == "validation").sum() == 16  # 20% of the 80 cells not held out
    assert (split_cells(100, test_size=0.2, seed=0, cell_types=types, held_out_types=["C"]) == split).all()
    assert not (split_cells(100, test_size=0.2, seed=1, cell_types=types, held_out_types=["C"]) == split).all()
    assert (split_cells(5, test_size=0.0) == "train").all()
    assert (split_cells(5, test_size=0.01) == "validation").sum() == 1


def test_split_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"test_size must be in \[0, 1\)"):
        split_cells(10, test_size=1.0)
    with pytest.raises(ValueError, match="not among the cell types"):
        split_cells(3, cell_types=["A", "A", "B"], held_out_types=["Z"])
    with pytest.raises(ValueError, match="No training cells left"):
        split_cells(2, cell_types=["B", "B"], held_out_types=["B"])


def test_controls_paired_within_their_type_never_with_themselves():
    types = np.array(["a", "a", "b", "a", "b", "c", "a", "c", "d"])
    ctrl = np.array([True, True, True, True, True, False, True, True, True])
    target, prompt = pair_within_controls(types, ctrl, seed=0)
    assert list(target) == [0, 1, 2, 3, 4, 6, 7, 8]  # every control once, in input order; no perturbed cell
    assert (types[prompt] == types[target]).all() and ctrl[prompt].all()
    alone = np.isin(target, [7, 8])  # the only controls of types 'c' and 'd' can only be paired with themselves
    assert (prompt[~alone] != target[~alone]).all() and prompt[alone].tolist() == [7, 8]
    a = target[types[target] == "a"]
    assert sorted(prompt[types[target] == "a"]) == sorted(a)  # each control of 'a' is a prompt exactly once
    assert np.array_equal(pair_within_controls(types, ctrl, seed=0)[1], prompt)
    others = [pair_within_controls(types, ctrl, seed=s)[1] for s in range(1, 6)]
    assert any(not np.array_equal(o, prompt) for o in others)
    with pytest.raises(ValueError, match="equal length"):
        pair_within_controls(types, ctrl[:3])
