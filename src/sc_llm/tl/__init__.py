"""Tools, one sub-package per capability.

- ``embedding``: :func:`embed`;
- ``genes``: :func:`gene_embeddings`, :func:`gene_text_embed`, :func:`nearest_genes`;
- ``annotation``: :func:`knn_annotate`, :func:`scmpt_annotate`, :class:`ScMPT`, :func:`compare_annotators`;
- ``explain``: :func:`attributions`, :func:`ablation_study`;
- ``decoding``: :func:`fit_sentence_decoder`, :func:`decode_sentences`;
- ``perturbation``: :func:`perturb`, :func:`compare_perturbation`;
- ``llm``: :class:`CellLM`, :func:`generate_cells`, :func:`llm_rerank`, :func:`llm_annotate`.
"""

from ..core.text.encoder import TextEncoder
from .annotation import ScMPT, compare_annotators, knn_annotate, scmpt_annotate
from .decoding import decode_sentences, fit_sentence_decoder
from .embedding import embed
from .explain import ablation_study, attributions
from .genes import gene_embeddings, gene_text_embed, nearest_genes
from .llm import CellLM, generate_cells, llm_annotate, llm_rerank
from .perturbation import compare_perturbation, perturb

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
    "gene_embeddings",
    "gene_text_embed",
    "generate_cells",
    "knn_annotate",
    "llm_annotate",
    "llm_rerank",
    "nearest_genes",
    "perturb",
    "scmpt_annotate",
]
