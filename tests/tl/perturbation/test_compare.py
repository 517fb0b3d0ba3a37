"""sl.tl.compare_perturbation: leave-one-cell-type-out table, h5ad-safe, clear errors."""

import numpy as np
import pytest

import sc_llm as sl
from sc_llm.metrics._perturbation_scores import SCORE_NAMES

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}


@pytest.fixture(scope="module")
def _small():
    a = sl.datasets.kang2018()
    a = a[a.obs["cell_type"].isin(["B", "CD8T", "NK"])]
    return a[:, np.argsort(-a.X.getnnz(axis=0))[:600]].copy()


@pytest.fixture
def small(_small):
    return _small.copy()


def test_table_per_method_and_cell_type(small, tmp_path):
    sl.tl.compare_perturbation(small, **KW, n_de=50, n_comps=10, progress=False)
    res = small.uns["perturbation_comparison"]
    methods = ["control", "mean_shift", "pca_shift", "sentence_oracle"]
    assert list(res["table"].index) == methods
    assert res["params"]["held_out"] == ["B", "CD8T", "NK"] and res["params"]["space"] == "pca10"
    per = res["per_cell_type"]
    assert len(per) == 12 and set(per["wasserstein_method"]) == {"exact"}
    for s in SCORE_NAMES:
        assert {f"{s}_mean", f"{s}_sd"} <= set(res["table"].columns)
    t = res["table"]
    assert np.isnan(t.loc["control", "pearson_delta_de_mean"])  # no delta: undefined, not flattering
    r2 = per.pivot(index="held_out", columns="method", values="r2_mean_de")
    assert (r2["mean_shift"] > r2["control"]).all()
    assert (r2["sentence_oracle"] > r2["mean_shift"]).all()
    assert t.loc["sentence_oracle", "energy_distance_mean"] < t.loc["control", "energy_distance_mean"]
    assert "±" in res["summary"].iloc[0, 0]
    small.write_h5ad(tmp_path / "c.h5ad")
    fig = sl.pl.perturbation_comparison(small, return_fig=True)
    assert len(fig.axes) == 4 and "↑" in fig.axes[0].get_title() and "↓" in fig.axes[2].get_title()


def test_errors_write_nothing(small):
    nk_stim = ((small.obs["cell_type"] == "NK") & (small.obs["condition"] == "stimulated")).to_numpy()
    keep = np.flatnonzero(~nk_stim).tolist() + np.flatnonzero(nk_stim)[:2].tolist()  # NK keeps 2 stimulated cells
    few = small[keep].copy()
    with pytest.raises(ValueError, match="Too few cells for DEGs"):
        sl.tl.compare_perturbation(few, **KW, held_out="NK", progress=False)
    with pytest.warns(UserWarning, match="fewer than 3"):
        sl.tl.compare_perturbation(few, **KW, methods=["control"], n_comps=5, progress=False, key_added="w")
    assert few.uns["w"]["params"]["held_out"] == ["B", "CD8T"]
    with pytest.raises(ValueError, match="Unknown cell types"):
        sl.tl.compare_perturbation(small, **KW, held_out="T", progress=False)
    with pytest.raises(ValueError, match="without repeats"):
        sl.tl.compare_perturbation(small, **KW, methods=["control", "control"], progress=False)
    with pytest.raises(ValueError, match="Unknown perturbation method"):
        sl.tl.compare_perturbation(small, **KW, methods=["magic"], progress=False)
    one = small[small.obs["cell_type"] == "B"].copy()
    with pytest.raises(ValueError, match="two cell types"):
        sl.tl.compare_perturbation(one, **KW, progress=False)
    assert "perturbation_comparison" not in small.uns and "perturbation_comparison" not in one.uns
