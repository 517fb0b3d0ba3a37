"""Cell language models: causal LMs that read and write cell sentences (C2S-Scale style), tensor-only.

Prompts are :class:`~sc_llm.core.llm.prompts.PromptTemplates` (shared with ``llm_annotate``).

- :mod:`.gene_vocab` — one-token-per-gene vocabularies (added to a pretrained model, or a model from scratch);
- :mod:`.generation` — batched, KV-cached generation constrained to genes of the vocabulary, never twice;
- :mod:`.sampling` — per-cell seeded sampling (a cell's sentence never depends on its batch);
- :mod:`.pairs` — control / perturbed training pairs;
- :mod:`.model` — :class:`~sc_llm.core.cell_lm.model.CellLanguageModel`: all of it together, saved and loaded;
- :mod:`.predict` — the one path from cells to generated sentences, behind every tool and job.
"""
