"""Every Python block of README.md runs as written, top to bottom, in one namespace (offline)."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SCGPT_PLACEHOLDER = '"path/to/scGPT_human"'


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_figures_exist_and_come_from_tagged_tutorial_cells():
    """The README shows stored figures (``scripts/readme_figures.py``), each from a tagged tutorial cell."""
    import nbformat

    shown = re.findall(r"!\[[^\]]*\]\((docs/_static/readme/([\w-]+)\.png)\)", README.read_text())
    assert len(shown) >= 3
    tags = {
        tag.split(":", 1)[1]
        for path in (README.parent / "tutorials").glob("*.ipynb")
        for cell in nbformat.read(path, as_version=4).cells
        for tag in cell.metadata.get("tags", [])
        if tag.startswith("readme-figure:")
    }
    for path, name in shown:
        assert (README.parent / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert name in tags, f"no tutorial cell tagged readme-figure:{name}"


def test_readme_has_python_blocks_and_one_scgpt_placeholder():
    blocks = python_blocks()
    assert len(blocks) >= 4
    # the only substitution the test makes, which the README announces next to the block
    assert sum(b.count(SCGPT_PLACEHOLDER) for b in blocks) == 1
    assert "tests/test_readme.py` runs this\nblock with a tiny random checkpoint" in README.read_text()


@pytest.mark.slow
def test_readme_python_blocks_run_as_written(tmp_path, monkeypatch, make_scgpt):
    monkeypatch.chdir(tmp_path)  # the blocks write `scmpt/` and `emb_cache/` into the working directory
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    scgpt = make_scgpt("scGPT_human")
    namespace: dict = {"__name__": "readme"}
    try:
        for i, block in enumerate(python_blocks()):
            code = block.replace(SCGPT_PLACEHOLDER, repr(str(scgpt)))
            exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
    finally:
        plt.close("all")

    adata, query = namespace["adata"], namespace["query"]
    assert adata.obsm["X_text"].shape == (700, 384)  # all-MiniLM-L6-v2
    assert adata.obsm["X_scgpt"].shape == (700, 32)  # the tiny checkpoint
    assert adata.obsm["X_genept_w"].shape == (700, 384) and adata.raw.varm["X_gene_text"].shape == (765, 384)
    assert query.n_obs == 140 and "scmpt" in query.obs.columns  # the query split again after scGPT embedding
    assert namespace["pred"].obs["method"].iloc[0] == "llm"  # the cell-LM block
    assert {"knn_label", "llm_rerank", "llm_annotate"} <= set(namespace["few"].obs.columns)  # LLM rerank
    assert (tmp_path / "scmpt").is_dir() and (tmp_path / "emb_cache").is_dir()
    assert set(adata.uns["ablation_study"]["results"].index) >= {"baseline", "hash", "shuffle_all"}
    assert {"integrated_gradients", "lime"} <= set(adata.uns["attributions"]["params"])
