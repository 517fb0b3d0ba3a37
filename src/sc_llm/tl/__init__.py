"""Tools: embeddings, annotation, fusion classifiers, attributions, perturbation prediction, cell language models."""

from ..core.text_encoder import TextEncoder
from ._ablation_study import ablation_study
from ._attributions import attributions
from ._cell_lm import CellLM
from ._compare import compare_annotators
from ._compare_perturbation import compare_perturbation
from ._decode import decode_sentences, fit_sentence_decoder
from ._embed import embed
from ._generate_cells import generate_cells
from ._knn import knn_annotate
from ._llm_annotate import llm_annotate
from ._llm_rerank import llm_rerank
from ._perturb import perturb
from ._perturb_llm import _llm as _register_llm  # noqa: F401  (registers method='llm')
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = [
    "CellLM",
    "ScMPT",
    "TextEncoder",
    "ablation_study",
    "attributions",
    "compare_annotators",
    "compare_perturbation",
    "decode_sentences",
    "embed",
    "fit_sentence_decoder",
    "generate_cells",
    "knn_annotate",
    "llm_annotate",
    "llm_rerank",
    "perturb",
    "scmpt_annotate",
]
