"""sl.pl.compare_annotators: mean ± sd bars per method and score, one dot per seed, ensemble controls hatched."""

import numpy as np
import pytest

import sc_llm as sl

FAST = {"max_epochs": 8, "patience": 3, "n_folds": 2, "progress": False}


def snapshot(adata):
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


@pytest.fixture(scope="module")
def compared(_pbmc):
    adata = _pbmc.copy()
    sl.tl.compare_annotators(
        adata, label_key="bulk_labels", use_reps=["X_pca"], seeds=[0, 1], ensemble_controls=True, **FAST
    )
    return adata


def test_bars_dots_and_controls(compared, tmp_path):
    table = compared.uns["scmpt_comparison"]["table"]
    methods = ["scMPT (X_pca)", "ensemble (X_pca)", "kNN (X_pca)"]
    assert list(table.index) == methods
    target = tmp_path / "cmp.png"
    fig = sl.pl.compare_annotators(compared, return_fig=True, save=str(target))
    assert target.is_file()
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["macro F1 ↑", "accuracy ↑", "ECE (15 bins) ↓"]
    assert all(a.get_xlabel().endswith("mean ± sd over seeds") for a in axes)
    ticks = sorted(zip(axes[0].get_yticks(), axes[0].get_yticklabels(), strict=True), key=lambda p: -p[0])
    assert [t.get_text() for _, t in ticks] == methods  # top to bottom in the table's order
    assert [t.get_fontstyle() for _, t in ticks] == ["normal", "italic", "normal"]
    for ax, score in zip(axes, ["f1_macro", "accuracy", "ece"], strict=True):
        bars = sorted(ax.patches, key=lambda p: -p.get_y())
        np.testing.assert_allclose([b.get_width() for b in bars], table[f"{score}_mean"], rtol=1e-9)
        assert [bool(b.get_hatch()) for b in bars] == [False, True, False]  # the same-budget control is marked
        dots = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if c.get_offsets().shape[0] == 2])
        per_seed = compared.uns["scmpt_comparison"]["per_seed"]
        np.testing.assert_allclose(np.sort(dots), np.sort(per_seed[score].to_numpy()))  # 2 seeds x 3 methods
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["scMPT fusion", "ensemble control (same budget)", "kNN", "one seed"]


def test_subsets_and_errors(compared, pbmc):
    axes = sl.pl.compare_annotators(compared, metrics=["accuracy"], methods=["kNN (X_pca)"], show=False)
    assert len(axes) == 1 and len(axes[0].patches) == 1
    before = snapshot(compared)
    with pytest.raises(ValueError, match=r"choose from \['f1_macro', 'accuracy'"):
        sl.pl.compare_annotators(compared, metrics=["auc"], show=False)
    with pytest.raises(ValueError, match="not in the comparison"):
        sl.pl.compare_annotators(compared, methods=["MLP (X_umap)"], show=False)
    assert snapshot(compared) == before
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.compare_annotators\(adata, label_key=\.\.\.\)` first"):
        sl.pl.compare_annotators(pbmc, show=False)
