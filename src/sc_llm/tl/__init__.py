"""Tools: embeddings, annotation, fusion classifiers, attributions."""

from ._embed import embed
from ._knn import knn_annotate

__all__ = ["embed", "knn_annotate"]
