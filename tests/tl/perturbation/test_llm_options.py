"""method='llm' options of issue 24: relative decoding, validation pairs, seed ensembles, sampling, gene embeddings."""

import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl.perturbation._llm_train import member_seed, validation_pairs
from sc_llm.tl.perturbation._task import PerturbationTask

KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}
TINY = {"n_genes": 8, "hidden_size": 16, "num_layers": 1, "max_steps": 2, "batch_size": 8, "cpu_threads": 1}


@pytest.fixture(scope="module")
def _data():
    a = sl.datasets.kang2018()
    a = a[np.random.default_rng(2).choice(a.n_obs, 220, replace=False)]
    a = a[:, np.argsort(-a.X.getnnz(axis=0))[:150]].copy()
    held = (a.obs["cell_type"] == "B") & (a.obs["condition"] == "stimulated")
    return a[~held.to_numpy()].copy()


@pytest.fixture
def train(_data):
    return _data.copy()


def _query_X(train):
    q = train[((train.obs["cell_type"] == "B") & (train.obs["condition"] == "control")).to_numpy()]
    return q.X.toarray()


def test_relative_decoding_keeps_the_control_cells_own_values(train, tmp_path):
    rel = sl.tl.perturb(train, **KW, method="llm", save_model=str(tmp_path / "m"), **TINY)
    X, ctrl = np.asarray(rel.X), _query_X(train)
    words = [set(s.split()) for s in rel.obs["cell_sentence"]]
    top = [set(train.var_names[np.argsort(-x, kind="stable")[:8]]) for x in ctrl]
    names = np.asarray(train.var_names)
    for i in range(len(X)):
        outside = ~np.isin(names, list(words[i] | top[i]))
        np.testing.assert_allclose(X[i, outside], ctrl[i, outside])  # genes neither sentence names: untouched
    absolute = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), n_genes=8, decode="absolute")
    assert list(absolute.obs["cell_sentence"]) == list(rel.obs["cell_sentence"])  # same sentences, other decoding
    assert (np.asarray(absolute.X) > 0).sum(1).max() <= 8 < (X > 0).sum(1).min()
    # with expected absent values, genes outside both sentences move by the training cells' change of them
    shifted = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), n_genes=8, decoder_absent="expected")
    assert not np.allclose(np.asarray(shifted.X), X) and np.all(np.asarray(shifted.X) >= 0)


def test_validation_pairs_hold_out_perturbed_cells_of_every_type(train):
    task = _task(train)
    split = validation_pairs(task, 0.25, seed=0)
    types, pert = task.train_cell_types, task.train_perturbed
    assert pert[split.val_perturbed].all() and not pert[split.val_control].any()
    assert (types[split.val_perturbed] == types[split.val_control]).all()
    assert not set(split.val_perturbed) & set(split.train) and set(split.val_control) <= set(split.train)
    big = [t for t in np.unique(types[pert]) if (pert & (types == t)).sum() >= 4]
    assert set(big) <= set(types[split.val_perturbed])
    assert len(validation_pairs(task, 0.0, seed=0).val_perturbed) == 0
    assert member_seed(1, 0) == 1 and member_seed(1, 2) == 2001


