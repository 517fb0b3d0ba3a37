"""sl.pl.cells_with_real: predicted or generated cells embedded with real ones (PCA of the real cells, joint UMAP)."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

import sc_llm as sl


def snapshot(adata):
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns), adata.var_names.tolist()


@pytest.fixture
def pair():
    """60 real cells of two types (colours stored) and 15 'predicted' B cells over the same genes, shuffled."""
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(25)]
    types = np.repeat(["B", "NK"], 30)
    X = rng.poisson(1.0, (60, 25)).astype(np.float32)
    X[types == "NK", :5] += 4
    real = ad.AnnData(X, obs=pd.DataFrame({"cell_type": pd.Categorical(types)}, index=[f"r{i}" for i in range(60)]))
    real.var_names = genes
    real.uns["cell_type_colors"] = ["#aa0000", "#0000aa"]
    order = rng.permutation(25)
    pred = ad.AnnData(X[:15][:, order] + 0.1, obs=pd.DataFrame(index=[f"p{i}" for i in range(15)]))
    pred.var_names = [genes[i] for i in order]
    pred.obs["cell_type"] = pd.Categorical(["B"] * 15)
    pred.obs["method"] = pd.Categorical(["mean_shift"] * 15)
    return pred, real


def points(ax):
    return sum(c.get_offsets().shape[0] for c in ax.collections)


def test_pca_of_the_real_cells_coloured_by_source_and_type(pair, tmp_path):
    from sklearn.decomposition import PCA

    pred, real = pair
    fig = sl.pl.cells_with_real(pred, real=real, color="cell_type", return_fig=True, save=tmp_path / "c.png")
    assert (tmp_path / "c.png").is_file()
    source, by_type = fig.axes
    assert points(source) == points(by_type) == 75
    assert source.get_title() == "source (PCA fitted on the real cells)" and by_type.get_title() == "cell_type"
    assert source.get_xlabel().startswith("PC1 (") and source.get_ylabel().startswith("PC2 (")
    assert [t.get_text() for t in source.get_legend().get_texts()] == ["real", "mean_shift"]
    real_dots = source.collections[0].get_offsets()
    expected = PCA(n_components=24, random_state=0).fit_transform(real.X)[:, :2]
    np.testing.assert_allclose(np.abs(real_dots), np.abs(expected), rtol=1e-3, atol=1e-3)  # fitted on real cells only
    colours = {to_hex(c.get_facecolor()[0]) for c in by_type.collections}
    assert colours == {"#aa0000", "#0000aa"}  # real.uns['cell_type_colors']
    legend = [t.get_text() for t in by_type.get_legend().get_texts()]
    assert legend == ["B", "NK", "real cells", "mean_shift cells"]


def test_joint_umap_into_given_axes(pair):
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # umap-learn's import-time ImportWarning (hidden by Python's default filters)
        warnings.simplefilter("ignore", ImportWarning)
        import umap  # noqa: F401
    pred, real = pair
    _, ax = plt.subplots()
    assert sl.pl.cells_with_real(
        pred, real=real, basis="umap", n_neighbors=5, ax=ax, label="generated", show=False
    ) == [ax]
    assert points(ax) == 75 and ax.get_xlabel() == "UMAP1"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "generated"]


def test_kang_prediction():
    with warnings.catch_warnings():  # the shipped file's old encoding, not the plot's
        warnings.simplefilter("ignore")
        kang = sl.datasets.kang2018()
    kang = kang[kang.obs["cell_type"].isin(["B", "NK"])]
    kang = kang[:, np.argsort(-kang.X.getnnz(axis=0))[:300]].copy()
    train = kang[~((kang.obs["cell_type"] == "NK") & (kang.obs["condition"] == "stimulated")).to_numpy()].copy()
    pred = sl.tl.perturb(
        train, condition_key="condition", control="control", perturbation="stimulated", cell_type_key="cell_type"
    )
    fig = sl.pl.cells_with_real(pred, real=kang, color=["cell_type", "condition"], return_fig=True)
    assert len(fig.axes) == 3 and all(points(a) == kang.n_obs + pred.n_obs for a in fig.axes)
    stimulated = kang.uns["condition_colors"][list(kang.obs["condition"].cat.categories).index("stimulated")]
    assert to_hex(stimulated) in {to_hex(c.get_facecolor()[0]) for c in fig.axes[2].collections}


def test_errors_name_the_fix_and_change_nothing(pair):
    pred, real = pair
    before = snapshot(pred), snapshot(real)
    with pytest.raises(ValueError, match=r"different genes .* subset both to their common genes"):
        sl.pl.cells_with_real(pred[:, :20].copy(), real=real, show=False)
    with pytest.raises(KeyError, match=r"`condition` is not an `\.obs` column of the cells and the real cells"):
        sl.pl.cells_with_real(pred, real=real, color="condition", show=False)
    with pytest.raises(ValueError, match="`basis` must be 'pca' or 'umap'"):
        sl.pl.cells_with_real(pred, real=real, basis="tsne", show=False)
    assert (snapshot(pred), snapshot(real)) == before
