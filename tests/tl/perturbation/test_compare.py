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
    assert list(res["table"].index) == [*methods, "positive_control"]  # calibrate=True adds the positive control
    assert res["params"]["held_out"] == ["B", "CD8T", "NK"] and res["params"]["space"] == "pca10"
    per = res["per_cell_type"]
    assert len(per) == 15 and set(per["wasserstein_method"]) == {"exact"} and res["params"]["added_controls"] == []
    assert res["params"]["wasserstein_method"] == "exact" and "wasserstein (exact)" in res["summary"]
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


def test_calibrated_scores_sit_between_the_controls(small):
    sl.tl.compare_perturbation(small, **KW, methods=["pca_shift"], n_de=50, n_comps=10, progress=False)
    res = small.uns["perturbation_comparison"]
    assert res["params"]["added_controls"] == ["control", "mean_shift"]
    cal, per = res["calibrated"], res["per_cell_type"]
    assert list(cal.index) == ["pca_shift", "control", "mean_shift", "positive_control"]
    for s in SCORE_NAMES:
        assert f"{s}_norm" in per
    np.testing.assert_allclose(cal.loc["positive_control"].dropna(), 1.0)
    assert cal.loc["control", "r2_mean_de"] == 0.0 and np.isnan(cal.loc["control", "pearson_delta_de"])
    assert res["params"]["normalised_against"]["pearson_delta_de"] == "mean_shift"
    assert res["params"]["normalised_against"]["energy_distance"] == "control"
    assert 0.5 < cal.loc["pca_shift", "r2_mean_de"] < 1.2 and 0.5 < cal.loc["mean_shift", "energy_distance"] < 1.2
    # the split-half control scores about as well as the real cells can, on the unbiased energy distance too
    pos = per[per["method"] == "positive_control"]
    assert (pos["energy_distance"] < per.loc[per["method"] == "control", "energy_distance"].to_numpy()).all()
    assert pos["discrimination"].eq(1.0).all() and pos["r2_mean_de"].gt(0.9).all()
    assert per["pearson_delta_centroid_de"][per["method"] == "mean_shift"].isna().all()  # it is the centroid
    plain = small.copy()
    del plain.uns["perturbation_comparison"]
    sl.tl.compare_perturbation(plain, **KW, methods=["control"], calibrate=False, n_comps=10, progress=False)
    assert "calibrated" not in plain.uns["perturbation_comparison"]
    assert list(plain.uns["perturbation_comparison"]["table"].index) == ["control"]


def test_one_wasserstein_estimator_for_every_row(small):
    sl.tl.compare_perturbation(
        small, **KW, methods=["control"], wasserstein_method="sliced", n_comps=10, progress=False, key_added="s"
    )
    res = small.uns["s"]
    assert set(res["per_cell_type"]["wasserstein_method"]) == {"sliced"} and res["params"]["wasserstein_method"] == (
        "sliced"
    )
    with pytest.raises(ValueError, match="wasserstein_method"):
        sl.tl.compare_perturbation(small, **KW, methods=["control"], wasserstein_method="fast", progress=False)


def test_the_held_out_oracle_and_per_fold_models_in_one_call(small, tmp_path):
    """sentence_oracle with the llm's sentence length and absent values; one saved llm per fold, read back."""
    tiny = {"n_genes": 10, "hidden_size": 16, "num_layers": 1, "max_steps": 1, "batch_size": 8, "cpu_threads": 1}
    sl.tl.compare_perturbation(
        small,
        **KW,
        methods=["sentence_oracle", "llm"],
        held_out=["NK", "B"],
        n_comps=10,
        progress=False,
        decoder_absent="expected",
        save_model=str(tmp_path / "{held_out}"),
        **tiny,
    )
    res = small.uns["perturbation_comparison"]
    assert (tmp_path / "NK").is_dir() and (tmp_path / "B").is_dir()
    assert res["params"]["decoder_absent"] == "expected"
    per = res["per_cell_type"].set_index(["held_out", "method"])
    assert per.loc[("NK", "sentence_oracle"), "r2_mean_de"] > per.loc[("NK", "control"), "r2_mean_de"]
    again = small.copy()
    del again.uns["perturbation_comparison"]
    sl.tl.compare_perturbation(
        again,
        **KW,
        methods=["llm"],
        held_out=["NK", "B"],
        n_comps=10,
        progress=False,
        decoder_absent="expected",
        model=str(tmp_path / "{held_out}"),
        n_genes=10,
        calibrate=False,
    )
    per2 = again.uns["perturbation_comparison"]["per_cell_type"].set_index(["held_out", "method"])
    for t in ("NK", "B"):  # each fold read its own model back: the same predictions, the same scores
        assert per2.loc[(t, "llm"), "r2_mean_de"] == pytest.approx(per.loc[(t, "llm"), "r2_mean_de"])
