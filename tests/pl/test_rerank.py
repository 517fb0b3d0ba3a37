"""sl.pl.rerank_changes: answers kept or changed by sl.tl.llm_rerank, right or wrong, overall and per class."""

import numpy as np
import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.tl.llm._rerank import rerank_metrics


def snapshot(adata):
    return list(adata.obs.columns), list(adata.obsm), list(adata.uns)


@pytest.fixture(scope="module")
def reranked(_pbmc):
    """pbmc68k with a leave-one-out 10-NN top-3 and a rerank written as `sl.tl.llm_rerank` writes it (random picks)."""
    adata = _pbmc.copy()
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")
    top = adata.obsm["knn_label_top3"]
    candidates = [
        [v for v in row if not pd.isna(v)] for row in top[["label_1", "label_2", "label_3"]].itertuples(False)
    ]
    rng = np.random.default_rng(0)
    chosen = np.array([c[0] if rng.random() < 0.6 else c[rng.integers(len(c))] for c in candidates], dtype=object)
    first = np.array([c[0] for c in candidates], dtype=object)
    adata.obs["llm_rerank"] = pd.Categorical(chosen)
    adata.obs["llm_rerank_changed"] = chosen != first
    params = {"candidates_key": "knn_label_top3", "truth_key": "bulk_labels"}
    metrics = rerank_metrics(adata.obs["bulk_labels"], first, chosen, candidates)
    adata.uns["llm_rerank"] = {"params": params, "n_changed": int((chosen != first).sum()), "metrics": metrics}
    return adata


def test_totals_match_the_rerank_metrics(reranked, tmp_path):
    target = tmp_path / "sub" / "rerank.png"
    axes = sl.pl.rerank_changes(reranked, show=False, save=str(target))
    assert target.is_file()
    ax = axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "kept, right",
        "kept, wrong",
        "changed to right",
        "changed, right to wrong",
        "changed, wrong to wrong",
    ]
    counts = dict(zip(labels, [int(p.get_width()) for p in sorted(ax.patches, key=lambda p: -p.get_y())], strict=True))
    m = reranked.uns["llm_rerank"]["metrics"]
    assert counts["changed to right"] == m["n_changed_correct"]
    assert counts["changed, right to wrong"] == m["n_changed_from_correct"]
    assert sum(v for k, v in counts.items() if k.startswith("changed")) == m["n_changed"]
    assert sum(counts.values()) == reranked.n_obs
    first, after = m["first"]["accuracy"], m["reranked"]["accuracy"]
    assert f"accuracy {first:.3f} → {after:.3f}" in ax.get_title() and ax.get_xlabel() == "cells"


def test_per_class_and_without_candidates(reranked):
    fig = sl.pl.rerank_changes(reranked, per_class=True, return_fig=True)
    ax = fig.axes[0]
    classes = list(reranked.obs["bulk_labels"].cat.categories)
    sizes = reranked.obs["bulk_labels"].value_counts()
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{c} ({sizes[c]})" for c in classes]  # top to bottom
    assert len(ax.patches) == 10 * 5  # classes x outcomes, stacked
    assert [t.get_text() for t in ax.get_legend().get_texts()][3] == "changed, right to wrong"
    bare = reranked.copy()
    del bare.obsm["knn_label_top3"]  # the first candidates are gone: changes to wrong stay one bar
    ax = sl.pl.rerank_changes(bare, show=False)[0]
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "changed to wrong" and len(ax.patches) == 4


def test_errors_name_the_fix(reranked, pbmc):
    with pytest.raises(KeyError, match=r"Run `sl\.tl\.llm_rerank\(adata, model=\.\.\., truth_key=\.\.\.\)` first"):
        sl.pl.rerank_changes(pbmc, show=False)
    stale = reranked.copy()
    stale.obsm["knn_label_top3"] = stale.obsm["knn_label_top3"].iloc[::-1].set_axis(stale.obs_names)
    before = snapshot(stale)
    with pytest.raises(ValueError, match="no longer matches"):
        sl.pl.rerank_changes(stale, show=False)
    no_truth = reranked.copy()
    no_truth.uns["llm_rerank"]["params"]["truth_key"] = ""
    with pytest.raises(ValueError, match="Pass `truth_key=`"):
        sl.pl.rerank_changes(no_truth, show=False)
    assert snapshot(stale) == before


def test_a_real_rerank(_pbmc, tiny_causal_lm):
    adata = _pbmc[:40].copy()
    sl.pp.cell_sentences(adata, n_genes=10)
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")
    sl.tl.llm_rerank(adata, model=tiny_causal_lm, truth_key="bulk_labels", n_genes=10, batch_size=20, device="cpu")
    ax = sl.pl.rerank_changes(adata, show=False)[0]
    widths = {
        t.get_text(): p.get_width()
        for t, p in zip(ax.get_yticklabels(), sorted(ax.patches, key=lambda p: -p.get_y()), strict=True)
    }
    assert widths["changed to right"] == adata.uns["llm_rerank"]["metrics"]["n_changed_correct"]
    assert sum(widths.values()) == 40
