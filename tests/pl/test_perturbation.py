"""sl.pl.perturbation: scGen's regression plot, one panel per prediction, R² in the titles."""

import warnings

import numpy as np
import pytest

import sc_llm as sl

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated"}


@pytest.fixture(scope="module")
def kang():
    with warnings.catch_warnings():  # the shipped file's old encoding (OldFormatWarning), not the plot's
        warnings.simplefilter("ignore")
        a = sl.datasets.kang2018()
    a = a[a.obs["cell_type"].isin(["B", "NK"])]
    return a[:, np.argsort(-a.X.getnnz(axis=0))[:500]].copy()


def test_regression_plot(kang):
    train = kang[~((kang.obs["cell_type"] == "NK") & (kang.obs["condition"] == "stimulated")).to_numpy()].copy()
    preds = [sl.tl.perturb(train, **KW, cell_type_key="cell_type", method=m) for m in ("control", "mean_shift")]
    fig = sl.pl.perturbation(
        kang, predictions=preds, **KW, cell_type_key="cell_type", cell_type="NK", n_de=20, n_labels=3, return_fig=True
    )
    axes = fig.axes
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["control", "mean_shift"]
    r2 = [float(ax.get_title().split("DEGs ")[1]) for ax in axes]
    assert r2[1] > r2[0]
    assert len(axes[0].texts) == 3 and axes[0].collections[1].get_offsets().shape[0] == 20
    one = sl.pl.perturbation(
        kang, predictions={"shift": preds[1]}, **KW, cell_type_key="cell_type", cell_type="NK", return_fig=True
    )
    assert len(one.axes) == 1 and one.axes[0].get_title().startswith("shift")
    with pytest.raises(ValueError, match="other genes"):
        sl.pl.perturbation(kang, predictions=preds[0][:, :10].copy(), **KW, cell_type_key="cell_type", cell_type="NK")
    with pytest.raises(KeyError, match="compare_perturbation"):
        sl.pl.perturbation_comparison(kang)
