from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sc_llm as sl


@pytest.fixture(scope="module")
def studied(_pbmc, tiny_bert_dir):
    adata = _pbmc[:240].copy()
    sl.pp.cell_sentences(adata)
    sl.tl.ablation_study(
        adata,
        model=str(tiny_bert_dir),
        label_key="bulk_labels",
        max_length=32,
        progress=False,
        ablations=["baseline", "shuffle_all", "shorten_50"],
    )
    return adata


def test_bars_match_results(studied):
    fig = sl.pl.ablation_study(studied, return_fig=True, show=False)
    ax = fig.axes[0]
    res = studied.uns["ablation_study"]["results"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["baseline", "shuffle_all", "shorten_50"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["accuracy", "macro F1", "k-means ARI"]
    widths = np.array([p.get_width() for p in ax.patches]).reshape(3, 3)  # metric x ablation
    np.testing.assert_allclose(widths, res[["accuracy", "f1_macro", "ari"]].to_numpy().T, atol=1e-9)
    baseline_lines = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
    np.testing.assert_allclose(baseline_lines, sorted(res.loc["baseline", ["accuracy", "f1_macro", "ari"]]))
    plt.close(fig)


def test_subset_and_errors(studied, pbmc):
    axes = sl.pl.ablation_study(studied, metrics=["f1_macro"], ablations=["shorten_50"], show=False)
    assert len(axes[0].patches) == 1
    with pytest.raises(ValueError, match="Unknown metrics"):
        sl.pl.ablation_study(studied, metrics=["auc"], show=False)
    with pytest.raises(KeyError, match="ablation_study"):
        sl.pl.ablation_study(pbmc)
    plt.close("all")
