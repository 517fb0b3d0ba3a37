"""Preprocessing: expression → cell sentences, and sentence ablations."""

from ._sentences import cell_sentences

__all__ = ["cell_sentences"]
