"""Property tests: cell sentences agree with a plain reference ranking on any matrix, and survive `.h5ad`."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import sparse

import sc_llm as sl
from sc_llm._utils._sentences import read_sentences
from sc_llm._utils._validation import _DIGITS, _SPECIAL

# few distinct values, so ties are common; tiny, huge, -0.0 and explicit zeros included
VALUES = st.sampled_from([0.0, -0.0, 0.0, 1.0, 1.0, 2.0, 0.5, 3.25, 1e-8, 1e30, 7.0])
# gene names: letters, digits, punctuation, non-ASCII letters; no whitespace or invisible characters
NAME_CHARS = st.characters(
    blacklist_categories=("Z", "C"),  # separators (spaces) and control/format (zero-width) characters
    blacklist_characters="/",  # anndata refuses '/' in names it writes to .h5ad
)
# names the package refuses by design (numbers such as "1e5", special tokens such as "<a>") are left out
GENE = st.text(NAME_CHARS, min_size=1, max_size=6).filter(lambda s: not _DIGITS.match(s) and not _SPECIAL.match(s))
FORMATS = st.sampled_from(["csr", "csc", "dense32", "dense64"])  # what AnnData stores


@st.composite
def expression(draw):
    n_obs = draw(st.integers(1, 7))
    n_vars = draw(st.integers(1, 9))
    X = draw(hnp.arrays(np.float64, (n_obs, n_vars), elements=VALUES))
    names = draw(st.lists(GENE, min_size=n_vars, max_size=n_vars, unique=True))
    return X, names, draw(FORMATS)


def as_format(X: np.ndarray, fmt: str):
    if fmt == "dense32":
        return X.astype(np.float32)
    if fmt == "dense64":
        return X
    M = getattr(sparse, f"{fmt}_matrix")(X)
    if fmt == "csr" and M.nnz == 0 and X.size:  # keep an explicitly stored zero around
        M = sparse.csr_matrix((np.zeros(1), (np.zeros(1, int), np.zeros(1, int))), shape=X.shape)
    return M.astype(np.float32)


def reference_sentences(X: np.ndarray, names: list[str], n_genes: int | None = None) -> list[str]:
    """The definition, spelled out: genes with a non-zero float32 value, by descending value, ties by column."""
    out = []
    for row in X.astype(np.float32):
        ranked = sorted((j for j in range(len(row)) if row[j] != 0), key=lambda j: (-row[j], j))
        out.append(" ".join(names[j] for j in ranked[:n_genes]))
    return out


def make_adata(X, names, fmt):
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(X.shape[0])])
    return ad.AnnData(as_format(X, fmt), obs=obs, var=pd.DataFrame(index=names))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=expression(), n_genes=st.one_of(st.none(), st.integers(1, 10)), chunk_size=st.integers(1, 4))
def test_sentences_match_reference_ranking(data, n_genes, chunk_size):
    X, names, fmt = data
    adata = make_adata(X, names, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty rows are reported with a warning
        sl.pp.cell_sentences(adata, n_genes=n_genes, chunk_size=chunk_size)
    assert adata.obs["cell_sentence"].tolist() == reference_sentences(X, names, n_genes)
    # each sentence splits back into exactly its genes
    for sentence, row in zip(adata.obs["cell_sentence"], X.astype(np.float32), strict=True):
        assert len(sentence.split()) == min(int((row != 0).sum()), n_genes or X.shape[1])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=expression())
def test_sentences_survive_an_h5ad_round_trip(data, tmp_path_factory):
    X, names, fmt = data
    adata = make_adata(X, names, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sl.pp.cell_sentences(adata)
        path = tmp_path_factory.mktemp("h5ad") / "a.h5ad"
        adata.write_h5ad(path)
        back = ad.read_h5ad(path)
    # anndata may store repeated sentences as a Categorical: the reader every tool uses gives the same text
    assert read_sentences(back, "cell_sentence") == adata.obs["cell_sentence"].tolist()
    assert back.uns["cell_sentence"]["params"]["tie_break"] == "var_order"


def test_an_all_zero_matrix_gives_empty_sentences_and_says_so():
    adata = make_adata(np.zeros((3, 2)), ["A", "B"], "csr")
    with pytest.warns(UserWarning, match="3 cell"):
        sl.pp.cell_sentences(adata)
    assert adata.obs["cell_sentence"].tolist() == ["", "", ""]
