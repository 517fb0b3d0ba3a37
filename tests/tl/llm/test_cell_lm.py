import numpy as np
import pytest
from scipy import sparse

import sc_llm as sl

FAST = {"epochs": 1, "batch_size": 8, "progress": False, "cpu_threads": 1}


@pytest.fixture(scope="module")
def kang_small():
    adata = sl.datasets.kang2018()
    adata = adata[np.random.default_rng(0).choice(adata.n_obs, 120, replace=False)].copy()
    sl.pp.cell_sentences(adata, n_genes=12)
    return adata


def _untrained_lm(adata, hidden_size=32):
    """A tiny gene-token perturbation cell LM over ``adata``'s genes, cell types and 'stimulated'."""
    return sl.tl.CellLM.from_scratch(
        list(adata.var_names),
        cell_types=adata.obs["cell_type"].unique(),
        perturbations=["stimulated"],
        hidden_size=hidden_size,
        num_layers=1,
        device="cpu",
    )


@pytest.fixture(scope="module")
def scratch_lm(kang_small):
    return _untrained_lm(kang_small).fit(kang_small, n_genes=8, config=FAST)


def test_fit_predict_save_load_scratch(scratch_lm, kang_small, tmp_path):
    m = scratch_lm
    assert m.vocab.mode == "token" and m.decoder is not None
    assert m.history["task"] == "perturbation" and m.history["n_train"] > 0 and m.history["best_val_loss"] > 0
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:6].copy()
    pred = m.predict_perturbation(ctrl, perturbation="stimulated", n_genes=8, progress=False)
    assert pred.n_obs == 6 and list(pred.var_names) == list(kang_small.var_names)
    assert sparse.issparse(pred.X) and pred.X.max() > 0
    assert (pred.obs["n_valid_genes"] == pred.obs["n_words"]).all() and pred.uns["cell_lm"]["valid_gene_share"] == 1
    assert list(pred.obs["control_cell"]) == list(ctrl.obs_names)
    row = pred.obs["cell_sentence"].iloc[0].split()
    assert 1 <= len(row) <= 8 and len(set(row)) == len(row)
    x0 = pred.X[0].toarray().ravel()
    idx = [list(pred.var_names).index(g) for g in row]
    assert np.all(np.diff(x0[idx]) <= 0) and np.count_nonzero(x0) == len(row)  # decoded by rank
    m.save(tmp_path / "lm")
    m2 = sl.tl.CellLM.load(tmp_path / "lm", device="cpu")
    pred2 = m2.predict_perturbation(ctrl, perturbation="stimulated", n_genes=8, progress=False)
    assert list(pred2.obs["cell_sentence"]) == list(pred.obs["cell_sentence"])
    assert (pred2.X != pred.X).nnz == 0 and m2.history == m.history


@pytest.fixture(scope="module")
def generation_lm(kang_small):
    return _untrained_lm(kang_small).fit(kang_small, task="conditional_generation", n_genes=8, config=FAST)


def test_cell_lms_refuse_what_they_were_not_trained_for(scratch_lm, generation_lm, kang_small):
    ctrl = kang_small[kang_small.obs["condition"] == "control"][:4].copy()
    with pytest.raises(ValueError, match=r"trained for 'perturbation', not for conditional generation"):
        sl.tl.generate_cells(scratch_lm, cell_type="CD4T", n_cells=2, progress=False)
    with pytest.raises(ValueError, match=r"trained for 'conditional_generation'"):
        generation_lm.predict_perturbation(ctrl, perturbation="stimulated", progress=False)
    with pytest.raises(ValueError, match=r"Unknown perturbation 'ghost_drug'.*trained on \['control', 'stimulated'\]"):
        scratch_lm.predict_perturbation(ctrl, perturbation="ghost_drug", progress=False)
    with pytest.raises(ValueError, match=r"Unknown cell type\(s\) \['Neuron'\]"):
        sl.tl.generate_cells(generation_lm, cell_type="Neuron", n_cells=2, progress=False)
    with pytest.raises(ValueError, match=r"\['cd4t'\].*Did you mean 'CD4T'\?"):
        sl.tl.generate_cells(generation_lm, cell_type="cd4t", n_cells=2, progress=False)
    assert (
        scratch_lm.labels["perturbations"] == ["control", "stimulated"] and "CD4T" in generation_lm.labels["cell_types"]
    )


def test_generate_cells_from_a_saved_folder(generation_lm, tmp_path):
    scratch_lm = generation_lm
    scratch_lm.save(tmp_path / "lm")
    out = sl.tl.generate_cells(tmp_path / "lm", cell_type="CD4T", n_cells=5, n_genes=6, seed=1, progress=False)
    assert out.n_obs == 5 and (out.obs["cell_type"] == "CD4T").all()
    assert out.uns["cell_lm"]["valid_gene_share"] == 1.0 and out.uns["cell_lm"]["params"]["seed"] == 1
    again = sl.tl.generate_cells(scratch_lm, cell_type="CD4T", n_cells=5, n_genes=6, seed=1, progress=False)
    assert list(again.obs["cell_sentence"]) == list(out.obs["cell_sentence"])
    mixed = sl.tl.generate_cells(scratch_lm, cell_type=["B", "NK"], n_genes=4, key_added="gen", progress=False)
    assert list(mixed.obs["cell_type"]) == ["B", "NK"] and "gen" in mixed.uns
    with pytest.raises(ValueError, match="Nothing to generate"):
        sl.tl.generate_cells(scratch_lm, cell_type="B", n_cells=0)


