"""The one reader per concept in ``sc_llm._utils``."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from sc_llm._utils._anndata import get_matrix, h5ad_params, read_params
from sc_llm._utils._readers import labelled, read_labels


def test_get_matrix_says_what_it_read(_pbmc):
    a = _pbmc[:5].copy()
    a.layers["counts"] = a.X.copy()
    assert get_matrix(a)[2] == "raw.X"
    assert get_matrix(a, layer="counts")[2] == "layers['counts']"
    assert get_matrix(a, use_raw=False)[2] == "X"


def test_none_params_survive_h5ad(tmp_path):
    a = ad.AnnData(np.ones((2, 2), dtype=np.float32))
    params = {"layer": None, "n": 3, "nested": {"prefix": None, "k": "v"}}
    a.uns["x"] = {"params": h5ad_params(params)}
    a.write_h5ad(tmp_path / "a.h5ad")
    back = read_params(ad.read_h5ad(tmp_path / "a.h5ad").uns, "x")
    assert back["layer"] is None and back["n"] == 3 and back["nested"] == {"prefix": None, "k": "v"}
    assert read_params({}, "missing") == {}


def test_labelled_sorted_or_kept_categories():
    obs = pd.DataFrame({"c": pd.Categorical(["b", None, "a", "b"], categories=["b", "a", "unused"])})
    a = ad.AnnData(np.ones((4, 1), dtype=np.float32), obs=obs)
    has, labels = labelled(read_labels(a, "c"), "obs['c']")
    assert has.tolist() == [True, False, True, True] and list(labels.categories) == ["a", "b"]
    _, kept = labelled(read_labels(a, "c"), "obs['c']", keep_categories=True)
    assert list(kept.categories) == ["b", "a", "unused"] and list(kept) == ["b", "a", "b"]
    with pytest.raises(ValueError, match="no labelled cell"):
        labelled(pd.Series([None, None], dtype=object), "obs['c']")
