"""scMPT fusion classifiers over frozen representations (tensor-only).

- :mod:`.network` — :class:`~sc_llm.core.fusion.network.FusionClassifier`, the paper's MLP fusion;
- :mod:`.training` — seeded, early-stopped training and inference;
- :mod:`.stacking` — cross-fitted experts combined as a product of experts (``fusion='stacked'``);
- :mod:`.defaults` — the training and architecture defaults every caller shares.
"""