@pytest.mark.parametrize("gene_tokens", [False, True])
def test_lora_on_a_pretrained_model_roundtrips(tiny_causal_lm, kang_small, tmp_path, gene_tokens):
    genes = sorted({g for s in kang_small.obs["cell_sentence"] for g in s.split()[:6]})
    sub = kang_small[:, genes].copy()
    sl.pp.cell_sentences(sub, n_genes=6)
    m = sl.tl.CellLM.from_pretrained(tiny_causal_lm, genes=genes, gene_tokens=gene_tokens, device="cpu")
    absent = "expected" if gene_tokens else "zero"
    m.fit(sub, task="conditional_generation", n_genes=6, test_size=0, config=FAST, decoder_absent=absent)
    assert hasattr(m.model, "peft_config") and m.history["n_steps"] > 0
    gen = sl.tl.generate_cells(m, cell_type="CD4T", n_cells=3, n_genes=5, progress=False)
    m.save(tmp_path / "lm")
    assert (tmp_path / "lm" / "adapter").is_dir() and not (tmp_path / "lm" / "model").exists()
    m2 = sl.tl.CellLM.load(tmp_path / "lm", device="cpu")
    assert m2.base["model"] == str(tiny_causal_lm.resolve()) and m2.vocab.ids == m.vocab.ids
    gen2 = sl.tl.generate_cells(m2, cell_type="CD4T", n_cells=3, n_genes=5, progress=False)
    assert list(gen2.obs["cell_sentence"]) == list(gen.obs["cell_sentence"])
    assert gen.uns["cell_lm"]["params"]["gene_mode"] == ("token" if gene_tokens else "text")
    assert m2.decoder.absent == absent  # the absent values travel with the saved model
    np.testing.assert_allclose(gen2.X.toarray(), gen.X.toarray(), rtol=1e-6)
    n_named = (gen.X.toarray() > 0).sum(1)
    assert n_named.min() > 5 if gene_tokens else n_named.max() <= 5


def test_fit_errors_leave_the_model_untouched(scratch_lm, kang_small):
    with pytest.raises(ValueError, match="task"):
        scratch_lm.fit(kang_small, task="annotation")
    with pytest.raises(ValueError, match="No control cells"):
        scratch_lm.fit(kang_small, control="ctrl")
    with pytest.raises(KeyError, match="cell_sentences"):
        scratch_lm.fit(kang_small, sentence_key="nope")
    with pytest.raises(ValueError, match="decoder_absent"):
        scratch_lm.fit(kang_small, decoder_absent="mean")
    with pytest.raises(FileNotFoundError, match="not a saved cell language model"):
        sl.tl.CellLM.load(kang_small.uns.get("nowhere", "/nonexistent/folder"))


def test_fit_adds_control_identity_pairs_unless_asked_not_to(kang_small):
    obs = kang_small.obs
    is_ctrl = obs["condition"] == "control"
    paired_types = set(obs.loc[is_ctrl, "cell_type"])
    n_pert = int((~is_ctrl & obs["cell_type"].isin(paired_types)).sum())
    counts = {}
    for flag in (True, False):
        m = _untrained_lm(kang_small, hidden_size=16)
        m.fit(kang_small, n_genes=4, control_pairs=flag, config={**FAST, "max_steps": 1})
        counts[flag] = m.history["n_train"] + m.history["n_validation"]
    assert counts == {True: n_pert + int(is_ctrl.sum()), False: n_pert}


def test_a_perturbation_model_takes_absent_values_from_perturbed_cells(kang_small):
    from sc_llm.core.base.splits import split_cells

    m = _untrained_lm(kang_small, hidden_size=16)
    m.fit(kang_small, n_genes=4, config={**FAST, "max_steps": 1}, decoder_absent="expected")
    _, test = split_cells(kang_small.n_obs, 0.2, 0)  # the decoder's held-out cells (seed 0)
    stim = np.flatnonzero((kang_small.obs["condition"] == "stimulated").to_numpy())
    rows = np.setdiff1d(stim, test)
    assert m.decoder.absent == "expected" and m.decoder.absent_lengths[-1] == 4  # fitted for 4-gene sentences
    np.testing.assert_allclose(m.decoder.absent_values[0], np.asarray(kang_small.X[rows].mean(0)).ravel(), rtol=1e-6)


@pytest.mark.slow
def test_real_smollm2_gguf_writes_a_valid_cell_sentence(smollm2_gguf, kang_small):
    genes = list(kang_small.var_names)
    m = sl.tl.CellLM.from_pretrained(smollm2_gguf, genes=genes, device="cpu")
    assert 2 < m.vocab.tokens_per_gene() < 6
    out = sl.tl.generate_cells(m, cell_type="CD14+ Monocytes", n_cells=2, n_genes=10, progress=False)
    assert out.uns["cell_lm"]["valid_gene_share"] == 1.0
    for s in out.obs["cell_sentence"]:
        words = s.split()
        assert 1 <= len(words) <= 10 and len(set(words)) == len(words) and set(words) <= set(genes)
