"""Explaining the text-encoder classifiers: attributions over gene words and sentence ablations.

- :mod:`.attribution` — integrated gradients and LIME through encoder + head;
- :mod:`.groups` — attributions summed per cell group, and the tables tools write;
- :mod:`.ablation` — the papers' sentence ablations (gene-name hashing, order shuffles, shortening).
"""
