"""The helpers every plot shares: ``save=`` writes exactly where it says, colours come from ``.uns`` as in scanpy."""

from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from sc_llm.pl._base import category_colors, figure_path, finish_figure


@pytest.fixture
def figdir(tmp_path):
    old = sc.settings.figdir, sc.settings.file_format_figs
    sc.settings.figdir, sc.settings.file_format_figs = tmp_path / "figures", "png"
    yield tmp_path / "figures"
    sc.settings.figdir, sc.settings.file_format_figs = old


@pytest.mark.parametrize("kind", [str, Path])
def test_a_path_with_a_folder_is_written_exactly_there(tmp_path, figdir, kind):
    fig, ax = plt.subplots()
    target = tmp_path / "out" / "x.png"  # an absolute path: "/.../out/x.png"
    assert finish_figure(fig, [ax], "plot", show=False, save=kind(target), return_fig=False) == [ax]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not figdir.exists()


def test_save_true_and_a_suffix_go_to_figdir_as_in_scanpy(figdir, tmp_path, monkeypatch):
    assert figure_path(True, "plot") == figdir / "plot.png"
    assert figure_path("_pbmc.pdf", "plot") == figdir / "plot_pbmc.pdf"
    assert figure_path("_pbmc", "plot") == figdir / "plot_pbmc.png"
    fig, ax = plt.subplots()
    finish_figure(fig, [ax], "plot", show=False, save="_pbmc.pdf", return_fig=False)
    assert (figdir / "plot_pbmc.pdf").read_bytes()[:4] == b"%PDF"
    monkeypatch.chdir(tmp_path)  # a relative path with a folder is relative to the working directory
    finish_figure(fig, [ax], "plot", show=False, save="rel/fig", return_fig=False)
    assert (tmp_path / "rel" / "fig").read_bytes()[:4] == b"\x89PNG"  # no extension: the default format


def test_colours_from_uns_when_they_cover_every_category():
    obs = pd.DataFrame({"t": pd.Categorical(["b", "a", "b"], categories=["b", "a"])}, index=["x", "y", "z"])
    adata = ad.AnnData(np.zeros((3, 1), dtype=np.float32), obs=obs)
    adata.uns["t_colors"] = np.array(["#111111", "#222222"])
    assert category_colors(adata, "t", extra=["new"]) == {"b": "#111111", "a": "#222222", "new": "#1f77b4"}
    adata.uns["t_colors"] = ["#111111"]  # too few: scanpy's defaults, nothing written back
    colors = category_colors(adata, "t")
    assert colors == {"b": "#1f77b4", "a": "#ff7f0e"} and list(adata.uns["t_colors"]) == ["#111111"]
    adata.uns["t_colors"] = ["#111111", "not a colour"]
    assert category_colors(adata, "t")["a"] == "#ff7f0e"
