"""Write docs/errors.md from the messages sc_llm gives today (the bad-input catalogue of the tests).

Run from the repository root: ``python scripts/build_errors_page.py`` (about a minute on a laptop CPU).
"""

import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Rebuild the page; exit 1 when a case no longer gives its expected outcome."""
    spec = importlib.util.spec_from_file_location("bad_input_catalogue", ROOT / "tests" / "bad_input_catalogue.py")
    catalogue = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = catalogue  # dataclasses look their module up
    spec.loader.exec_module(catalogue)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        outcomes = catalogue.run_catalogue(catalogue.build_inputs(folder))
        (ROOT / "docs" / "errors.md").write_text(catalogue.errors_page(outcomes, folder))
    unexpected = [o for o in outcomes if o.kind != o.case.expect]
    for o in unexpected:
        print(f"{o.case.klass} / {o.case.label}: {o.kind}: {o.message}", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
