"""Cell-type annotation from embeddings: zero-shot kNN, the scMPT fusion classifier, and the paper's comparison.

``_knn`` (``knn_annotate``), ``_scmpt`` (``scmpt_annotate``), ``_scmpt_model`` and ``_scmpt_files``
(:class:`~sc_llm.tl.ScMPT`, its checksummed files), ``_compare`` (``compare_annotators``).
"""

from ._compare import compare_annotators
from ._knn import knn_annotate
from ._scmpt import scmpt_annotate
from ._scmpt_model import ScMPT

__all__ = ["ScMPT", "compare_annotators", "knn_annotate", "scmpt_annotate"]
