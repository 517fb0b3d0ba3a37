"""Property tests of the parsers of user text: cell sentences, gene lists, marker mappings, counts."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sc_llm._utils._sentences import read_sentences, split_sentence
from sc_llm._utils._validation import (
    as_gene_list,
    as_marker_mapping,
    as_name_list,
    check_count,
)

WORD = st.text(st.characters(blacklist_categories=("Z", "C"), blacklist_characters=",;"), min_size=1, max_size=8)
GAP = st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\u00a0"]), min_size=1, max_size=3).map("".join)


@st.composite
def spaced(draw, words):
    """``words`` joined by arbitrary runs of whitespace, with optional leading/trailing whitespace."""
    gaps = draw(st.lists(GAP, min_size=len(words) + 1, max_size=len(words) + 1))
    gaps[0] = draw(st.sampled_from(["", gaps[0]]))
    gaps[-1] = draw(st.sampled_from(["", gaps[-1]]))
    return gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:], strict=True))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), words=st.lists(WORD, max_size=12))
def test_split_sentence_recovers_the_words_whatever_the_whitespace(data, words):
    assert split_sentence(data.draw(spaced(words))) == words
    assert split_sentence(" ".join(words)) == words


@settings(max_examples=20, deadline=None)
@given(data=st.data(), rows=st.lists(st.lists(WORD, max_size=5), min_size=1, max_size=6), categorical=st.booleans())
def test_read_sentences_normalises_whitespace_and_accepts_categoricals(data, rows, categorical):
    texts = [data.draw(spaced(words)) for words in rows]
    col = pd.Categorical(texts) if categorical else pd.Series(texts, dtype=object).to_numpy()
    adata = ad.AnnData(obs=pd.DataFrame({"s": col}, index=[f"c{i}" for i in range(len(rows))]))
    assert read_sentences(adata, "s") == [" ".join(words) for words in rows]


def test_read_sentences_missing_values_are_empty_with_a_warning_and_numbers_are_refused():
    adata = ad.AnnData(obs=pd.DataFrame({"s": ["A B", None], "n": [1.0, 2.0]}, index=["a", "b"]))
    with pytest.warns(UserWarning, match="1 cell"):
        assert read_sentences(adata, "s") == ["A B", ""]
    with pytest.raises(TypeError, match="holds numbers"):
        read_sentences(adata, "n")
    adata.obs["mixed"] = pd.Series(["A", 3], index=adata.obs_names, dtype=object)
    with pytest.raises(TypeError, match="not text"):
        read_sentences(adata, "mixed")
    with pytest.raises(KeyError, match=r"sl\.pp\.cell_sentences"):
        read_sentences(adata, "nope")


@settings(max_examples=50, deadline=None)
@given(genes=st.lists(WORD, max_size=10), sep=st.sampled_from([" ", ",", ", ", ";", "\n", " , "]))
def test_gene_list_from_one_string_or_a_list(genes, sep):
    assert as_gene_list(sep.join(genes)) == genes
    assert as_gene_list(genes) == genes
    assert as_gene_list([f" {g} " for g in genes]) == genes


@settings(max_examples=30, deadline=None)
@given(mapping=st.dictionaries(WORD, st.lists(WORD, max_size=5), max_size=5), as_text=st.booleans())
def test_marker_mapping_values_as_lists_or_one_string(mapping, as_text):
    given_ = {g: ", ".join(v) if as_text else v for g, v in mapping.items()}
    assert as_marker_mapping(given_) == {g: set(v) for g, v in mapping.items()}


@pytest.mark.parametrize("bad", [["CD3D", "MS4A1"], {"CD3D"}, "CD3D", 3])
def test_marker_mapping_refuses_other_shapes(bad):
    with pytest.raises(TypeError, match="must map each group"):
        as_marker_mapping(bad)


def test_name_list_one_string_is_one_name():
    assert as_name_list("X_pca", "use_reps") == ["X_pca"]
    assert as_name_list(np.array(["a", "b"]), "groups") == ["a", "b"]
    with pytest.raises(TypeError, match="must hold names"):
        as_name_list(["a", 1], "groups")


@settings(max_examples=30, deadline=None)
@given(value=st.integers(1, 10**9))
def test_check_count_keeps_integers(value):
    assert check_count(value, "n") == value and check_count(np.int64(value), "n") == value


@pytest.mark.parametrize("bad", [True, False, 2.5, 2.0, "3", np.float32(3)])
def test_check_count_refuses_non_integers(bad):
    with warnings.catch_warnings(), pytest.raises(TypeError, match="must be an integer"):
        check_count(bad, "n")
