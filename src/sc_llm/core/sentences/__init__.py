"""Cell sentences as arrays: expression → ranked gene indices → text (:mod:`.ranking`).

Sentence → expression decoding goes here too (``decoding.py``). No AnnData in this package.
"""
