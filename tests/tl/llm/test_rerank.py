import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sc_llm as sl

_spec = importlib.util.spec_from_file_location(
    "openai_compatible_server", Path(__file__).parents[2] / "openai_compatible_server.py"
)
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)
ChatServer = _server.ChatServer


@pytest.fixture(scope="module")
def ranked(_pbmc):
    """60 pbmc68k cells with sentences and a leave-one-out PCA 10-NN top-3."""
    adata = _pbmc[:60].copy()
    sl.pp.cell_sentences(adata, n_genes=20)
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="bulk_labels")
    return adata


def _candidates(adata):
    top = adata.obsm["knn_label_top3"]
    return [
        [v for v in row if not pd.isna(v)] for row in top[["label_1", "label_2", "label_3"]].itertuples(index=False)
    ]


def test_local_backend_picks_a_candidate_and_writes_everything(ranked, tiny_causal_lm):
    adata = ranked.copy()
    sl.tl.llm_rerank(adata, model=tiny_causal_lm, truth_key="bulk_labels", n_genes=10, batch_size=16, device="cpu")
    cands = _candidates(adata)
    labels = adata.obs["llm_rerank"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert list(labels.cat.categories) == list(adata.obsm["knn_label_top3"]["label_1"].cat.categories)
    assert all(lab in c for lab, c in zip(labels, cands, strict=True))
    first = np.array([c[0] for c in cands])
    np.testing.assert_array_equal(adata.obs["llm_rerank_changed"], labels.astype(str).to_numpy() != first)
    scores = adata.obsm["llm_rerank_scores"]
    assert list(scores.columns) == ["score_1", "score_2", "score_3", "prob_1", "prob_2", "prob_3"]
    n_cands = np.array([len(c) for c in cands])
    np.testing.assert_array_equal(scores[["score_1", "score_2", "score_3"]].notna().sum(1), n_cands)
    best = np.nanargmax(scores[["score_1", "score_2", "score_3"]].to_numpy(), axis=1)
    assert all(labels.iloc[i] == cands[i][b] for i, b in enumerate(best))
    uns = adata.uns["llm_rerank"]
    assert uns["params"]["backend"] == "local" and uns["params"]["n_genes"] == 10
    assert uns["params"]["template"]["name"] == "rerank_top3" and uns["params"]["chat_template"] is False
    assert uns["n_changed"] == int(adata.obs["llm_rerank_changed"].sum())
    m = uns["metrics"]
    assert m["first"]["accuracy"] == pytest.approx(np.mean(first == adata.obs["bulk_labels"].astype(str)))
    assert m["n_changed"] == uns["n_changed"] and m["n_changed_correct"] <= m["n_changed"]
    # deterministic, and another batch size gives the same answers
    again = sl.tl.llm_rerank(ranked, model=tiny_causal_lm, n_genes=10, batch_size=3, device="cpu", copy=True)
    assert (again.obs["llm_rerank"] == labels).all()
    np.testing.assert_allclose(again.obsm["llm_rerank_scores"].to_numpy(), scores.to_numpy(), atol=1e-5)
    assert "llm_rerank" not in ranked.obs  # copy=True left the input alone


def test_clear_errors_leave_adata_unchanged(ranked, tiny_causal_lm):
    adata = ranked.copy()
    before = (set(adata.obs), set(adata.obsm), set(adata.uns))
    with pytest.raises(KeyError, match="knn_annotate"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, candidates_key="nope")
    with pytest.raises(KeyError, match="cell_sentences"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, sentence_key="nope")
    with pytest.raises(ValueError, match="backend"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, backend="vllm")
    with pytest.raises(ValueError, match="openai"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="endpoint_kwargs"):
        sl.tl.llm_rerank(adata, model="m", backend="openai", endpoint_kwargs={"api_key": "x"})
    with pytest.raises(ValueError, match="unknown fields"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, template="{sentence} {candidates} {cell_type}")
    adata.obsm["bad"] = np.zeros((adata.n_obs, 3))
    with pytest.raises(ValueError, match="label_1"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm, candidates_key="bad")
    adata.obs.loc[adata.obs_names[0], "cell_sentence"] = ""
    with pytest.raises(ValueError, match="empty"):
        sl.tl.llm_rerank(adata, model=tiny_causal_lm)
    del adata.obsm["bad"]
    assert (set(adata.obs), set(adata.obsm), set(adata.uns)) == before


def test_endpoint_backend_against_a_local_server(ranked, tmp_path, monkeypatch):
    secret = "sk-secret-from-env"
    monkeypatch.setenv("SC_LLM_OPENAI_API_KEY", secret)
    adata = ranked[:6].copy()
    cands = _candidates(adata)
    asked = [i for i, c in enumerate(cands) if len(c) > 1]
    assert len(asked) >= 3
    reasoning = f"<think>{cands[asked[0]][0]}? no.</think>\nAnswer: **{cands[asked[0]][1]}**"
    replies = {asked[0]: reasoning, asked[1]: "no idea"}

    def respond(messages, body):  # replies chosen per cell by the sentence in the prompt
        genes = [" ".join(adata.obs["cell_sentence"].iloc[i].split()[:10]) + "\n" for i in asked]
        row = next(i for i, g in zip(asked, genes, strict=True) if g in messages[-1]["content"])
        return replies.get(row, cands[row][0].lower().replace(" ", ""))

    kwargs = {
        "model": "served-model",
        "backend": "openai",
        "truth_key": "bulk_labels",
        "n_genes": 10,
        "cache_dir": tmp_path,
        "endpoint_kwargs": {"timeout": 0.5, "max_retries": 2, "backoff": 0.01, "max_concurrency": 2},
    }
    with ChatServer(respond, delay=2.0) as server:
        server.faults.extend(["timeout", "429"])
        sl.tl.llm_rerank(adata, base_url=server.base_url, **kwargs)
        n_http = len(server.requests)
        rerun = sl.tl.llm_rerank(adata, base_url=server.base_url, copy=True, **kwargs)
        assert len(server.requests) == n_http  # the rerun asked nothing
    labels = adata.obs["llm_rerank"].astype(str).tolist()
    assert labels[asked[0]] == cands[asked[0]][1]  # reasoning text mapped to the second candidate
    assert labels[asked[1]] == cands[asked[1]][0]  # unmappable: the first candidate is kept ...
    assert not adata.obs["llm_rerank_mapped"].iloc[asked[1]]  # ... and counted
    uns = adata.uns["llm_rerank"]
    assert uns["n_unmapped"] == 1 and uns["n_failed"] == 0 and uns["stats"]["retries"] == 2
    assert uns["stats"]["requests"] == len(asked) and n_http == len(asked) + 2
    assert rerun.uns["llm_rerank"]["stats"]["cache_hits"] == len(asked)
    assert (rerun.obs["llm_rerank"] == adata.obs["llm_rerank"]).all()
    assert "llm_rerank_scores" not in adata.obsm
    assert uns["params"]["endpoint"]["base_url"].startswith("http://127.0.0.1:")
    assert secret not in json.dumps(uns, default=str)


@pytest.mark.slow
def test_smollm2_gguf_reranks_kang_cells(smollm2_gguf):
    adata = sl.datasets.kang2018()
    adata = adata[np.random.default_rng(0).choice(adata.n_obs, 400, replace=False)].copy()
    sl.pp.cell_sentences(adata, use_raw=False)
    import scanpy as sc

    sc.pp.pca(adata, n_comps=20, random_state=0)
    sl.tl.knn_annotate(adata, use_rep="X_pca", label_key="cell_type")
    sub = adata[:12].copy()
    gguf = {"model": smollm2_gguf.parent, "gguf_file": smollm2_gguf.name}
    sl.tl.llm_rerank(sub, **gguf, n_genes=20, truth_key="cell_type", device="cpu")
    uns = sub.uns["llm_rerank"]
    assert uns["params"]["chat_template"] is True  # SmolLM2-Instruct's chat template wraps the prompt
    cands = _candidates(sub)
    assert all(lab in c for lab, c in zip(sub.obs["llm_rerank"], cands, strict=True))
    scores = sub.obsm["llm_rerank_scores"]
    probs = scores[[c for c in scores.columns if c.startswith("prob_")]].to_numpy()
    np.testing.assert_allclose(np.nansum(probs, 1), 1.0)
    assert 0 <= uns["metrics"]["reranked"]["accuracy"] <= 1
