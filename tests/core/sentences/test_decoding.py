"""Sentence → expression decoders: parsing, the three fits against known maps, serialisation."""

import numpy as np
import pytest

from sc_llm.core.base.splits import split_cells
from sc_llm.core.sentences.decoding import SentenceDecoder, fit_heldout, parse_sentences, r2_score

VOCAB = ["A", "B", "C", "D"]


def test_parse_keeps_positions_of_unknown_and_repeated_words():
    p = parse_sentences(["B A", "C X A C", ""], VOCAB)
    np.testing.assert_array_equal(p.indptr, [0, 2, 4, 4])
    np.testing.assert_array_equal(p.genes, [1, 0, 2, 0])
    np.testing.assert_array_equal(p.ranks, [1, 2, 1, 3])  # X keeps rank 2 though dropped; second C dropped
    assert (p.n_words, p.n_unknown, p.n_duplicates, p.unknown_examples) == (6, 1, 1, ["X"])


def test_parse_rejects_duplicated_vocabulary():
    with pytest.raises(ValueError, match="duplicated"):
        parse_sentences(["A"], ["A", "A"])


def _triples(rng, n_cells=200, n_genes=40, per_gene=False):
    """Cells whose expression at rank r is a + b log10 r (+ a gene offset) + small noise."""
    ranks, genes, values = [], [], []
    offsets = rng.normal(0, 0.5, n_genes) if per_gene else np.zeros(n_genes)
    for _ in range(n_cells):
        g = rng.permutation(n_genes)[:30]
        r = np.arange(1, 31)
        ranks.append(r)
        genes.append(g)
        values.append(3.0 - 1.5 * np.log10(r) + offsets[g] + rng.normal(0, 0.01, 30))
    return np.concatenate(ranks), np.concatenate(genes), np.concatenate(values), offsets


def test_global_fit_recovers_the_line():
    r, g, v, _ = _triples(np.random.default_rng(0))
    dec = SentenceDecoder.fit(r, g, v, [f"G{i}" for i in range(40)], kind="global")
    assert dec.intercept == pytest.approx(3.0, abs=0.01)
    assert dec.slope == pytest.approx(-1.5, abs=0.01)
    np.testing.assert_allclose(dec.predict(np.array([1, 10])), [dec.intercept, dec.intercept + dec.slope])


def test_max_rank_limits_the_fit():
    r, g, v, _ = _triples(np.random.default_rng(0))
    v = np.where(r > 10, 100.0, v)  # garbage beyond rank 10 must be ignored
    dec = SentenceDecoder.fit(r, g, v, [f"G{i}" for i in range(40)], kind="global", max_rank=10)
    assert dec.slope == pytest.approx(-1.5, abs=0.02)


def test_isotonic_is_monotone_and_beats_the_line_on_a_curve():
    rng = np.random.default_rng(1)
    r = rng.integers(1, 200, 5000)
    v = 4.0 / np.sqrt(r) + rng.normal(0, 0.01, 5000)  # not linear in log rank
    vocab = ["G0"]
    iso = SentenceDecoder.fit(r, np.zeros_like(r), v, vocab, kind="isotonic")
    line = SentenceDecoder.fit(r, np.zeros_like(r), v, vocab, kind="global")
    grid = np.arange(1, 200)
    assert np.all(np.diff(iso.predict(grid)) <= 1e-12)
    assert r2_score(v, iso.predict(r)) > r2_score(v, line.predict(r)) > 0.5


def test_per_gene_recovers_offsets_and_shrinks_rare_genes():
    r, g, v, offsets = _triples(np.random.default_rng(2), per_gene=True)
    vocab = [f"G{i}" for i in range(41)]  # G40 never observed: falls back to the global line
    dec = SentenceDecoder.fit(r, g, v, vocab, kind="per_gene", shrinkage=1.0)
    pred = dec.predict(np.ones(40, dtype=int), np.arange(40))
    np.testing.assert_allclose(pred, 3.0 + offsets, atol=0.02)
    assert dec.predict(np.array([1]), np.array([40]))[0] == pytest.approx(max(dec.intercept, 0.0), abs=1e-6)
    with pytest.raises(ValueError, match="gene of every rank"):
        dec.predict(np.array([1]))


def test_decode_puts_zeros_on_absent_genes_and_clips_at_zero():
    dec = SentenceDecoder("global", np.array(VOCAB, dtype=object), intercept=1.0, slope=-1.0)
    X, parsed = dec.decode(["B A", "D Z C"], VOCAB)
    dense = X.toarray()
    np.testing.assert_allclose(dense[0], [1 - np.log10(2), 1.0, 0.0, 0.0], atol=1e-6)
    # ranks 1 and 3 (Z unknown keeps rank 2); expression at rank 3 is 1 - log10 3 > 0
    np.testing.assert_allclose(dense[1], [0.0, 0.0, 1 - np.log10(3), 1.0], atol=1e-6)
    assert parsed.n_unknown == 1
    assert dec.predict(np.array([1000]))[0] == 0.0  # 1 - 3 < 0 is clipped


@pytest.mark.parametrize("kind", ["global", "isotonic", "per_gene"])
def test_round_trip_through_a_dict_and_h5ad(kind, tmp_path):
    import anndata as ad

    r, g, v, _ = _triples(np.random.default_rng(3), per_gene=True)
    dec = SentenceDecoder.fit(r, g, v, [f"G{i}" for i in range(40)], kind=kind)
    a = ad.AnnData(np.zeros((1, 1)))
    a.uns["dec"] = dec.to_dict()
    a.write_h5ad(tmp_path / "d.h5ad")
    back = SentenceDecoder.from_dict(ad.read_h5ad(tmp_path / "d.h5ad").uns["dec"])
    ranks, genes = np.arange(1, 30), np.arange(29)
    np.testing.assert_allclose(back.predict(ranks, genes), dec.predict(ranks, genes))
    assert back.kind == kind and list(back.genes) == list(dec.genes)


def test_from_dict_rejects_incomplete_dicts():
    with pytest.raises(ValueError, match="missing"):
        SentenceDecoder.from_dict({"kind": "global"})
    with pytest.raises(ValueError, match="needs"):
        SentenceDecoder.from_dict({"kind": "isotonic", "genes": ["A"], "intercept": 0, "slope": 0})


def test_fit_heldout_scores_unseen_cells():
    rng = np.random.default_rng(4)
    sentences, values = [], []
    for _ in range(100):
        order = rng.permutation(4)
        sentences.append(" ".join(np.array(VOCAB)[order]))
        values.append(2.0 - np.log10(np.arange(1, 5)) + rng.normal(0, 0.02, 4))
    parsed = parse_sentences(sentences, VOCAB)
    dec, test = fit_heldout(parsed, np.concatenate(values), VOCAB, kind="global", test_size=0.25, seed=0)
    assert len(test) == 25 and dec.metrics["n_cells_fit"] == 75
    assert dec.metrics["r2_heldout"] > 0.95
    with pytest.raises(ValueError, match="test_size"):
        split_cells(10, 1.5, 0)
