"""Gene knowledge as text (GenePT): gene-description embeddings, GenePT-w cells, nearest genes.

``_gene_embeddings`` (``gene_embeddings``: each gene's text embedded, cached by model and text), ``_genept``
(``gene_text_embed``: cells as expression-weighted means of their genes' embeddings), ``_nearest``
(``nearest_genes``), ``_space`` (where gene embeddings live: ``.varm`` or ``.raw.varm``, read back checked).
"""

from ._gene_embeddings import gene_embeddings
from ._genept import gene_text_embed
from ._nearest import nearest_genes

__all__ = ["gene_embeddings", "gene_text_embed", "nearest_genes"]
