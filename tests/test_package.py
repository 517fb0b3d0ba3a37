"""Package-wide conventions: light import, public signatures, size limits, CI running the README's test command."""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sc_llm as sl

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "transformers",
    "captum",
    "lime",
    "peft",
    "openai",
    "ot",
    "sentence_transformers",
    "torchtext",
    "flash_attn",
    "ray",
)


def test_deferred_imports():
    code = f"import sys, sc_llm; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_submodules_load_on_first_access_without_scanpy():
    """`import sc_llm` imports no submodule; touching them imports neither scanpy (seconds) nor the heavy stack."""
    code = (
        "import sys, sc_llm as sl\n"
        "before = [m for m in ('sc_llm.pp', 'sc_llm.tl', 'pandas', 'numpy') if m in sys.modules]\n"
        "sl.pp, sl.tl, sl.pl, sl.metrics, sl.datasets, sl.jobs\n"
        f"after = [m for m in {(*HEAVY, 'scanpy', 'anndata', 'matplotlib', 'zarr')!r} if m in sys.modules]\n"
        "print(before, after, [n for n in dir(sl) if not n.startswith('_')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] ['datasets', 'jobs', 'metrics', 'pl', 'pp', 'tl']"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sl.nope  # noqa: B018


def test_no_torchtext_or_flash_attn_anywhere():
    for path in (ROOT / "src" / "sc_llm").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torchtext|flash_attn)\b", text, re.M), path


# Functions that take no input AnnData and return a NEW one (like sc.datasets): one positional parameter (the
# model), no `copy` and no `mod`; they still take keyword-only options and have numpydoc sections.
GENERATORS = {"sc_llm.tl.generate_cells"}
# Functions that read `adata` and return a table, writing nothing into it (like `sc.get.rank_genes_groups_df`): the
# genes they ask about second positional, `mod`, no `copy` and no `key_added`.
QUERIES = {"sc_llm.tl.nearest_genes"}


def public_functions():
    for mod in (sl.pp, sl.tl, sl.pl):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj


@pytest.mark.parametrize(("name", "func"), list(public_functions()), ids=lambda x: x if isinstance(x, str) else "")
def test_signature_convention(name, func):
    params = list(inspect.signature(func).parameters.values())
    names = {p.name for p in params}
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if name in GENERATORS:
        assert len(positional) == 1, f"{name}: one positional parameter (the model), the rest keyword-only"
    elif name in QUERIES:
        assert positional == ["adata", "genes"], f"{name}: adata and what is asked about positional"
    else:
        assert params[0].name == "adata", f"{name}: first parameter must be `adata`"
        assert positional in (["adata"], ["adata", "reference"]), f"{name}: only adata (and reference) positional"
    assert "inplace" not in names, f"{name}: use copy=, not inplace="
    doc = inspect.getdoc(func) or ""
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc, f"{name}: numpydoc sections"
    section = doc.split("Parameters\n----------")[1].split("Returns\n-------")[0]
    documented = {
        n.strip().lstrip("*") for line in re.findall(r"^(\*{0,2}\w[\w, *]*)$", section, re.M) for n in line.split(",")
    }
    missing = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD} - documented
    assert not missing, f"{name}: parameters not documented: {missing}"
    if name in GENERATORS:
        assert "copy" not in names and "mod" not in names, f"{name}: builds cells from a model, no copy/mod"
        return
    assert "mod" in names, f"{name}: MuData is handled by `mod=` on every public function"
    if name in QUERIES:
        assert "copy" not in names and "key_added" not in names, f"{name}: returns a table, writes nothing"
        return
    if inspect.signature(func).return_annotation in ("AnnData", "MuData"):
        # a function returning a NEW AnnData (predicted or decoded cells) writes nothing into `adata`
        assert "copy" not in names and "key_added" not in names, f"{name}: returns a new AnnData, no copy/key_added"
    elif not name.startswith("sc_llm.pl."):
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
        for mod in (sl.pp, sl.tl, sl.pl, sl.datasets, sl.metrics, sl.jobs)
        for name in mod.__all__
    }
    assert public == listed


