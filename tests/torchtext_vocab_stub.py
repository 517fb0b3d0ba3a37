"""Test-only stand-in for ``torchtext.vocab``, enough for scGPT 0.2.4's ``GeneVocab``.

torchtext's compiled library no longer loads on current torch, and scGPT imports it at module level.
The parity tests install this module as ``torchtext.vocab`` before importing ``scgpt``
(see :func:`install`), so that scGPT's own ``embed_data`` can run as the reference.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable


class _Table:
    """Token ↔ index table with an optional default index (what torchtext keeps in C++)."""

    def __init__(self, tokens: Iterable[str] = ()):
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        self.default_index: int | None = None
        for t in tokens:
            self.append(t)

    def append(self, token: str) -> None:
        if token in self.stoi:
            msg = f"token {token!r} already exists in the vocab"
            raise RuntimeError(msg)
        self.stoi[token] = len(self.itos)
        self.itos.append(token)

    def insert(self, token: str, index: int) -> None:
        if token in self.stoi:
            msg = f"token {token!r} already exists in the vocab"
            raise RuntimeError(msg)
        if not 0 <= index <= len(self.itos):
            msg = f"index {index} out of range for a vocab of size {len(self.itos)}"
            raise RuntimeError(msg)
        self.itos.insert(index, token)
        self.stoi = {t: i for i, t in enumerate(self.itos)}


class Vocab:
    """The subset of ``torchtext.vocab.Vocab`` that scGPT calls."""

    def __init__(self, vocab: _Table):
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.vocab.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.vocab.stoi

    def __getitem__(self, token: str) -> int:
        i = self.vocab.stoi.get(token)
        if i is None:
            if self.vocab.default_index is None:
                msg = f"Token {token} not found and default index is not set"
                raise RuntimeError(msg)
            return self.vocab.default_index
        return i

    def __call__(self, tokens: list[str]) -> list[int]:
        return self.lookup_indices(tokens)

    def lookup_indices(self, tokens: list[str]) -> list[int]:
        return [self[t] for t in tokens]

    def lookup_token(self, index: int) -> str:
        return self.vocab.itos[index]

    def lookup_tokens(self, indices: list[int]) -> list[str]:
        return [self.vocab.itos[i] for i in indices]

    def set_default_index(self, index: int | None) -> None:
        self.vocab.default_index = index

    def get_default_index(self) -> int | None:
        return self.vocab.default_index

    def insert_token(self, token: str, index: int) -> None:
        self.vocab.insert(token, index)

    def append_token(self, token: str) -> None:
        self.vocab.append(token)

    def get_stoi(self) -> dict[str, int]:
        return dict(self.vocab.stoi)

    def get_itos(self) -> list[str]:
        return list(self.vocab.itos)


def vocab(ordered_dict, min_freq: int = 1, specials=None, special_first: bool = True) -> Vocab:
    """``torchtext.vocab.vocab``: tokens of ``ordered_dict`` with frequency ≥ ``min_freq``, in order."""
    specials = list(specials or [])
    tokens = [t for t, f in ordered_dict.items() if f >= min_freq and t not in specials]
    tokens = specials + tokens if special_first else tokens + specials
    return Vocab(_Table(tokens))


def install() -> None:
    """Register a stand-in ``torchtext.vocab`` unless a working torchtext can be imported."""
    try:
        import torchtext.vocab  # noqa: F401

        return
    except Exception:  # noqa: BLE001 - missing, or its compiled library fails to load on this torch (any error)
        pass
    module = types.ModuleType("torchtext.vocab", __doc__)
    module.Vocab, module.vocab = Vocab, vocab
    package = types.ModuleType("torchtext")
    package.__path__ = []  # a package, so that ``import torchtext.vocab`` resolves through sys.modules
    package.vocab = module
    sys.modules["torchtext"] = package
    sys.modules["torchtext.vocab"] = module
