"""sl.tl.perturb: methods, the predicted AnnData, the method contract, and bad input (nothing written)."""

import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl.perturbation import _methods as registry

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}


@pytest.fixture(scope="module")
def _kang3():
    """Three cell types of Kang 2018 over the 1,000 most often detected genes (NK's stimulated cells kept)."""
    a = sl.datasets.kang2018()
    a = a[a.obs["cell_type"].isin(["B", "CD8T", "NK"])]
    a = a[:, np.argsort(-a.X.getnnz(axis=0))[:1000]].copy()
    a.obs["cell_type"] = a.obs["cell_type"].astype(str).astype("category")
    return a


@pytest.fixture
def kang3(_kang3):
    return _kang3.copy()


@pytest.fixture
def unseen(kang3):
    """Training data without NK's stimulated cells: NK is the unseen cell type."""
    hide = (kang3.obs["cell_type"] == "NK") & (kang3.obs["condition"] == "stimulated")
    return kang3[~hide.to_numpy()].copy()


def _real(kang3, cell_type, condition):
    return kang3[((kang3.obs["cell_type"] == cell_type) & (kang3.obs["condition"] == condition)).to_numpy()]


@pytest.mark.parametrize("method", ["control", "mean_shift", "pca_shift"])
def test_baselines_predict_the_unseen_cell_type(unseen, kang3, method):
    out = sl.tl.perturb(unseen, **KW, method=method, **({"n_comps": 20} if method == "pca_shift" else {}))
    ctrl_nk = _real(kang3, "NK", "control")
    assert out.shape == (ctrl_nk.n_obs, kang3.n_vars)
    assert list(out.var_names) == list(kang3.var_names)
    assert list(out.obs["source_cell"]) == list(ctrl_nk.obs_names)
    assert set(out.obs["cell_type"]) == {"NK"} and set(out.obs["condition"]) == {"stimulated"}
    assert set(out.obs["method"]) == {method} and isinstance(out.obs["method"].dtype, pd.CategoricalDtype)
    params = out.uns["perturb"]["params"]
    assert params["method"] == method and params["n_query_cells"] == ctrl_nk.n_obs
    assert np.all(np.asarray(out.X) >= 0)
    if method == "control":
        np.testing.assert_allclose(out.X, ctrl_nk.X.toarray(), rtol=1e-6)


def test_mean_shift_beats_control_on_deg_means(unseen, kang3):
    real, ctrl = _real(kang3, "NK", "stimulated"), _real(kang3, "NK", "control")
    de = sl.metrics.de_genes(real, ctrl, n_de=50)
    r2 = {
        m: sl.metrics.r2_mean(sl.tl.perturb(unseen, **KW, method=m), real, genes=de) for m in ("control", "mean_shift")
    }
    assert r2["mean_shift"] > r2["control"] + 0.1


def test_sentence_oracle_decodes_the_real_perturbed_cells(kang3):
    query = _real(kang3, "NK", "control").copy()
    out = sl.tl.perturb(kang3, **KW, method="sentence_oracle", query=query)
    real = _real(kang3, "NK", "stimulated")
    assert list(out.obs["source_cell"]) == list(real.obs_names)
    assert out.obs["cell_sentence"].str.len().gt(0).all()
    assert out.uns["perturb"]["params"]["decoder_kind"] == "per_gene"
    assert sl.metrics.r2_mean(out, real) > 0.95


def test_expected_absent_values_lift_truncated_sentences(kang3):
    query = _real(kang3, "NK", "control").copy()
    real = _real(kang3, "NK", "stimulated")
    r2 = {}
    for absent in ("zero", "expected"):
        out = sl.tl.perturb(kang3, **KW, method="sentence_oracle", query=query, n_genes=30, decoder_absent=absent)
        assert out.uns["perturb"]["params"]["decoder_absent"] == absent
        r2[absent] = sl.metrics.r2_mean(out, real)
    assert r2["expected"] > r2["zero"] + 0.03 and r2["expected"] > 0.95  # measured 0.909 -> 0.956


