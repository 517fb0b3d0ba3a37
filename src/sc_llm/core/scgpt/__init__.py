"""scGPT cell embeddings without the ``scgpt`` package (no torchtext, no flash-attn).

- :mod:`.checkpoint` reads ``args.json``, ``vocab.json`` and ``best_model.pt`` (``weights_only=True``);
- :mod:`.model` is the inference-only encoder, state-dict compatible with scGPT's ``TransformerModel``;
- :mod:`.preprocessing` matches genes, bins and subsamples like scGPT's ``embed_data``;
- :mod:`.inference` streams CSR chunks through the model;
- :mod:`.encoder` puts it together: :class:`~.encoder.ScGPTEncoder` loads a checkpoint and turns CSR chunks
  into embeddings, as :class:`~sc_llm.core.text.encoder.TextEncoder` does for text.

Torch is imported by the functions that need it, so importing this package stays light.
"""

from .checkpoint import ScGPTConfig, check_folder, is_scgpt_checkpoint, load_encoder, read_config, read_vocab
from .encoder import ScGPTEncoder
from .inference import EmbeddingStats, embed_cells
from .preprocessing import CHUNK_CELLS, bin_padded, match_genes, tokenize_chunk

__all__ = [
    "CHUNK_CELLS",
    "EmbeddingStats",
    "ScGPTConfig",
    "ScGPTEncoder",
    "bin_padded",
    "check_folder",
    "embed_cells",
    "is_scgpt_checkpoint",
    "load_encoder",
    "match_genes",
    "read_config",
    "read_vocab",
    "tokenize_chunk",
]
