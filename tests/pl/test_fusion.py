"""sl.pl.fusion_weights: the stacked fusion's expert weights, and per class the evidence each expert gives."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.core.fusion.stacking import class_evidence

FAST = {"max_epochs": 30, "patience": 5, "lr": 1e-2, "n_folds": 2, "progress": False}


def snapshot(adata):
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


def two_bit_adata(n: int = 160, seed: int = 0) -> ad.AnnData:
    """X_a tells t0/t2 from t1/t3 (bit 1), X_b t0/t1 from t2/t3 (bit 2): each alone separates half the classes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    a, b = rng.normal(size=(n, 6)).astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32)
    a[:, 0] += 4 * (codes % 2)
    b[:, 0] += 4 * (codes // 2)
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.array(["t0", "t1", "t2", "t3"])[codes])})
    obs.index = [f"cell{i}" for i in range(n)]
    adata = ad.AnnData(np.zeros((n, 2), dtype=np.float32), obs=obs)
    adata.obsm["X_a"], adata.obsm["X_b"] = a, b
    return adata


@pytest.fixture(scope="module")
def fused():
    adata = two_bit_adata()
    sl.tl.scmpt_annotate(adata, label_key="cell_type", use_reps=["X_a", "X_b"], **FAST)
    return adata


def test_class_evidence_is_the_weighted_gain_over_a_uniform_guess():
    log_p = [np.log(np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])), np.log(np.full((3, 2), 0.5))]
    out = class_evidence(log_p, np.array([0, 0, 1]), [2.0, 1.0])
    np.testing.assert_allclose(out[:, 0], [2 * np.mean([np.log(1.0), np.log(1.8)]), 2 * np.log(1.6)])
    np.testing.assert_allclose(out[:, 1], 0.0, atol=1e-12)  # an expert that cannot tell gives none


def test_weights_and_per_class_heatmap(fused, tmp_path):
    history = fused.uns["scmpt"]["history"]
    evidence = np.asarray(history["class_evidence"])
    assert evidence.shape == (4, 2) and len(history["weights"]) == 2
    fig = sl.pl.fusion_weights(fused, return_fig=True, save=tmp_path / "w.png")
    assert (tmp_path / "w.png").is_file()
    bars, heat = fig.axes[0], fig.axes[1]
    assert sorted(p.get_width() for p in bars.patches) == pytest.approx(sorted(history["weights"]))
    assert [t.get_text() for t in bars.get_yticklabels()] == ["X_a", "X_b"]
    assert bars.get_xlabel() == "expert weight"
    np.testing.assert_allclose(heat.images[0].get_array(), evidence)
    assert [t.get_text() for t in heat.get_yticklabels()] == ["t0", "t1", "t2", "t3"]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["X_a", "X_b"]
    assert len(heat.texts) == 8


def test_round_trip_and_weights_only(fused, tmp_path):
    fused.write_h5ad(tmp_path / "f.h5ad")
    back = ad.read_h5ad(tmp_path / "f.h5ad")
    fig = sl.pl.fusion_weights(back, return_fig=True)
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), fused.uns["scmpt"]["history"]["class_evidence"])
    axes = sl.pl.fusion_weights(back, per_class=False, show=False)
    assert len(axes) == 1 and len(axes[0].patches) == 2


def test_errors_name_the_fix(fused, pbmc):
    concat = two_bit_adata(80)
    sl.tl.scmpt_annotate(concat, label_key="cell_type", use_reps=["X_a", "X_b"], fusion="concat", **FAST)
    before = snapshot(concat)
    with pytest.raises(ValueError, match=r"fusion='concat'.*no expert weights.*fusion='stacked'"):
        sl.pl.fusion_weights(concat, show=False)
    assert snapshot(concat) == before
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.scmpt_annotate\("):
        sl.pl.fusion_weights(pbmc, show=False)
