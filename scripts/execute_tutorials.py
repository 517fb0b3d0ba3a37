"""Execute every tutorial top to bottom on its offline defaults and store it with its outputs and figures.

    python scripts/execute_tutorials.py                 # all of tutorials/*.ipynb
    python scripts/execute_tutorials.py --only 01 04    # the notebooks whose names start with these

Each notebook runs in a fresh kernel in a temporary working folder (files it writes stay out of the repository),
with inline figures and the Hugging Face hub offline; progress bars are left out of what is stored (a widget without
its state renders as an empty box). The parameters cell is run as written: a tutorial that needs a subset to stay
within a few minutes on a 2-core CPU says so in that cell. The wall time of each notebook is printed; a cell that
errors stops the script with the notebook left unchanged. ``tests/test_tutorials.py`` checks that what is stored
still matches what the code produces, cell by cell, in kind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def execute(path: Path, timeout: int) -> float:
    """Run ``path`` in a fresh kernel and write it back with its outputs; returns the wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    saved = {k: os.environ.get(k) for k in [*ENV, "MPLBACKEND"]}
    os.environ.update(ENV)
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores figures as image/png outputs
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as work:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}})
            client.execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # progress bars: widgets whose state is not stored render as empty boxes
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    """Execute the chosen tutorials; exit 1 when one fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="name prefixes, e.g. 01 04")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    paths = sorted((ROOT / "tutorials").glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.only)]
    for path in paths:
        try:
            seconds = execute(path, args.timeout)
        except Exception as e:  # noqa: BLE001  (report which notebook failed, whatever failed in it)
            print(f"{path.name}: FAILED ({type(e).__name__}: {str(e)[:2000]})", file=sys.stderr)
            return 1
        print(f"{path.name}: executed in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
