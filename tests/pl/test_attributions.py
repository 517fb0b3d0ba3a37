from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

import sc_llm as sl

GROUPS = ["CD14+ Monocyte", "CD19+ B"]
MARKERS = {"CD14+ Monocyte": ["LYZ", "S100A8", "S100A9", "FCN1", "CST3", "TYROBP"], "CD19+ B": ["CD79A", "MS4A1"]}


@pytest.fixture(scope="module")
def attributed(_pbmc, tiny_bert_dir):
    adata = _pbmc[_pbmc.obs["bulk_labels"].isin(GROUPS)].copy()
    sl.pp.cell_sentences(adata)
    sl.tl.embed(adata, model=str(tiny_bert_dir), key_added="X_tiny", max_length=24, progress=False)
    model = sl.tl.ScMPT.fit(adata, label_key="bulk_labels", use_reps=["X_tiny"], max_epochs=3, progress=False)
    kwargs = {"classifier": model, "groupby": "bulk_labels", "n_cells": 2, "top_n": 6, "progress": False}
    sl.tl.attributions(adata, method="integrated_gradients", n_steps=8, markers=MARKERS, **kwargs)
    sl.tl.attributions(adata, method="lime", num_samples=40, markers=MARKERS, **kwargs)
    return adata


def test_methods_side_by_side(attributed):
    fig = sl.pl.attributions(attributed, return_fig=True, show=False)
    table = attributed.uns["attributions"]["top_genes"]
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 4  # 2 groups x 2 methods
    titles = [a.get_title() for a in axes]
    assert titles[0] == "CD14+ Monocyte\nIntegrated gradients" and titles[1] == "CD14+ Monocyte\nLIME"
    for a in axes:
        group, method = a.get_title().split("\n")
        method = {"Integrated gradients": "integrated_gradients", "LIME": "lime"}[method]
        sub = table[(table["group"] == group) & (table["method"] == method)].sort_values("rank")
        from_top = [
            t.get_text() for _, t in sorted(zip(a.get_yticks(), a.get_yticklabels(), strict=True), key=lambda p: -p[0])
        ]
        assert from_top == sub["gene"].tolist()  # rank 1 at the top
        widths = sorted(round(p.get_width(), 6) for p in a.patches)
        assert widths == sorted(round(s, 6) for s in sub["score"])
        red = {t.get_text() for t in a.get_yticklabels() if t.get_fontweight() == "bold"}
        assert red == set(sub.loc[sub["is_marker"], "gene"])
    plt.close(fig)


def test_single_panel_into_ax_and_save(attributed, tmp_path):
    import scanpy as sc

    old = sc.settings.figdir
    sc.settings.figdir = tmp_path
    try:
        fig, ax = plt.subplots()
        out = sl.pl.attributions(
            attributed, groups=["CD19+ B"], methods=["lime"], top_n=3, ax=ax, show=False, save="_b.png"
        )
    finally:
        sc.settings.figdir = old
    assert out == [ax] and ax.get_title() == "CD19+ B" and len(ax.patches) <= 3
    assert (tmp_path / "attributions_b.png").is_file()
    plt.close(fig)


def test_errors(attributed, pbmc):
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.attributions"):
        sl.pl.attributions(pbmc)
    with pytest.raises(ValueError, match="Groups"):
        sl.pl.attributions(attributed, groups=["Dendritic"], show=False)
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="one panel"):
        sl.pl.attributions(attributed, ax=ax, show=False)
    plt.close("all")
