"""sl.tl.fit_sentence_decoder and sl.tl.decode_sentences on real Kang 2018 cells."""

import anndata as ad
import numpy as np
import pytest

import sc_llm as sl


@pytest.fixture(scope="module")
def _kang_sentences():
    a = sl.datasets.kang2018()
    a = a[:400, np.argsort(-a.X.getnnz(axis=0))[:1500]].copy()
    sl.pp.cell_sentences(a)
    return a


@pytest.fixture
def kang(_kang_sentences):
    return _kang_sentences.copy()


@pytest.mark.parametrize("kind", ["global", "isotonic", "per_gene"])
def test_fit_stores_a_serialisable_decoder_with_heldout_r2(kang, kind, tmp_path):
    out = sl.tl.fit_sentence_decoder(kang, kind=kind, key_added="dec", copy=True)
    assert "dec" not in kang.uns  # copy=True leaves the input alone
    d = out.uns["dec"]
    assert d["kind"] == kind and d["params"]["kind"] == kind
    m = d["metrics"]
    assert m["n_cells_heldout"] == 80 and m["n_cells_fit"] == 320
    assert 0.5 < m["r2_heldout_global"] < 1.0
    assert 0.5 < m["r2_heldout"] < 1.0 and 0.5 < m["r2_heldout_all_genes"] < 1.0
    if kind != "global":
        assert m["r2_heldout"] > m["r2_heldout_global"]  # the better decoders earn their place
    out.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    a, b = sl.tl.decode_sentences(out, decoder="dec"), sl.tl.decode_sentences(back, decoder="dec")
    np.testing.assert_allclose(a.X.toarray(), b.X.toarray())


def test_decode_reproduces_expression_where_genes_are_expressed(kang):
    sl.tl.fit_sentence_decoder(kang, kind="per_gene")
    dec = sl.tl.decode_sentences(kang)
    assert dec.shape == kang.shape and list(dec.obs_names) == list(kang.obs_names)
    assert (dec.X.toarray() > 0).sum() == kang.X.nnz  # exactly the expressed genes are non-zero
    real, pred = kang.X.toarray().ravel(), dec.X.toarray().ravel()
    assert np.corrcoef(real, pred)[0, 1] > 0.9
    assert dec.uns["decode_sentences"]["n_unknown_words"] == 0


def test_decode_counts_unknown_words_and_keeps_first_duplicate(kang, caplog):
    sl.tl.fit_sentence_decoder(kang)
    genes = list(kang.var_names[:3])
    small = kang[:2].copy()
    small.obs["s"] = [f"{genes[0]} NOTAGENE {genes[1]} {genes[0]}", genes[2]]
    out = sl.tl.decode_sentences(small, sentence_key="s", decoder=kang.uns["sentence_decoder"], var_names=genes)
    info = out.uns["decode_sentences"]
    assert (info["n_unknown_words"], info["n_duplicate_words"], info["unknown_examples"]) == (1, 1, ["NOTAGENE"])
    X = out.X.toarray()
    d = kang.uns["sentence_decoder"]
    np.testing.assert_allclose(X[0, 0], max(d["intercept"], 0), rtol=1e-5)  # rank 1, not rank 4
    np.testing.assert_allclose(X[0, 1], max(d["intercept"] + d["slope"] * np.log10(3), 0), rtol=1e-5)
    assert X[1, 2] > 0 and X[1, :2].sum() == 0


def test_expected_absent_values_fix_truncated_sentences(kang, tmp_path):
    from sc_llm.core.base.splits import split_cells
    from sc_llm.core.sentences.decoding import r2_score

    sl.tl.fit_sentence_decoder(kang, key_added="zero")
    sl.tl.fit_sentence_decoder(kang, absent="expected", key_added="expected")
    d = kang.uns["expected"]
    assert d["absent"] == "expected" and d["params"]["absent"] == "expected" and "absent" not in kang.uns["zero"]
    _, test = split_cells(kang.n_obs, 0.2, 0)  # the cells both decoders held out
    held = kang[test].copy()
    held.obs["top30"] = [" ".join(s.split()[:30]) for s in held.obs["cell_sentence"]]
    real = held.X.toarray()
    score = {}
    for key in ("zero", "expected"):
        X = sl.tl.decode_sentences(held, sentence_key="top30", decoder=kang.uns[key]).X.toarray()
        score[key] = (r2_score(real.ravel(), X.ravel()), r2_score(real.mean(0), X.mean(0)))
    assert score["expected"][0] > score["zero"][0] + 0.02  # per-entry R² over every gene
    assert score["expected"][1] > score["zero"][1] + 0.05 and score["expected"][1] > 0.9  # mean profile
    out = sl.tl.decode_sentences(held, sentence_key="top30", decoder="expected")
    assert out.uns["decode_sentences"]["params"]["absent"] == "expected"
    kang.write_h5ad(tmp_path / "k.h5ad")
    back = sl.tl.decode_sentences(ad.read_h5ad(tmp_path / "k.h5ad")[test].copy(), decoder="expected")
    np.testing.assert_allclose(back.X.toarray(), sl.tl.decode_sentences(held, decoder="expected").X.toarray())


def test_bad_inputs_write_nothing(kang):
    before = set(kang.uns)
    with pytest.raises(KeyError, match="cell_sentences"):
        sl.tl.fit_sentence_decoder(kang, sentence_key="missing")
    other = kang.copy()
    other.layers["shuffled"] = other.X[np.random.default_rng(0).permutation(other.n_obs)]
    with pytest.raises(ValueError, match="another matrix"):
        sl.tl.fit_sentence_decoder(other, layer="shuffled")
    with pytest.raises(ValueError, match="kind"):
        sl.tl.fit_sentence_decoder(kang, kind="spline")
    with pytest.raises(ValueError, match="absent"):
        sl.tl.fit_sentence_decoder(kang, absent="mean")
    with pytest.raises(KeyError, match="fit_sentence_decoder"):
        sl.tl.decode_sentences(kang, decoder="nope")
    assert set(kang.uns) == before == set(other.uns)


def test_absent_rows_restrict_the_cells_averaged(kang):
    from sc_llm.core.base.splits import split_cells
    from sc_llm.tl.decoding._fit import fit_decoder_arrays

    names = np.asarray(kang.var_names, dtype=object)
    sentences = list(kang.obs["cell_sentence"])
    stim = np.flatnonzero((kang.obs["condition"] == "stimulated").to_numpy())
    kw = {"kind": "global", "max_rank": 1000, "shrinkage": 1.0, "test_size": 0.2, "seed": 0, "absent": "expected"}
    dec = fit_decoder_arrays(kang.X, names, sentences, absent_rows=stim, **kw)
    _, test = split_cells(kang.n_obs, 0.2, 0)
    rows = np.setdiff1d(stim, test)  # stimulated cells of the fitting split
    assert dec.absent_lengths[0] == 0  # length 0: nothing named, so the plain mean of those cells
    np.testing.assert_allclose(dec.absent_values[0], np.asarray(kang.X[rows].mean(0)).ravel(), rtol=1e-6)
    every = fit_decoder_arrays(kang.X, names, sentences, **kw)
    assert not np.allclose(every.absent_values[0], dec.absent_values[0])
    with pytest.raises(ValueError, match="No fitting cells"):
        fit_decoder_arrays(kang.X, names, sentences, absent_rows=test, **kw)
