import numpy as np
import pytest

import sc_llm as sl

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}
SMALL = {"n_genes": 8, "hidden_size": 32, "num_layers": 1, "epochs": 1, "cpu_threads": 1}


@pytest.fixture(scope="module")
def kang_small():
    adata = sl.datasets.kang2018()
    keep = np.random.default_rng(1).choice(adata.n_obs, 150, replace=False)
    adata = adata[keep].copy()
    return adata[~((adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "stimulated"))].copy()


def test_perturb_llm_from_scratch_then_from_the_saved_model(kang_small, tmp_path):
    out = sl.tl.perturb(kang_small, method="llm", save_model=str(tmp_path / "lm"), decode="absolute", **KW, **SMALL)
    query = kang_small[(kang_small.obs["cell_type"] == "B") & (kang_small.obs["condition"] == "control")]
    assert out.n_obs == query.n_obs and list(out.var_names) == list(kang_small.var_names)
    assert (out.obs["cell_type"] == "B").all() and (out.obs["method"] == "llm").all()
    info = out.uns["perturb"]["info"]
    assert info["valid_gene_share"] == 1.0 and info["trained_here"] and info["gene_mode"] == "token"
    assert info["n_train_examples"] > 0 and out.uns["perturb"]["params"]["method"] == "llm"
    for s in out.obs["cell_sentence"]:
        words = s.split()
        assert 1 <= len(words) <= 8 and len(set(words)) == len(words)
    assert np.isfinite(out.X).all() and (np.asarray(out.X) > 0).sum(1).max() <= 8
    again = sl.tl.perturb(kang_small, method="llm", model=str(tmp_path / "lm"), **KW, n_genes=8, decode="absolute")
    assert not again.uns["perturb"]["info"]["trained_here"]
    # sampled by default, seeded: the same model, cells and seed write the same sentences
    assert list(again.obs["cell_sentence"]) == list(out.obs["cell_sentence"])
    lengths = [len(s.split()) for s in out.obs["cell_sentence"]]
    assert info["mean_genes_per_sentence"] == pytest.approx(np.mean(lengths))
    greedy = sl.tl.perturb(kang_small, method="llm", model=str(tmp_path / "lm"), **KW, n_genes=8, do_sample=False)
    assert list(greedy.obs["cell_sentence"]) != list(out.obs["cell_sentence"])
    other_seed = sl.tl.perturb(kang_small, method="llm", model=str(tmp_path / "lm"), **KW, n_genes=8, seed=1)
    assert list(other_seed.obs["cell_sentence"]) != list(out.obs["cell_sentence"])
    # genes left out of the 8-gene sentences decode to their expected value instead of 0; named genes keep theirs
    filled = sl.tl.perturb(
        kang_small,
        method="llm",
        model=str(tmp_path / "lm"),
        **KW,
        n_genes=8,
        decoder_absent="expected",
        decode="absolute",
    )
    assert list(filled.obs["cell_sentence"]) == list(out.obs["cell_sentence"])
    assert (np.asarray(filled.X) > 0).sum(1).min() > 8 and filled.uns["perturb"]["params"][
        "decoder_absent"
    ] == "expected"
    named = np.asarray(out.X) > 0
    np.testing.assert_allclose(np.asarray(filled.X)[named], np.asarray(out.X)[named], rtol=1e-6)


def test_control_pairs_add_the_control_cells_as_identity_examples(kang_small):
    obs = kang_small.obs
    n_ctrl = int((obs["condition"] == "control").sum())
    stim_types = set(obs.loc[obs["condition"] == "stimulated", "cell_type"])
    ctrl_types = set(obs.loc[obs["condition"] == "control", "cell_type"])
    per_type = obs.loc[(obs["condition"] == "stimulated") & obs["cell_type"].isin(stim_types & ctrl_types), "cell_type"]
    # 10 % of every type's perturbed cells are held out as validation pairs, never trained on
    n_pert = sum(n - round(0.1 * n) for n in per_type.value_counts() if n)
    fast = {**SMALL, "max_steps": 1, "validation_fraction": 0.1}
    del fast["epochs"]
    n_train, n_val = {}, {}
    for flag in (True, False):
        out = sl.tl.perturb(kang_small, method="llm", control_pairs=flag, **KW, **fast)
        n_train[flag] = out.uns["perturb"]["info"]["n_train_examples"]
        n_val[flag] = out.uns["perturb"]["info"]["n_validation_pairs"]
    assert n_train == {True: n_pert + n_ctrl, False: n_pert}
    assert n_val[True] == n_val[False] == sum(round(0.1 * n) for n in per_type.value_counts() if n)


def test_perturb_llm_lora_on_a_pretrained_checkpoint(kang_small, tiny_causal_lm):
    genes = np.asarray(kang_small.X.sum(0)).ravel().argsort()[::-1][:40]
    sub = kang_small[:, np.sort(genes)].copy()
    out = sl.tl.perturb(sub, method="llm", model=str(tiny_causal_lm), **KW, n_genes=6, max_steps=2, batch_size=8)
    info = out.uns["perturb"]["info"]
    assert info["gene_mode"] == "text" and info["valid_gene_share"] == 1.0 and info["n_steps"] == 2
