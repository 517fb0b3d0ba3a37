"""The one helper per concept that every model family of the core stands on (arrays and tensors only).

- :mod:`.device` — which device, which compute dtype;
- :mod:`.threads` — PyTorch's CPU threads, set for a block and restored; batches per core;
- :mod:`.batch_pipeline` — host work overlapping device work, in order;
- :mod:`.seeding` — seeded PyTorch randomness that leaves the caller's state alone;
- :mod:`.splits` — every seeded train / held-out / fold assignment;
- :mod:`.cell_keys` — a cell's 64-bit identity, the source of its random numbers;
- :mod:`.identity` — what identifies a model or an input (commit, folder fingerprint, hashes);
- :mod:`.atomic` — atomic file and folder writes (the one ``os.replace``);
- :mod:`.deps` — optional dependencies, with the extra to install named.

Nothing here imports anything else of sc_llm.
"""
