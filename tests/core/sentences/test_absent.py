"""Expected expression of the genes a sentence leaves out: the table against hand counts, interpolation, decode."""

import numpy as np
import pytest
from scipy import sparse

from sc_llm.core.sentences.absent import (
    absent_rows,
    expected_absent,
    fit_absent_values,
    fittable_length,
    length_grid,
)
from sc_llm.core.sentences.decoding import SentenceDecoder, parse_sentences

GENES = ["A", "B", "C"]
# three cells; each sentence lists every expressed gene in order of expression
X = np.array([[3.0, 2.0, 1.0], [0.0, 4.0, 2.0], [5.0, 0.0, 0.0]])
SENTENCES = ["A B C", "B C", "A"]


def _entries():
    p = parse_sentences(SENTENCES, GENES)
    cell = np.repeat(np.arange(3), np.diff(p.indptr))
    return p, X[cell, p.genes]


def test_length_grid_and_fittable_length():
    np.testing.assert_array_equal(length_grid(120), [0, 1, 2, 5, 10, 20, 50, 100, 120])
    np.testing.assert_array_equal(length_grid(1), [0, 1])
    assert fittable_length(np.array([3, 2, 1]), np.array([3, 2, 1])) == 3  # full sentences: the longest
    assert fittable_length(np.array([3, 2, 1]), np.array([3, 5, 1])) == 2  # a cut sentence bounds it


def test_table_matches_hand_counts():
    p, v = _entries()
    table = fit_absent_values(p.ranks, p.genes, v, X.sum(0), 3, np.array([0, 1, 3]))
    np.testing.assert_allclose(table[0], X.mean(0))  # no gene named: the plain mean
    # L = 1: A is top in cells 0 and 2, so it is left out only in cell 1 (value 0); B left out in 0 and 2
    # (2 and 0); C is never top (1, 2, 0)
    np.testing.assert_allclose(table[1], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(table[2], [0.0, 0.0, 0.0])  # full sentences leave out only zeros


def test_rows_interpolate_in_log_length_and_clip():
    table = np.array([[4.0, 2.0], [2.0, 1.0], [0.0, 0.0]])
    lengths = np.array([0, 1, 3])
    rows = absent_rows(table, lengths, np.array([0, 1, 3, 10]))
    np.testing.assert_allclose(rows, [[4, 2], [2, 1], [0, 0], [0, 0]])
    mid = absent_rows(table, lengths, np.array([2]))[0]
    t = (np.log(3) - np.log(2)) / (np.log(4) - np.log(2))
    np.testing.assert_allclose(mid, (1 - t) * table[1] + t * table[2], rtol=1e-6)


@pytest.mark.parametrize("as_sparse", [False, True])
def test_decode_fills_left_out_genes_and_keeps_named_ones(as_sparse):
    p, v = _entries()
    M = sparse.csr_matrix(X) if as_sparse else X
    lengths, table = expected_absent(p.indptr, p.ranks, p.genes, v, M, np.arange(3))
    np.testing.assert_array_equal(lengths, [0, 1, 2, 3])
    dec = SentenceDecoder.fit(p.ranks, p.genes, v, GENES)
    zero, _ = dec.decode(["B", ""])
    dec.absent, dec.absent_lengths, dec.absent_values = "expected", lengths, table
    filled, _ = dec.decode(["B", ""])
    filled, zero = filled.toarray(), zero.toarray()
    assert filled[0, 1] == zero[0, 1] > 0  # the named gene keeps its decoded value
    np.testing.assert_allclose(filled[0, [0, 2]], table[1, [0, 2]])  # left out at length 1
    np.testing.assert_allclose(filled[1], X.mean(0), rtol=1e-6)  # an empty sentence: every gene's mean
    back = SentenceDecoder.from_dict(dec.to_dict())
    np.testing.assert_allclose(back.decode(["B", ""])[0].toarray(), filled)


def test_expected_without_values_and_bad_stored_mode_are_refused():
    p, v = _entries()
    dec = SentenceDecoder.fit(p.ranks, p.genes, v, GENES)
    dec.absent = "expected"
    with pytest.raises(ValueError, match="refit"):
        dec.decode(["A"])
    with pytest.raises(ValueError, match="absent"):
        SentenceDecoder.from_dict(dec.to_dict())  # 'expected' without its fitted values
    with pytest.raises(ValueError, match="absent"):
        SentenceDecoder.from_dict({**SentenceDecoder.fit(p.ranks, p.genes, v, GENES).to_dict(), "absent": "mean"})
    lengths, table = expected_absent(p.indptr, p.ranks, p.genes, v, X, np.arange(3))
    dec.absent_lengths, dec.absent_values = lengths, table[:, :2]  # a table cut short (tampered, truncated)
    with pytest.raises(ValueError, match="refit"):
        SentenceDecoder.from_dict(dec.to_dict())
