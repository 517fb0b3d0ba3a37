"""Package-wide conventions: light import, public signatures, CI running the README's test command."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sc_llm as sl

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch", "transformers", "captum", "lime", "peft", "openai", "sentence_transformers", "torchtext", "flash_attn"
)  # fmt: skip


def test_deferred_imports():
    code = f"import sys, sc_llm; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_torchtext_or_flash_attn_anywhere():
    for path in (ROOT / "src" / "sc_llm").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torchtext|flash_attn)\b", text, re.M), path


def public_functions():
    for mod in (sl.pp, sl.tl, sl.pl):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj


@pytest.mark.parametrize(("name", "func"), list(public_functions()), ids=lambda x: x if isinstance(x, str) else "")
def test_signature_convention(name, func):
    params = list(inspect.signature(func).parameters.values())
    assert params[0].name == "adata", f"{name}: first parameter must be `adata`"
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional in (["adata"], ["adata", "reference"]), f"{name}: only adata (and reference) positional"
    names = {p.name for p in params}
    assert "inplace" not in names, f"{name}: use copy=, not inplace="
    doc = inspect.getdoc(func) or ""
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc, f"{name}: numpydoc sections"
    section = doc.split("Parameters\n----------")[1].split("Returns\n-------")[0]
    documented = {
        n.strip().lstrip("*") for line in re.findall(r"^(\*{0,2}\w[\w, *]*)$", section, re.M) for n in line.split(",")
    }
    missing = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD} - documented
    assert not missing, f"{name}: parameters not documented: {missing}"
    if not name.startswith("sc_llm.pl."):
        assert "copy" in names and "key_added" in names, f"{name}: writes results, so takes key_added and copy"
        assert inspect.signature(func).parameters["copy"].default is False


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    test_commands = [b.strip() for b in blocks if "pytest" in b]
    assert len(test_commands) == 1
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci
    assert "python -m pip install torch==2.13.0" in ci


def test_version():
    assert isinstance(sl.__version__, str) and sl.__version__


def test_api_page_lists_every_public_name():
    api = (ROOT / "docs" / "api.md").read_text()
    listed = set(re.findall(r"^\s+(\w+\.\w+)$", api, re.M))
    public = {
        f"{mod.__name__.split('.')[-1]}.{name}"
        for mod in (sl.pp, sl.tl, sl.pl, sl.datasets, sl.metrics)
        for name in mod.__all__
    }
    assert public == listed
