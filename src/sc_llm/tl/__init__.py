"""Tools: embeddings, annotation, fusion classifiers, attributions."""

from ..core.text_encoder import TextEncoder
from ._ablation_study import ablation_study
from ._attributions import attributions
from ._compare import compare_annotators
from ._embed import embed
from ._knn import knn_annotate
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = [
    "ScMPT",
    "TextEncoder",
    "ablation_study",
    "attributions",
    "compare_annotators",
    "embed",
    "knn_annotate",
    "scmpt_annotate",
]
