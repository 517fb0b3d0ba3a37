"""Tools: embeddings, annotation, fusion classifiers, attributions, perturbation prediction."""

from ..core.text_encoder import TextEncoder
from ._ablation_study import ablation_study
from ._attributions import attributions
from ._compare import compare_annotators
from ._compare_perturbation import compare_perturbation
from ._decode import decode_sentences, fit_sentence_decoder
from ._embed import embed
from ._knn import knn_annotate
from ._perturb import perturb
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = [
    "ScMPT",
    "TextEncoder",
    "ablation_study",
    "attributions",
    "compare_annotators",
    "compare_perturbation",
    "decode_sentences",
    "embed",
    "fit_sentence_decoder",
    "knn_annotate",
    "perturb",
    "scmpt_annotate",
]
