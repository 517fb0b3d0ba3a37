import importlib.util
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

CATS = ["CD14+ Monocyte", "CD19+ B", "CD56+ NK", "Dendritic"]


@pytest.fixture(scope="module")
def cells(_pbmc):
    adata = _pbmc[:12].copy()
    sl.pp.cell_sentences(adata, n_genes=10)
    return adata


def test_local_with_categories_scores_every_category(cells, tiny_causal_lm):
    adata = cells.copy()
    sl.tl.llm_annotate(adata, model=tiny_causal_lm, categories=CATS, truth_key="bulk_labels", device="cpu")
    labels = adata.obs["llm_annotate"]
    assert list(labels.cat.categories) == CATS and labels.notna().all()
    scores = adata.obsm["llm_annotate_scores"]
    assert list(scores.columns) == CATS and np.isfinite(scores.to_numpy()).all()
    np.testing.assert_array_equal(labels.astype(str), np.array(CATS)[scores.to_numpy().argmax(1)])
    uns = adata.uns["llm_annotate"]
    assert uns["params"]["template"]["name"] == "c2s_cell_type_prediction"  # the C2S prompt, no list of types
    assert uns["params"]["categories"] == CATS
    truth = adata.obs["bulk_labels"].astype(str).to_numpy()
    assert uns["metrics"]["accuracy"] == pytest.approx(np.mean(truth == labels.astype(str).to_numpy()))


def test_local_free_text_is_the_greedy_answer(cells, tiny_causal_lm):
    from sc_llm.core.llm.choice import conversations, free_text_labels, generate_answers
    from sc_llm.core.llm.loading import load_causal_lm
    from sc_llm.core.llm.rerank_prompts import ANNOTATE

    adata = sl.tl.llm_annotate(cells, model=tiny_causal_lm, n_genes=5, device="cpu", copy=True)
    net, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    sentences = [" ".join(s.split()[:5]) for s in cells.obs["cell_sentence"]]
    chats = conversations(ANNOTATE, sentences, [[]] * cells.n_obs, organism="Homo sapiens")
    expected = free_text_labels(generate_answers(net, tok, chats, cue=ANNOTATE.cue))
    got = [None if pd.isna(v) else v for v in adata.obs["llm_annotate"]]
    assert got == expected
    assert "llm_annotate_scores" not in adata.obsm and "metrics" not in adata.uns["llm_annotate"]


def test_endpoint_with_categories(cells, tmp_path):
    replies = iter(["Answer: CD19+ B cells", "dendritic cell", "a T cell", *["CD56+ NK"] * 20])

    with ChatServer(lambda messages, body: next(replies)) as server:
        adata = sl.tl.llm_annotate(
            cells[:5],
            model="m",
            categories=CATS,
            backend="openai",
            base_url=server.base_url,
            cache_dir=tmp_path,
            truth_key="bulk_labels",
            endpoint_kwargs={"max_concurrency": 1},
            copy=True,
        )
        prompt = server.requests[0]["body"]["messages"][-1]["content"]
    assert "1. CD14+ Monocyte" in prompt and "4. Dendritic" in prompt  # the endpoint sees the list
    labels = adata.obs["llm_annotate"]
    assert labels.iloc[0] == "CD19+ B" and labels.iloc[1] == "Dendritic" and pd.isna(labels.iloc[2])
    uns = adata.uns["llm_annotate"]
    assert uns["n_unmapped"] == 1 and uns["params"]["template"]["name"] == "c2s_cell_type_prediction_choices"
    assert uns["metrics"]["n"] == 5  # the unmapped cell counts as wrong


def test_bad_categories(cells, tiny_causal_lm):
    with pytest.raises(TypeError, match="list"):
        sl.tl.llm_annotate(cells, model=tiny_causal_lm, categories="B cells")
    with pytest.raises(ValueError, match="non-empty"):
        sl.tl.llm_annotate(cells, model=tiny_causal_lm, categories=[])
