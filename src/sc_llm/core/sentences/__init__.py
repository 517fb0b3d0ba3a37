"""Cell sentences as arrays: expression → ranked gene indices → text, and back (no AnnData here).

- :mod:`.ranking` — rank genes by expression and join their names, in chunks;
- :mod:`.decoding` — :class:`~sc_llm.core.sentences.decoding.SentenceDecoder`, sentence → expression;
- :mod:`.absent` — what genes a truncated sentence leaves out decode to.
"""
