"""Issue 21's catalogue rerun: 0 silent wrong results and 0 library-internal messages; docs/errors.md is current."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bad_input_catalogue", Path(__file__).with_name("bad_input_catalogue.py"))
catalogue = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = catalogue  # dataclasses look their module up
spec.loader.exec_module(catalogue)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    return folder, catalogue.run_catalogue(catalogue.build_inputs(folder))


def test_no_silent_wrong_result_and_no_library_message(outcomes):
    _, results = outcomes
    bad = [f"{o.case.klass} / {o.case.label}: {o.kind} {o.message[:200]}" for o in results if o.kind != o.case.expect]
    assert not bad, "\n".join(bad)
    assert not [o.case.label for o in results if o.changed], "a failing call changed the input AnnData"
    assert len(results) == len(catalogue.CASES) >= 35


def test_the_errors_page_lists_todays_messages(outcomes):
    folder, results = outcomes
    page = (ROOT / "docs" / "errors.md").read_text()
    assert page == catalogue.errors_page(results, folder), "run `python scripts/build_errors_page.py`"
