"""`sc-llm embed`: files in, a resumable store (and optionally an AnnData) out, a one-line summary."""

import anndata as ad
import numpy as np
import pytest

import sc_llm as sl
from sc_llm.cli import main


@pytest.fixture
def h5ad(tmp_path, _pbmc):
    path = tmp_path / "cells.h5ad"
    _pbmc[:100].copy().write_h5ad(path)
    return path


def test_embed_command_writes_store_and_anndata_and_resumes(h5ad, tiny_bert_dir, tmp_path, capsys):
    args = [
        "embed",
        str(h5ad),
        "--store",
        str(tmp_path / "store"),
        "--model",
        str(tiny_bert_dir),
        "--n-genes",
        "20",
        "--shard-size",
        "40",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    assert main([*args, "--out", str(tmp_path / "out.h5ad"), "--key-added", "X_tiny"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("sc-llm embed: 3 shard(s) computed, 0 already done, 100 cells") and "out.h5ad" in line
    out = ad.read_h5ad(tmp_path / "out.h5ad")
    store = sl.jobs.ShardStore(tmp_path / "store")
    np.testing.assert_array_equal(out.obsm["X_tiny"], store.read("embedding"))
    assert list(out.obs_names) == list(ad.read_h5ad(h5ad).obs_names) and "bulk_labels" in out.obs
    params = out.uns["tiny"]["params"]
    assert params["n_genes"] == 20 and params["shard_size"] == 40 and params["model"] == str(tiny_bert_dir)

    with pytest.raises(SystemExit) as e:  # an existing store needs --resume or --overwrite
        main(args)
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert "0 shard(s) computed, 3 already done" in capsys.readouterr().out
    assert main([*args, "--resume", "--max-length", "12"]) == 1  # another job: a one-line error, exit code 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sc-llm: error:") and "max_length" in err and "\n" not in err
    assert main([*args, "--overwrite", "--max-length", "12"]) == 0
    assert "3 shard(s) computed" in capsys.readouterr().out


def test_embed_command_checks_options_first(h5ad, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["embed", str(h5ad), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "out.csv")])
    assert e.value.code == 2 and ".h5ad or .zarr" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main(["embed", str(h5ad), "--store", str(tmp_path / "s"), "--host-cpus", "2"]) == 1  # local engine
    err = capsys.readouterr().err.strip()
    assert err.startswith("sc-llm: error:") and "engine='ray'" in err and "\n" not in err
    assert not (tmp_path / "s").exists()