MAX_MODULE_LINES = 400
MAX_FUNCTION_CODE_LINES = 60


def function_code_lines(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body that hold code: the docstring, blank lines and comment-only lines excluded."""
    body = node.body
    has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    has_doc = has_doc and isinstance(body[0].value.value, str)
    if has_doc and len(body) == 1:
        return 0
    first = body[1].lineno if has_doc else body[0].lineno
    text = lines[first - 1 : node.end_lineno]
    return sum(1 for line in text if line.strip() and not line.strip().startswith("#"))


def test_size_limits():
    too_long = []
    for path in sorted((ROOT / "src" / "sc_llm").rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        name = path.relative_to(ROOT).as_posix()
        if len(lines) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(lines)} lines (module)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = function_code_lines(lines, node)
                if n > MAX_FUNCTION_CODE_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {n} code lines")
    assert not too_long, "split these (kernel + runner, or a new module):\n" + "\n".join(too_long)


def test_function_code_lines_counts_code_only():
    source = 'def f(x):\n    """Doc.\n\n    More.\n    """\n    # comment\n\n    y = x\n    return y\n'
    node = ast.parse(source).body[0]
    assert function_code_lines(source.splitlines(), node) == 2


def test_no_format_skip_markers():
    """``ruff format`` lays out all code; ``# fmt: skip`` would let layout drift back to hand-packed lines."""
    marker = "# fmt: " + "skip"
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{i}"
        for folder in ("src", "tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if line.rstrip().endswith(marker)
    ]
    assert not found, "remove these and run `ruff format`:\n" + "\n".join(found)


def test_every_benchmark_says_which_machine_it_ran_on():
    """Each script's ``main`` prints ``benchmarks/_machine.py``'s line (CPU model, ISA flags, load) first."""
    silent = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text())
        main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
        calls = (
            {n.func.id for n in ast.walk(main) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            if main
            else set()
        )
        if not calls & {"machine_line", "cpu_line"}:
            silent.append(path.name)
    assert not silent, f"print(machine_line()) in main() of: {silent}"


PACKAGE = ROOT / "src" / "sc_llm"
MAX_MODULES_PER_FOLDER = 12


def test_no_folder_holds_more_than_twelve_modules():
    crowded = {
        folder.relative_to(ROOT).as_posix(): n
        for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]
        if (n := len([p for p in folder.glob("*.py") if p.name != "__init__.py"])) > MAX_MODULES_PER_FOLDER
    }
    assert not crowded, f"group these folders' modules into sub-packages: {crowded}"


def _defining(pattern: str) -> list[str]:
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(pattern, path.read_text(), re.M)
    )


def test_one_helper_per_concept():
    """One writer puts files into place; one reader of sentences; one random split of cells (issue 20)."""
    assert _defining(r"\bos\.replace\(|\.replace\((?!['\"])[^)]*(path|tmp|final|folder)|\.rename\(") == [
        "core/base/atomic.py"
    ]
    assert _defining(r"^def read_sentences\(") == ["_utils/_sentences.py"]
    assert _defining(r"^def split_cells\(") == ["core/base/splits.py"]
    assert _defining(r"torch\.manual_seed\(|fork_rng\(") == ["core/base/seeding.py"]
    assert _defining(r"set_num_threads\(") == ["core/base/threads.py"]
    assert _defining(r"^def (get_matrix|choose_matrix)\(") == ["_utils/_anndata.py"]


def test_import_contracts_hold():
    """The layering of docs/architecture.md (pyproject's [tool.importlinter]): no upward import, no cycle."""
    import grimp

    out = subprocess.run(["lint-imports", "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "0 broken" in out.stdout, out.stdout[-3000:]
    graph = grimp.build_graph("sc_llm")
    root_importers = {m for m in graph.find_modules_that_directly_import("sc_llm") if not m.startswith("sc_llm.cli")}
    assert not root_importers, "only the command line may import the package root (use sc_llm._version)"
