"""CUDA paths of the sharded jobs: run only where a GPU is present (marker 'gpu'); checked against the CPU path."""

import numpy as np
import pytest

import sc_llm as sl

pytestmark = pytest.mark.gpu


def cosine_rows(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.fixture
def h5ad(tmp_path, _pbmc):
    path = tmp_path / "cells.h5ad"
    _pbmc[:200].copy().write_h5ad(path)
    return path


def test_minilm_job_on_cuda_bf16_matches_cpu(h5ad, minilm_path, tmp_path):
    kw = {"model": minilm_path, "n_genes": 100, "shard_size": 64, "progress": False}
    gpu = sl.jobs.embed(h5ad, tmp_path / "gpu", device="cuda", **kw)
    cpu = sl.jobs.embed(h5ad, tmp_path / "cpu", device="cpu", **kw)
    assert gpu.manifest["params"]["device"] == "cuda"
    assert cosine_rows(gpu.read("embedding"), cpu.read("embedding")).min() >= 0.99
    # resumable on the GPU as on the CPU: a rerun computes nothing
    again = sl.jobs.embed(h5ad, tmp_path / "gpu", device="cuda", **kw)
    assert again.last_run.n_computed == 0


def test_cache_dir_on_cuda_matches_cpu(_pbmc, minilm_path, tmp_path):
    adata = _pbmc[:100].copy()
    sl.pp.cell_sentences(adata, n_genes=100)
    kw = {"model": minilm_path, "cache_dir": tmp_path, "shard_size": 50, "progress": False, "copy": True}
    gpu = sl.tl.embed(adata, device="cuda", key_added="X_gpu", **kw)
    cpu = sl.tl.embed(adata, device="cpu", key_added="X_cpu", **kw)
    assert gpu.uns["gpu"]["params"]["dtype"] == "bfloat16" and gpu.uns["gpu"]["params"]["device"] == "cuda"
    assert cosine_rows(gpu.obsm["X_gpu"], cpu.obsm["X_cpu"]).min() >= 0.99


def test_ray_worker_with_one_gpu_matches_cpu(h5ad, tiny_bert_dir, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine is the optional extra sc-llm[scale]")
    kw = {"model": str(tiny_bert_dir), "n_genes": 30, "shard_size": 50, "progress": False}
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        gpu = sl.jobs.embed(h5ad, tmp_path / "gpu", engine="ray", num_workers=1, num_gpus_per_worker=1, **kw)
    finally:
        ray.shutdown()
    cpu = sl.jobs.embed(h5ad, tmp_path / "cpu", device="cpu", **kw)
    assert gpu.manifest["params"]["device"] == "cuda"
    assert cosine_rows(gpu.read("embedding"), cpu.read("embedding")).min() >= 0.99