def test_seed_ensemble_mixture_and_mean_and_its_saved_folder(train, tmp_path):
    out = sl.tl.perturb(train, **KW, method="llm", n_models=2, save_model=str(tmp_path / "e"), **TINY)
    info = out.uns["perturb"]["info"]
    assert info["n_models"] == 2 and (tmp_path / "e" / "member0").is_dir() and (tmp_path / "e" / "member1").is_dir()
    again = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e"), n_genes=8)
    assert (
        list(again.obs["cell_sentence"]) == list(out.obs["cell_sentence"])
        and not again.uns["perturb"]["info"]["trained_here"]
    )
    one = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e" / "member0"), n_genes=8)
    two = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e" / "member1"), n_genes=8, seed=0)
    from sc_llm.core.base.cell_keys import obs_name_keys

    owner = obs_name_keys(out.obs["source_cell"]) % np.uint64(2)
    mixed = np.where(owner == 0, one.obs["cell_sentence"], two.obs["cell_sentence"])
    assert list(out.obs["cell_sentence"]) == list(mixed)  # each cell written by the member its name picks
    mean = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e"), n_genes=8, ensemble="mean")
    np.testing.assert_allclose(np.asarray(mean.X), (np.asarray(one.X) + np.asarray(two.X)) / 2, rtol=1e-5, atol=1e-6)
    assert list(mean.obs["cell_sentence"]) == list(one.obs["cell_sentence"])
    with pytest.raises(ValueError, match="ensemble of 2 members"):
        sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e"), n_models=3)
    with pytest.raises(ValueError, match="saved ensemble"):
        sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e" / "member0"), n_models=2)
    with pytest.raises(ValueError, match="`ensemble` must be one of"):
        sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "e"), ensemble="vote")


def test_sampling_chosen_on_validation_and_length_control(train, tmp_path):
    sl.tl.perturb(train, **KW, method="llm", save_model=str(tmp_path / "m"), **TINY)
    tuned = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), n_genes=8, tune_sampling=True)
    info = tuned.uns["perturb"]["info"]
    from sc_llm.tl.perturbation._llm import SAMPLING_GRID

    assert (info["tuned_temperature"], info["tuned_top_k"] or None) in SAMPLING_GRID
    assert np.isfinite(info["validation_energy"])
    exact = sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), n_genes=8, min_genes=8, top_k=5)
    assert all(len(s.split()) == 8 for s in exact.obs["cell_sentence"])
    assert exact.uns["perturb"]["params"]["options"]["top_k"] == 5
    with pytest.raises(ValueError, match="validation pairs"):
        sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), tune_sampling=True, validation_fraction=0.0)
    with pytest.raises(ValueError, match="`decode` must be one of"):
        sl.tl.perturb(train, **KW, method="llm", model=str(tmp_path / "m"), decode="sideways")


def _task(train, **options):
    return PerturbationTask(
        train_X=train.X.toarray(),
        train_perturbed=(train.obs["condition"] == "stimulated").to_numpy(),
        train_cell_types=train.obs["cell_type"].astype(str).to_numpy(),
        query_X=np.zeros((1, train.n_vars)),
        query_cell_types=None,
        var_names=np.asarray(train.var_names),
        perturbation="stimulated",
        control="control",
        options=options,
    )


def test_gene_embeddings_initialise_the_gene_tokens(train):
    from sc_llm.tl.perturbation._llm_train import build_member

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(train.n_vars - 10, 6)), index=train.var_names[10:])  # 10 genes missing
    opts = {"hidden_size": 16, "num_layers": 1}
    plain, _ = build_member(_task(train), opts, seed=0)
    init, _ = build_member(_task(train), {**opts, "gene_embeddings": table}, seed=0)
    rows = [i for (i,) in init.vocab.ids]
    a = init.model.get_input_embeddings().weight[rows].detach().numpy()
    b = plain.model.get_input_embeddings().weight[rows].detach().numpy()
    np.testing.assert_array_equal(a[:10], b[:10])  # genes without a vector keep their random rows
    assert not np.allclose(a[10:], b[10:], atol=1e-3)
    out = sl.tl.perturb(train, **KW, method="llm", gene_embeddings=table, **{**TINY, "max_steps": 1})
    assert out.uns["perturb"]["params"]["options"]["gene_embeddings"] == f"array ({train.n_vars - 10}, 6)"
    with pytest.raises(ValueError, match="one row per gene"):
        sl.tl.perturb(train, **KW, method="llm", gene_embeddings=rng.normal(size=(5, 6)), **TINY)
    with pytest.raises(ValueError, match="2-D numeric"):
        sl.tl.perturb(train, **KW, method="llm", gene_embeddings=np.zeros(5), **TINY)
