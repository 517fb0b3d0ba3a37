"""Text encoders that read cell sentences (GenePT-s, the papers' Ember-V1 / MiniLM), tensor-only.

- :mod:`.hf_loading` — locate a Hugging Face model (hub id or folder) and read its sentence-transformers pooling;
- :mod:`.gene_tokens` — which tokens belong to which gene, and how many genes fit in the context;
- :mod:`.encoder` — :class:`~sc_llm.core.text.encoder.TextEncoder`: tokenise, batch, pool, normalise.
"""
