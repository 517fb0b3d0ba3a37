"""From cell sentences back to expression: fit a sentence decoder, decode sentences (C2S's rank → expression)."""

from ._decode import decode_sentences, fit_sentence_decoder

__all__ = ["decode_sentences", "fit_sentence_decoder"]
