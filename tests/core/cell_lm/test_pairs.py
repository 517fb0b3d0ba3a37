import numpy as np
import pytest

from sc_llm.core.cell_lm.pairs import pair_with_controls, pair_within_controls


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
