import pytest

import sc_llm as sl


def test_pbmc68k_reduced():
    adata = sl.datasets.pbmc68k_reduced()
    assert adata.shape == (700, 765) and adata.raw is not None and "bulk_labels" in adata.obs


def test_kang2018_shipped_offline():
    adata = sl.datasets.kang2018()
    assert adata.shape == (1975, 6998)
    assert set(adata.obs["condition"]) == {"control", "stimulated"}
    assert adata.obs["cell_type"].nunique() == 7


def test_kang2018_from_local_path(kang_path, tmp_path):
    (tmp_path / "k.h5ad").write_bytes(kang_path.read_bytes())
    adata = sl.datasets.kang2018(tmp_path / "k.h5ad")
    assert adata.shape == (1975, 6998)
    assert set(adata.obs["condition"]) == {"control", "stimulated"}
    assert adata.obs["cell_type"].nunique() == 7


def test_kang2018_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="path=None"):
        sl.datasets.kang2018(tmp_path / "nope.h5ad")