def test_a_registered_method_slots_in(unseen, kang3):
    """The contract: a sentence method gets query sentences and a fitted decoder, returns decoded cells."""
    seen = {}

    def echo(task):
        seen["decoder"] = task.decoder
        sentences = task.sentences("query")
        X, _ = task.decoder.decode(sentences, task.var_names)
        return registry.PerturbationResult(
            X.toarray()[::-1], np.arange(len(sentences))[::-1], sentences=sentences[::-1]
        )

    registry.register_perturbation_method("echo", echo, uses_sentences=True)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register_perturbation_method("echo", echo)
        out = sl.tl.perturb(unseen, **KW, method="echo")
    finally:
        del registry.PERTURBATION_METHODS["echo"]
    assert seen["decoder"].kind == "per_gene"
    ctrl = _real(kang3, "NK", "control")
    assert list(out.obs["source_cell"]) == list(ctrl.obs_names[::-1])
    assert out.obs["cell_sentence"].iloc[0].split()[0] in set(kang3.var_names)


def test_llm_method_says_what_is_missing(unseen):
    # method="llm" is registered by sc_llm.tl (a cell language model); a checkpoint that is not at hand is named
    with pytest.raises(OSError, match="hf download some/model"):
        sl.tl.perturb(unseen, **KW, method="llm", model="some/model")
    with pytest.raises(ValueError, match="Unknown perturbation method"):
        sl.tl.perturb(unseen, **KW, method="magic")


def test_bad_input_raises_and_writes_nothing(unseen, kang3):
    snapshot = (unseen.obs.copy(), dict(unseen.uns), unseen.X.copy())
    with pytest.raises(ValueError, match="Unknown perturbation condition 'IFN'"):
        sl.tl.perturb(unseen, **{**KW, "perturbation": "IFN"})
    with pytest.raises(ValueError, match="Unknown control condition"):
        sl.tl.perturb(unseen, **{**KW, "control": "ctrl"})
    no_pert = unseen[unseen.obs["condition"] == "control"].copy()
    no_pert.obs["condition"] = pd.Categorical(no_pert.obs["condition"], categories=["control", "stimulated"])
    with pytest.raises(ValueError, match="has no cells"):  # the category exists but holds no cell
        sl.tl.perturb(no_pert, **KW)
    with pytest.raises(ValueError, match="not control cells"):
        sl.tl.perturb(unseen, **KW, query=_real(kang3, "NK", "stimulated").copy())
    with pytest.raises(ValueError, match="different genes"):
        sl.tl.perturb(unseen, **KW, query=_real(kang3, "NK", "control")[:, :500].copy())
    with pytest.raises(ValueError, match="Every cell type"):
        sl.tl.perturb(kang3, **KW)
    with pytest.raises(ValueError, match="needs real perturbed cells"):
        sl.tl.perturb(unseen, **KW, method="sentence_oracle")
    with pytest.raises(KeyError, match="condition"):
        sl.tl.perturb(unseen, **{**KW, "condition_key": "stim"})
    with pytest.raises(ValueError, match="decoder_absent"):
        sl.tl.perturb(unseen, **KW, method="sentence_oracle", query=kang3[:5].copy(), decoder_absent="mean")
    obs, uns, X = snapshot
    pd.testing.assert_frame_equal(unseen.obs, obs)
    assert dict(unseen.uns).keys() == uns.keys() and (unseen.X != X).nnz == 0


def test_query_with_reordered_genes_is_aligned(unseen, kang3):
    query = _real(kang3, "NK", "control").copy()
    reordered = query[:, query.var_names[::-1]].copy()
    a = sl.tl.perturb(unseen, **KW, query=query)
    b = sl.tl.perturb(unseen, **KW, query=reordered)
    np.testing.assert_allclose(a.X, b.X)
