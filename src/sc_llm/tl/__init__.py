"""Tools: embeddings, annotation, fusion classifiers, attributions."""

from ._ablation_study import ablation_study
from ._attributions import attributions
from ._compare import compare_annotators
from ._embed import embed
from ._knn import knn_annotate
from ._llm_annotate import llm_annotate
from ._llm_rerank import llm_rerank
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = [
    "ScMPT",
    "ablation_study",
    "attributions",
    "compare_annotators",
    "embed",
    "knn_annotate",
    "llm_annotate",
    "llm_rerank",
    "scmpt_annotate",
]
