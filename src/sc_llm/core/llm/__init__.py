"""Cell language models: causal LMs that read and write cell sentences (C2S-Scale style).

Tensor-only building blocks, no AnnData here:

- :mod:`.loading` — load a Hugging Face causal LM and its tokenizer (hub id, local folder or GGUF file)
  on the device and in the dtype that ``sl.tl.embed`` would choose, padded on the left for generation.
- :mod:`.prompts` — prompt templates as data (cell-type prediction, conditional generation, perturbation).
- :mod:`.gene_vocab` — one-token-per-gene vocabularies (added to a pretrained model or a model from scratch).
- :mod:`.generation` — batched, KV-cached generation constrained to genes of the vocabulary, never twice.
- :mod:`.finetune` — LoRA / full fine-tuning on (prompt, answer) token pairs.
"""
