"""Example datasets."""

from ._datasets import kang2018, pbmc68k_reduced

__all__ = ["kang2018", "pbmc68k_reduced"]
