"""Causal language models as readers of cells: loading, candidate scoring, chat endpoints, answer parsing.

- :mod:`.loading` — load a causal LM and its tokenizer (hub id, local folder or GGUF file), padded on the left;
- :mod:`.prompts` — C2S-style prompt templates as data (cell-type prediction, generation, perturbation);
- :mod:`.scoring` — log-likelihood of each candidate answer under a local model;
- :mod:`.endpoint` — an OpenAI-compatible chat endpoint with retries, a timeout and an answer cache;
- :mod:`.rerank_prompts`, :mod:`.choice`, :mod:`.answer_parsing` — the prompts of ``llm_rerank`` /
  ``llm_annotate``, and mapping answers to candidates.
"""
