"""Cell embeddings: a frozen text encoder over cell sentences, or scGPT over expression (``sl.tl.embed``).

``_embed`` is the tool and the text-encoder path, ``_scgpt`` the scGPT path, ``_cache`` the resumable
shard-store path both take with ``cache_dir=``.
"""

from ._embed import embed

__all__ = ["embed"]
