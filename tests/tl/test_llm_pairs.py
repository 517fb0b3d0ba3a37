import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl._llm_pairs import generation_examples, perturbation_pairs


@pytest.fixture(scope="module")
def _kang():
    return sl.datasets.kang2018()


def test_perturbation_pairs_on_kang(_kang):
    adata = _kang.copy()
    before = adata.obs.copy()
    held = ["B"]
    table = perturbation_pairs(
        adata,
        condition_key="condition",
        control="control",
        cell_type_key="cell_type",
        test_size=0.1,
        held_out_cell_types=held,
        seed=0,
    )
    pd.testing.assert_frame_equal(adata.obs, before)  # read-only
    stim = adata.obs_names[adata.obs["condition"] != "control"]
    assert set(table.index) == set(stim) and list(table.columns) == [
        "control_cell",
        "cell_type",
        "perturbation",
        "split",
    ]
    ctrl_obs = adata.obs.loc[table["control_cell"]]
    assert (ctrl_obs["condition"] == "control").all()
    assert (ctrl_obs["cell_type"].astype(str).to_numpy() == table["cell_type"].to_numpy()).all()
    assert (table.loc[table["cell_type"].isin(held), "split"] == "held_out").all()
    rest = table[~table["cell_type"].isin(held)]
    assert (rest["split"] == "validation").sum() == round(0.1 * len(rest))
    assert list(table["split"].cat.categories) == ["train", "validation", "held_out"]
    again = perturbation_pairs(
        adata, condition_key="condition", control="control", cell_type_key="cell_type", held_out_cell_types=held
    )
    pd.testing.assert_frame_equal(table, again)


def test_generation_examples_split_by_cell(_kang):
    table = generation_examples(_kang, cell_type_key="cell_type", test_size=0.2, seed=3)
    assert list(table.index) == list(_kang.obs_names)
    assert (table["cell_type"].to_numpy() == _kang.obs["cell_type"].astype(str).to_numpy()).all()
    assert (table["split"] == "validation").sum() == round(0.2 * _kang.n_obs)


def test_pair_errors_name_the_fix(_kang):
    adata = _kang.copy()
    with pytest.raises(KeyError, match=r"Did not find adata.obs\['cond'\]"):
        perturbation_pairs(adata, condition_key="cond", control="control", cell_type_key="cell_type")
    with pytest.raises(ValueError, match=r"No cell has adata\.obs"):
        perturbation_pairs(adata, condition_key="condition", control="ctrl", cell_type_key="cell_type")
    one = adata[adata.obs["condition"] == "control"].copy()
    with pytest.raises(ValueError, match="Every cell is a control"):
        perturbation_pairs(one, condition_key="condition", control="control", cell_type_key="cell_type")
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.iloc[0, adata.obs.columns.get_loc("cell_type")] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        generation_examples(adata, cell_type_key="cell_type")
