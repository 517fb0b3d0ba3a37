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


HEAVY = ("numpy", "pandas", "scipy", "anndata", "scanpy", "sklearn", "torch", "transformers", "matplotlib")


def test_help_and_version_import_nothing_heavy():
    """`sc-llm --help` answers at once: parsing the command line imports only the standard library."""
    code = (
        "import sys; from sc_llm.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit as e: assert e.code == 0\n"
        f"print('loaded:', ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().endswith("loaded:"), res.stdout[-300:]


@pytest.mark.parametrize("args", [["-m", "sc_llm", "--version"], ["-m", "sc_llm.cli", "--version"]])
def test_version_and_python_dash_m(args):
    import sc_llm

    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == f"sc-llm {sc_llm.__version__}"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["nope"], "invalid choice: 'nope'"),
        (["demo", "--seed", "x"], "invalid int value: 'x'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, fragment):
    res = subprocess.run([sys.executable, "-m", "sc_llm", *args], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "--help`" in lines[0], res.stderr


def test_out_pointing_at_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(target)])
    assert exc.value.code == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_demo_with_a_bad_model_fails_in_one_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", "no-such-model-anywhere", "--no-progress"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("sc-llm: error: Could not load model 'no-such-model-anywhere'")
    assert "hf download" in lines[0] and "--traceback" in lines[0]
    assert not out.exists()


def test_traceback_flag_shows_the_exception(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="Could not load model"):
        main(["--traceback", "demo", "--out", str(tmp_path / "d"), "--model", "no-such-model", "--no-progress"])
