"""Array- and tensor-only core of sc_llm: no AnnData in here.

The AnnData-facing functions in :mod:`sc_llm.pp`, :mod:`sc_llm.tl` and :mod:`sc_llm.pl` resolve their
inputs, call these functions, and write the results.
"""
