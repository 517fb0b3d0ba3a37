"""Preprocessing: expression → cell sentences, and sentence ablations."""

from ._ablations import ablate_sentences
from ._sentences import cell_sentences

__all__ = ["ablate_sentences", "cell_sentences"]
