"""sl.metrics.population_diagnostics: per-cell and per-gene comparisons, and the genes outside the sentences."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import sc_llm as sl


@pytest.fixture
def populations():
    rng = np.random.default_rng(0)
    genes = pd.DataFrame(index=[f"G{i}" for i in range(12)])
    real = rng.poisson(2.0, size=(30, 12)).astype(np.float32)
    ctrl = rng.poisson(2.0, size=(30, 12)).astype(np.float32)
    pred = np.zeros_like(real)
    pred[:, :3] = real[:, :3]  # a prediction that only knows genes 0-2, which its sentences name
    p = ad.AnnData(pred, var=genes.copy())
    p.obs["cell_sentence"] = "G0 G1 G2"
    return p, ad.AnnData(real, var=genes.copy()), ad.AnnData(ctrl, var=genes.copy())


def test_diagnostics_find_the_error_outside_the_sentences(populations):
    p, r, c = populations
    d = sl.metrics.population_diagnostics(p, r, c, n_de=3)
    cells, genes, summary = d["per_cell"], d["per_gene"], d["summary"]
    assert list(cells.index) == ["predicted", "real", "control"]
    assert cells.loc["predicted", "n_expressed_mean"] <= 3 and cells.loc["real", "n_expressed_mean"] > 8
    assert cells.loc["predicted", "outside_share_mean"] == 0.0
    assert 0.5 < cells.loc["real", "outside_share_mean"] < 1  # 3 of a real cell's genes hold less than half of it
    assert cells.loc["predicted", "ks_library_size"] > 0.9 and cells.loc["real", "ks_library_size"] == 0.0
    np.testing.assert_allclose(genes["in_sentence"], [1, 1, 1] + [0] * 9)
    assert genes.loc[["G0", "G1", "G2"], "sq_error_mean"].max() == pytest.approx(0.0, abs=1e-9)
    assert genes["is_de"].sum() == 3 and "mean_control" in genes
    assert summary["sq_error_mean_outside_share"] == pytest.approx(1.0)
    assert summary["n_sentence_genes"] == 3 and summary["energy_distance_sentence_genes"] == pytest.approx(0, abs=1e-9)
    assert summary["energy_distance_outside_genes"] > 1 and summary["library_size_ratio"] < 0.5


def test_without_sentences_or_control(populations):
    p, r, _ = populations
    d = sl.metrics.population_diagnostics(p.X, r.X)  # arrays: no sentences, no DEGs
    assert d["per_gene"]["in_sentence"].isna().all() and not d["per_gene"]["is_de"].any()
    assert "sq_error_mean_outside_share" not in d["summary"] and np.isnan(d["per_cell"]["outside_share_mean"]).all()
    explicit = sl.metrics.population_diagnostics(p, r, sentences=["G0"] * p.n_obs, de_genes=["G5"])
    assert explicit["summary"]["n_sentence_genes"] == 1 and explicit["per_gene"].loc["G5", "is_de"]


def test_bad_input(populations):
    p, r, _c = populations
    with pytest.raises(ValueError, match="one sentence per predicted cell"):
        sl.metrics.population_diagnostics(p, r, sentences=["G0"])
    with pytest.raises(TypeError, match="AnnData inputs"):
        sl.metrics.population_diagnostics(p.X, r.X, sentences=["G0"] * p.n_obs)
    with pytest.raises(ValueError, match="not genes of the inputs"):
        sl.metrics.population_diagnostics(p, r, sentences=["XIST"] * p.n_obs)
    with pytest.raises(ValueError, match="in_sentence_threshold"):
        sl.metrics.population_diagnostics(p, r, in_sentence_threshold=0)
    with pytest.raises(ValueError, match="at least 2 cells"):
        sl.metrics.population_diagnostics(p[:1], r)
    with pytest.raises(ValueError, match="different genes"):
        sl.metrics.population_diagnostics(p, r[:, ::-1].copy())
