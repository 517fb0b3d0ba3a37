from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from sc_llm._utils._anndata import iter_row_chunks
from sc_llm.core.scgpt import CHUNK_CELLS, ScGPTEncoder, embed_cells, is_scgpt_checkpoint, load_encoder


def test_is_scgpt_checkpoint(make_scgpt, tmp_path):
    assert is_scgpt_checkpoint(make_scgpt())
    assert not is_scgpt_checkpoint(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "args.json").write_text("{}")
    assert not is_scgpt_checkpoint(tmp_path / "half")


def test_matches_genes_before_loading_weights(make_scgpt, _pbmc):
    enc = ScGPTEncoder(make_scgpt(), device="cpu")
    names = [*list(_pbmc.raw.var_names[:30]), "NOT_A_GENE", "<cls>"]
    found = enc.match_genes(names)
    assert enc._module is None  # no weights read to check the genes
    assert (found.n_genes, found.n_matched) == (32, 30)
    assert found.coverage == pytest.approx(30 / 32)
    assert (found.column_ids[:30] >= 0).all() and (found.column_ids[30:] == -1).all()
    with pytest.raises(ValueError, match="None of the 2 genes"):
        enc.match_genes(["cd3e", "ms4a1"])


def test_embed_equals_the_core_pipeline(make_scgpt, _pbmc):
    folder = make_scgpt()
    X = sparse.csr_matrix(_pbmc.raw.X[:40], dtype=np.float32)
    enc = ScGPTEncoder(folder, device="cpu")
    ids = enc.match_genes(list(_pbmc.raw.var_names)).column_ids
    emb, stats = enc.embed(iter_row_chunks(X, CHUNK_CELLS), ids, 40, batch_size=7, progress=False)
    ref, ref_stats = embed_cells(
        load_encoder(folder, enc.config, enc.vocab),
        iter_row_chunks(X, CHUNK_CELLS),
        ids,
        40,
        cls_id=enc.vocab["<cls>"],
        pad_id=enc.vocab[enc.config.pad_token],
        pad_value=enc.config.pad_value,
        batch_size=7,
        n_bins=enc.config.n_bins,
        device=enc.device,
        progress=False,
    )
    np.testing.assert_array_equal(emb, ref)
    assert stats == ref_stats and emb.shape == (40, enc.config.d_model)
    assert enc.params()["model"] == str(folder) and enc.params()["dtype"] == "float32"


@pytest.mark.gpu
def test_cuda_bf16_matches_cpu(make_scgpt, _pbmc):
    """scGPT on CUDA (bf16 autocast, batches prefetched in pinned memory) against the CPU path: cosine >= 0.99."""
    folder = make_scgpt()
    X = sparse.csr_matrix(_pbmc.raw.X[:100], dtype=np.float32)
    out = {}
    for device in ("cpu", "cuda"):
        enc = ScGPTEncoder(folder, device=device)
        ids = enc.match_genes(list(_pbmc.raw.var_names)).column_ids
        out[device], _ = enc.embed(iter_row_chunks(X, 30), ids, 100, batch_size=16, progress=False)
    assert enc.params()["dtype"] in ("bfloat16", "float16")
    assert (out["cpu"] * out["cuda"]).sum(1).min() >= 0.99  # both unit-norm
