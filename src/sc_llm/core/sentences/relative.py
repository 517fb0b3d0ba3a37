"""Relative decoding: a predicted cell is its control cell plus the change its generated sentence writes.

Plain decoding turns a generated sentence of ``n`` genes into a cell that has only those ``n`` genes (or, with
``absent='expected'``, population averages for the rest): every other gene loses the control cell's own value.
Relative decoding keeps the control cell and moves only what the sentence moves. For a control cell ``x`` with
ranked expressed genes (its full sentence) and top-``n`` genes ``C``, and a generated sentence ``G``:

- the predicted head of the ranking is ``G`` followed by the genes of ``C`` that ``G`` left out, in the control
  order (they fall just below the generated genes); its genes get new 1-based ranks ``r'``;
- a head gene expressed in the control cell at rank ``r`` becomes :math:`x_g + D(r'_g) - D(r_g)`, with ``D`` the
  sentence decoder: the change the decoder reads from the rank change, added to the cell's own value (so the
  cell keeps its residual from the decoder's line); a generated gene the control cell does not express
  becomes :math:`D(r'_g)`;
- every other gene keeps :math:`x_g`, plus ``outside_shift[g]`` when given (e.g. the change of the expected
  absent values between perturbed and control training cells, :func:`absent_shift`);
- values are clipped at 0.

Neither C2S-Scale (absolute decoding) nor scGen (latent arithmetic) decodes this way. Arrays only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from .absent import absent_rows, expected_absent
from .ranking import rank_genes


def relative_decode(
    control_X: np.ndarray,
    generated: Sequence[np.ndarray],
    values_at: Any,
    n_genes: int,
    *,
    outside_shift: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted cells (dense float32, cells × genes) from control cells and their generated sentences.

    Parameters
    ----------
    control_X
        Control cells × genes (the cells the sentences were generated from), non-negative.
    generated
        For every control cell, the column indices of its generated sentence's genes, in order.
    values_at
        ``values_at(ranks, columns) -> values``: the decoder's expression at 1-based ``ranks`` of the genes in
        ``columns`` (e.g. :meth:`~sc_llm.core.sentences.decoding.SentenceDecoder.predict_columns`).
    n_genes
        Length of the control sentences the generation was prompted with (the top genes ``C``).
    outside_shift
        Per-gene change added to the genes outside the head (default none: they keep the control value).
    """
    X = np.asarray(control_X, dtype=np.float32)
    if len(generated) != len(X):
        msg = f"{len(generated)} generated sentences for {len(X)} control cells."
        raise ValueError(msg)
    if outside_shift is not None and np.shape(outside_shift) != (X.shape[1],):
        msg = f"`outside_shift` must have one value per gene ({X.shape[1]}); got shape {np.shape(outside_shift)}."
        raise ValueError(msg)
    indptr, order = rank_genes(sparse.csr_matrix(X))
    out = X.copy() if outside_shift is None else np.maximum(X + np.asarray(outside_shift, dtype=np.float32), 0)
    rank_of = np.zeros(X.shape[1], dtype=np.int64)
    for i, gen in enumerate(generated):
        ranked = order[indptr[i] : indptr[i + 1]].astype(np.int64)
        gen = np.asarray(gen, dtype=np.int64)
        top = ranked[:n_genes]
        head = np.concatenate([gen, top[~np.isin(top, gen)]])
        rank_of[ranked] = np.arange(1, len(ranked) + 1)
        old = rank_of[head]
        new_values = values_at(np.arange(1, len(head) + 1), head)
        expressed = old > 0
        old_values = np.zeros(len(head))
        old_values[expressed] = values_at(old[expressed], head[expressed])
        out[i, head] = np.maximum(np.where(expressed, X[i, head] + new_values - old_values, new_values), 0)
        rank_of[ranked] = 0
    return out


def absent_shift(
    indptr: np.ndarray,
    ranks: np.ndarray,
    genes: np.ndarray,
    values: np.ndarray,
    X: Any,
    perturbed: np.ndarray,
    control: np.ndarray,
    length: int,
) -> np.ndarray:
    """Per gene: expected value when a length-``length`` sentence leaves it out, perturbed minus control cells.

    ``indptr``, ``ranks``, ``genes`` and ``values`` describe the training cells' sentences as a ragged array (as in
    :func:`~sc_llm.core.sentences.absent.expected_absent`); ``perturbed`` and ``control`` are the rows of ``X``
    of each condition. This is how the genes outside a sentence change on average between the conditions of
    the training cells: the change relative decoding gives them with ``absent='expected'``.
    """
    out = []
    for rows in (perturbed, control):
        if len(rows) == 0:
            msg = "Both conditions need training cells to measure how the genes outside the sentences change."
            raise ValueError(msg)
        lengths, table = expected_absent(indptr, ranks, genes, values, X, rows)
        out.append(absent_rows(table, lengths, np.array([length]))[0])
    return (out[0] - out[1]).astype(np.float32)
