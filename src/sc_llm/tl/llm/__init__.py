"""Generative language models on cells: cell LMs (fit, generate, perturb) and LLM re-ranking / annotation.

``_cell_lm`` (:class:`~sc_llm.tl.CellLM`), ``_generate_cells``, ``_rerank`` (``llm_rerank``), ``_annotate``
(``llm_annotate``) and ``_common``, what the last two share (backends, candidate scores).
"""

from ._annotate import llm_annotate
from ._cell_lm import CellLM
from ._generate_cells import generate_cells
from ._rerank import llm_rerank

__all__ = ["CellLM", "generate_cells", "llm_annotate", "llm_rerank"]
