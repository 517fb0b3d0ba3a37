import numpy as np
import pytest
from scipy import sparse

from sc_llm.core.sentences.ranking import SentenceJoiner, _rank_lexsort, rank_genes


def reference_ranking(dense: np.ndarray, n_genes: int | None) -> list[list[int]]:
    """Straightforward per-cell ranking: descending value, ties by column order, zeros dropped."""
    out = []
    for row in dense:
        genes = sorted((j for j in range(len(row)) if row[j] != 0), key=lambda j: (-row[j], j))
        out.append(genes[:n_genes] if n_genes is not None else genes)
    return out


def ragged(indptr, genes):
    return [genes[indptr[i] : indptr[i + 1]].tolist() for i in range(len(indptr) - 1)]


@pytest.mark.parametrize("n_genes", [None, 1, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_rank_matches_reference_with_ties(n_genes, dtype):
    rng = np.random.default_rng(1)
    # small integer values make many ties
    X = sparse.random(200, 30, density=0.4, format="csr", random_state=1, data_rvs=lambda n: rng.integers(1, 4, n))
    X = X.astype(dtype)
    indptr, genes = rank_genes(X, n_genes)
    assert ragged(indptr, genes) == reference_ranking(X.toarray(), n_genes)


def test_rank_drops_explicit_zeros_and_handles_empty_rows():
    X = sparse.csr_matrix(np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 3, 0, 0]], dtype=np.float32))
    X.data[X.data == 1] = 0  # an explicitly stored zero
    indptr, genes = rank_genes(X)
    assert ragged(indptr, genes) == [[1], [], [0, 1]]


def test_rank_many_rows_crosses_internal_blocks():
    X = sparse.random(20_000, 12, density=0.5, format="csr", random_state=2, dtype=np.float32)
    indptr, genes = rank_genes(X, 4)
    dense = X.toarray()
    check = [0, 16_383, 16_384, 19_999]
    ref = reference_ranking(dense[check], 4)
    got = ragged(indptr, genes)
    assert [got[i] for i in check] == ref
    assert indptr[-1] == sum(min(4, n) for n in np.diff(X.indptr))


def test_lexsort_fallback_agrees_with_packed_sort():
    rng = np.random.default_rng(3)
    X = sparse.random(50, 40, density=0.3, format="csr", random_state=3, data_rvs=lambda n: rng.integers(1, 3, n))
    X = X.astype(np.float32)
    genes_l, counts_l = _rank_lexsort(X, None)
    indptr, genes = rank_genes(X)
    assert np.array_equal(np.diff(indptr), counts_l)
    assert np.array_equal(genes, genes_l)


def test_join_sentences():
    names = np.array(["A", "B", "C"], dtype=object)
    assert SentenceJoiner(names)(np.array([0, 2, 2, 3]), np.array([2, 0, 1])) == ["C A", "", "B"]


def test_sentences_across_blocks_with_unicode_names_and_negative_zero(monkeypatch):
    import sc_llm.core.sentences.ranking as ranking

    monkeypatch.setattr(ranking, "_BLOCK_NNZ", 64)  # force many sort blocks
    monkeypatch.setattr(ranking, "_JOIN_BYTES", 256)  # and many string-building batches
    rng = np.random.default_rng(4)
    X = sparse.random(120, 25, density=0.4, format="csr", random_state=4, data_rvs=lambda n: rng.integers(1, 4, n))
    X = X.astype(np.float32)
    X.data[:5] = -0.0  # stored negative zeros are zeros
    names = np.array([f"γ{i}-ä" if i % 3 else f"G{i}" for i in range(25)], dtype=object)
    indptr, genes = rank_genes(X, 7)
    got = ranking.SentenceJoiner(names, sep=" | ")(indptr, genes)
    ref = [" | ".join(names[j] for j in row) for row in reference_ranking(X.toarray(), 7)]
    assert got == ref


def test_empty_matrix():
    indptr, genes = rank_genes(sparse.csr_matrix((0, 5), dtype=np.float32))
    assert indptr.tolist() == [0] and len(genes) == 0
