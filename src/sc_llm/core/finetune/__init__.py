"""Fine-tuning engine for Hugging Face causal LMs on (prompt, answer) token pairs (tensor-only).

- :mod:`.config` — :class:`~sc_llm.core.finetune.config.FinetuneConfig`, every setting, validated;
- :mod:`.data` — examples, padding and length-aware batches;
- :mod:`.loss` — the loss on answer tokens only, with gradient accumulation;
- :mod:`.checkpointing` — atomic, resumable checkpoints (safetensors, ``weights_only``);
- :mod:`.engine` — :func:`~sc_llm.core.finetune.engine.finetune_causal_lm`: LoRA or full training, validation,
  early stopping, resumption to the same final weights.
"""
