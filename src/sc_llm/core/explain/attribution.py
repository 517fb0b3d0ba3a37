"""Gene attributions for a text encoder + classifier head: integrated gradients and LIME (no AnnData here).

The explained function maps a cell sentence to class logits: gene words → token ids → the frozen text encoder
→ pooled sentence vector → the trained head (e.g. :class:`~sc_llm.core.fusion.network.FusionClassifier`), with any
other representations the head takes held fixed at the cell's own values. Integrated gradients run on the
encoder's input token embeddings and token scores are summed over each gene's tokens; LIME removes gene words
from the sentence and fits a local linear model to the class probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.encoder import TextEncoder
from ..text.gene_tokens import gene_token_spans

BASELINES = ("pad", "zero", "mask", "unk")


class SentenceClassifier:
    """Cell sentence → logits, differentiable with respect to the encoder's input token embeddings.

    Parameters
    ----------
    encoder
        The frozen text encoder the head was trained on (same model, context length, prefix, pooling).
    head
        A module taking the representations in order and returning logits ``(batch, n_classes)``.
    text_index
        Position of the text representation among the head's inputs.
    """

    def __init__(self, encoder: TextEncoder, head: Any, text_index: int = 0):
        self.encoder = encoder
        self.head = head.to(encoder.device).eval()
        self.text_index = int(text_index)
        self.embedding = encoder.model.get_input_embeddings()

    def logits_from_embeds(self, inputs_embeds, attention_mask, *fixed_reps):
        """Logits from token embeddings; ``fixed_reps`` are the head's other inputs, in order."""
        pooled = self.encoder.forward_pooled(None, attention_mask, inputs_embeds=inputs_embeds)
        reps = list(fixed_reps)
        reps.insert(self.text_index, pooled)
        return self.head(*reps)

    def _fixed(self, fixed_reps: Sequence[np.ndarray] | None, rows: np.ndarray | None = None, repeat: int = 1):
        import torch

        out = []
        for X in fixed_reps or []:
            X = np.asarray(X, dtype=np.float32)
            X = X if rows is None else X[rows]
            out.append(torch.as_tensor(np.repeat(X, repeat, axis=0), device=self.encoder.device))
        return out

    def proba_from_pooled(self, pooled: np.ndarray, fixed_reps: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Class probabilities from sentence vectors ``(n, dim)`` and the other inputs' rows."""
        import torch

        with torch.inference_mode():
            reps = self._fixed(fixed_reps)
            text = torch.as_tensor(np.asarray(pooled, dtype=np.float32), device=self.encoder.device)
            reps.insert(self.text_index, text)
            return torch.softmax(self.head(*reps).float(), dim=1).cpu().numpy()

    def predict_proba_words(
        self,
        sentences: Sequence[Sequence[str]],
        fixed_reps: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Class probabilities of gene-word lists; ``fixed_reps`` rows (one per sentence) or ``None``."""
        import torch

        ids, _ = self.encoder.tokenize([" ".join(w) for w in sentences])
        order = np.argsort([-len(x) for x in ids], kind="stable")  # batches of similar length pad less
        out = np.zeros((0, 0), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for s in range(0, len(ids), batch_size):
                rows = order[s : s + batch_size]
                input_ids, mask = self.encoder.batch([ids[i] for i in rows])
                embeds = self.embedding(input_ids)
                logits = self.logits_from_embeds(embeds, mask, *self._fixed(fixed_reps, rows))
                parts.append((rows, torch.softmax(logits.float(), dim=1).cpu().numpy()))
        if parts:
            out = np.zeros((len(ids), parts[0][1].shape[1]), dtype=np.float32)
            for rows, p in parts:
                out[rows] = p
        return out


def baseline_ids(input_ids, spans: Sequence[Sequence[tuple[int, int]]], token_id: int):
    """Copy of ``input_ids`` with every gene token replaced by ``token_id`` (special and prefix tokens kept)."""
    out = input_ids.clone()
    for i, row in enumerate(spans):
        for s, e in row:
            out[i, s:e] = token_id
    return out


def integrated_gradients(
    model: SentenceClassifier,
    sentences: Sequence[str],
    targets: Sequence[int],
    *,
    fixed_reps: Sequence[np.ndarray] | None = None,
    baseline: str = "unk",
    n_steps: int = 50,
    internal_batch_size: int | None = 32,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Integrated gradients of the target logit over each in-context gene of each sentence.

    Parameters
    ----------
    model
        The sentence classifier to explain.
    sentences
        Space-separated gene names.
    targets
        Class index explained for each sentence.
    fixed_reps
        The head's other inputs, one row per sentence, in the head's order (the text one left out).
    baseline
        Token embedding the gene tokens move from: ``'unk'`` (the unknown token), ``'pad'`` (the padding
        token), ``'mask'`` or ``'zero'`` (the zero vector). Special and prefix tokens keep their input
        embedding, so they get no attribution.
    n_steps
        Steps of the Gauss-Legendre path integral.
    internal_batch_size
        Sequences per forward/backward pass (bounds memory).

    Returns
    -------
    ``(gene_scores, delta, gap)``: per sentence an array with one score per in-context gene (in sentence
    order; token attributions summed over the gene's tokens); captum's convergence delta (sum of all
    attributions minus ``f(x) - f(baseline)``) and the gap ``f(x) - f(baseline)`` itself, per sentence.
    """
    import torch
    from captum.attr import IntegratedGradients

    if baseline not in BASELINES:
        msg = f"`baseline` must be one of {BASELINES}, got {baseline!r}."
        raise ValueError(msg)
    enc = model.encoder
    ids, spans = gene_token_spans(enc.genes, sentences)
    input_ids, mask = enc.batch(ids)
    with torch.no_grad():
        embeds = model.embedding(input_ids).detach()
        if baseline == "zero":
            base = embeds.clone()
            for i, row in enumerate(spans):
                for s, e in row:
                    base[i, s:e] = 0.0
        else:
            token = {
                "pad": enc.tokenizer.pad_token_id,
                "mask": enc.tokenizer.mask_token_id,
                "unk": enc.tokenizer.unk_token_id,
            }[baseline]
            if token is None:
                msg = f"The tokenizer has no {baseline} token; choose another `baseline`, e.g. 'pad'."
                raise ValueError(msg)
            base = model.embedding(baseline_ids(input_ids, spans, token)).detach()
    fixed = model._fixed(fixed_reps)
    ig = IntegratedGradients(model.logits_from_embeds)
    target = torch.as_tensor(list(targets), device=enc.device)
    attr, delta = ig.attribute(
        embeds,
        baselines=base,
        target=target,
        additional_forward_args=(mask, *fixed),
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        fx = model.logits_from_embeds(embeds, mask, *fixed).gather(1, target[:, None])[:, 0]
        fb = model.logits_from_embeds(base, mask, *fixed).gather(1, target[:, None])[:, 0]
    tokens = attr.sum(-1).detach().cpu().numpy().astype(np.float64)
    scores = [np.array([tokens[i, s:e].sum() for s, e in row], dtype=np.float64) for i, row in enumerate(spans)]
    return scores, delta.detach().cpu().numpy(), (fx - fb).cpu().numpy()


def lime_gene_scores(
    model: SentenceClassifier,
    words: Sequence[str],
    target: int,
    *,
    fixed_rep: Sequence[np.ndarray] | None = None,
    num_samples: int = 500,
    seed: int = 0,
    batch_size: int = 64,
    log_proba: bool = True,
) -> np.ndarray:
    """LIME weights of the target class (log-)probability for each gene word of one sentence.

    Perturbed sentences drop a random subset of the genes (the rest keep their order); a weighted ridge
    model of the probability on gene presence gives the weights. Words are whitespace-separated gene names.

    Parameters
    ----------
    model
        The sentence classifier to explain.
    words
        The cell's gene words (typically its in-context genes).
    target
        Class index explained.
    fixed_rep
        The cell's other representations (each ``(dim,)``), in the head's order; ``None`` for none.
    num_samples
        Perturbed sentences scored.
    seed
        Random state of the sampling and the ridge fit.
    batch_size
        Sentences per forward pass.
    log_proba
        Fit the local model to the log-probability, which does not saturate for confident predictions
        (removing a gene from a cell predicted at 0.999 barely moves the probability), instead of the probability.

    Returns
    -------
    One weight per word of ``words`` (a repeated word shares one weight).
    """
    from lime.lime_text import LimeTextExplainer

    words = list(words)
    if not words:
        return np.zeros(0, dtype=np.float64)
    fixed = [np.asarray(x, dtype=np.float32)[None] for x in fixed_rep or []]

    def predict(texts: list[str]) -> np.ndarray:
        reps = [np.repeat(x, len(texts), axis=0) for x in fixed] or None
        proba = model.predict_proba_words([t.split() for t in texts], reps, batch_size=batch_size)
        return np.log(np.clip(proba, 1e-12, None)) if log_proba else proba

    explainer = LimeTextExplainer(split_expression=r"\s+", bow=True, feature_selection="none", random_state=seed)
    exp = explainer.explain_instance(
        " ".join(words), predict, labels=(int(target),), num_features=len(words), num_samples=num_samples
    )
    weights = dict(exp.as_list(label=int(target)))
    return np.array([weights.get(w, 0.0) for w in words], dtype=np.float64)
