"""Example datasets."""

from ._datasets import kang2018, pbmc68k_reduced
from ._gene_descriptions import gene_descriptions, read_gene_descriptions

__all__ = ["gene_descriptions", "kang2018", "pbmc68k_reduced", "read_gene_descriptions"]
