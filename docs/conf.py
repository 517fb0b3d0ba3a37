"""Sphinx configuration for the sc_llm documentation (sphinx + myst-nb).

Build: ``sphinx-build -b html docs docs/_build/html``. Notebooks under ``tutorials/`` are rendered as stored
(without outputs); they are not executed by the docs build.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from importlib.util import find_spec
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "src"))  # document the source tree even without an installation

project = "sc_llm"
author = "sc_llm developers"
copyright = f"{datetime.now():%Y}, {author}"
try:
    release = _dist_version("sc-llm")
except PackageNotFoundError:
    release = "0.0.0+unknown"
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
if find_spec("sphinx_autodoc_typehints") is not None:
    extensions.append("sphinx_autodoc_typehints")  # after napoleon, as its documentation asks

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}  # .rst first: autosummary stubs
master_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# autodoc / autosummary: one page per public function, numpydoc docstrings
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_param = True
napoleon_custom_sections = [("Params", "Parameters")]
typehints_defaults = "braces"
always_document_param_types = False
nitpicky = True

# myst / myst-nb
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the tutorials are stored executed (scripts/execute_tutorials.py): pages show their outputs
nb_output_stderr = "remove"

# Links into other projects' docs need their inventories from the network: on for Read the Docs or when
# SC_LLM_DOCS_INTERSPHINX=1, off otherwise so that an offline build stays quiet.
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "torch": ("https://pytorch.org/docs/stable/", None),
}
online = os.environ.get("READTHEDOCS") == "True" or os.environ.get("SC_LLM_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = _INTERSPHINX if online else {}
intersphinx_timeout = 10
# The build is nitpicky: every reference to sc_llm must resolve. References into other projects resolve through
# intersphinx when it is on; offline, their targets cannot be looked up, so only those are let through.
_EXTERNAL = r"(anndata|numpy|pandas|scipy|scanpy|torch|matplotlib|collections|typing|pathlib|mudata|types|os)(\..*)?"
nitpick_ignore_regex = [] if online else [(r"py:.*", _EXTERNAL)]
nitpick_ignore = [("py:data", "Ellipsis")]  # `tuple[int, ...]` in annotations
nitpick_ignore_regex.append((r"py:class", r".*\._[A-Za-z]\w*"))  # private helpers named in attribute annotations

html_title = "sc_llm"
if find_spec("sphinx_book_theme") is not None:
    html_theme = "sphinx_book_theme"
    html_theme_options = {"repository_url": "https://github.com/scverse/sc_llm", "use_repository_button": False}
else:  # the `docs` extra installs the book theme; fall back to Sphinx's default without it
    html_theme = "alabaster"
