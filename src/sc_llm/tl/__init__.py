"""Tools: embeddings, annotation, fusion classifiers, attributions, cell language models."""

from ._ablation_study import ablation_study
from ._attributions import attributions
from ._cell_lm import CellLM
from ._compare import compare_annotators
from ._embed import embed
from ._generate_cells import generate_cells
from ._knn import knn_annotate
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = [
    "CellLM",
    "ScMPT",
    "ablation_study",
    "attributions",
    "compare_annotators",
    "embed",
    "generate_cells",
    "knn_annotate",
    "scmpt_annotate",
]
