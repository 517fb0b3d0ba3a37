import subprocess
import sys

import anndata as ad
import pytest

from sc_llm.cli import main


def test_demo_with_a_tiny_local_model(tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", str(tiny_bert_dir), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "text encoder 10-NN" in printed and "PCA 10-NN" in printed and "macro_f1" in printed
    adata = ad.read_h5ad(out / "pbmc68k_annotated.h5ad")
    assert {"knn_text", "knn_pca", "split", "cell_sentence"} <= set(adata.obs.columns)
    assert adata.obsm["X_text"].shape == (700, 32)
    test = adata.obs["split"] == "test"
    assert test.sum() == 140
    scores = adata.uns["knn_pca"]["metrics_test"]
    assert scores["accuracy"] == pytest.approx((adata.obs["knn_pca"][test] == adata.obs["bulk_labels"][test]).mean())
    assert (out / "umap_true_vs_predicted.png").stat().st_size > 10_000


@pytest.mark.slow
def test_demo_entry_point_with_packaged_minilm(tmp_path):
    """`sc-llm demo` as a user runs it: offline, the real packaged MiniLM."""
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from sc_llm.cli import main; sys.exit(main())",
        "demo",
        "--out",
        str(out),
        "--no-progress",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    rows = {
        line.rsplit(maxsplit=2)[0].strip(): float(line.split()[-2])
        for line in res.stdout.splitlines()
        if "10-NN" in line
    }
    assert rows["text encoder 10-NN"] > 0.6 and rows["PCA 10-NN"] > 0.7  # accuracy on 140 held-out cells
    assert (out / "pbmc68k_annotated.h5ad").is_file()


def test_help_lists_demo():
    res = subprocess.run([sys.executable, "-m", "sc_llm.cli", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in res.stdout
