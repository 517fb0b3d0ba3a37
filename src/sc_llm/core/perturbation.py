"""Perturbation baselines as array arithmetic: control, mean shift, the shift in a PCA space (scGen minus its VAE).

Inputs are dense cells × genes float arrays of (log-normalised) expression; group labels are per-cell
strings (cell types) or ``None``. Outputs are dense arrays of predicted cells, one per query cell, clipped
at 0 because expression is non-negative.
"""

from __future__ import annotations

import numpy as np


def mean_shift_vector(
    control: np.ndarray,
    perturbed: np.ndarray,
    control_groups: np.ndarray | None = None,
    perturbed_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Mean perturbed − control difference; with groups, the unweighted average of each group's difference.

    Only groups with both control and perturbed cells contribute, so every cell type counts once whatever
    its size (scGen balances cell types for the same reason). Without groups the pooled means are used.
    """
    control, perturbed = np.asarray(control, dtype=np.float64), np.asarray(perturbed, dtype=np.float64)
    if len(control) == 0 or len(perturbed) == 0:
        msg = "Need both control and perturbed cells to compute a shift."
        raise ValueError(msg)
    if control_groups is None or perturbed_groups is None:
        return perturbed.mean(0) - control.mean(0)
    control_groups, perturbed_groups = np.asarray(control_groups), np.asarray(perturbed_groups)
    shared = [g for g in dict.fromkeys(perturbed_groups.tolist()) if np.any(control_groups == g)]
    if not shared:
        msg = "No group has both control and perturbed cells; cannot estimate a per-group shift."
        raise ValueError(msg)
    shifts = [perturbed[perturbed_groups == g].mean(0) - control[control_groups == g].mean(0) for g in shared]
    return np.mean(shifts, axis=0)


def predict_control(query: np.ndarray) -> np.ndarray:
    """The no-change baseline: every query cell predicted as itself."""
    return np.array(query, dtype=np.float32, copy=True)


def predict_mean_shift(query: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Query cells plus a shift vector (from :func:`mean_shift_vector`), clipped at 0."""
    query = np.asarray(query, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    if shift.shape != (query.shape[1],):
        msg = f"The shift has {shift.shape} entries but the query cells have {query.shape[1]} genes."
        raise ValueError(msg)
    return np.maximum(query + shift, 0.0).astype(np.float32)


def predict_pca_shift(
    control: np.ndarray,
    perturbed: np.ndarray,
    query: np.ndarray,
    *,
    control_groups: np.ndarray | None = None,
    perturbed_groups: np.ndarray | None = None,
    n_comps: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """ScGen's latent arithmetic with PCA as the encoder and decoder.

    A PCA is fitted on the training cells (control and perturbed); the shift of :func:`mean_shift_vector`
    is taken between their PCA coordinates, added to the query cells' coordinates, and mapped back to genes
    (so the prediction also loses what the ``n_comps`` components do not hold, as scGen's decoder does).
    """
    from sklearn.decomposition import PCA

    train = np.vstack([np.asarray(control, dtype=np.float32), np.asarray(perturbed, dtype=np.float32)])
    n_comps = int(min(n_comps, train.shape[0] - 1, train.shape[1]))
    if n_comps < 1:
        msg = "Too few training cells for a PCA; need at least two."
        raise ValueError(msg)
    pca = PCA(n_components=n_comps, svd_solver="randomized", random_state=seed).fit(train)
    z_ctrl, z_pert = pca.transform(control), pca.transform(perturbed)
    delta = mean_shift_vector(z_ctrl, z_pert, control_groups, perturbed_groups)
    z_query = pca.transform(np.asarray(query, dtype=np.float32)) + delta
    return np.maximum(pca.inverse_transform(z_query), 0.0).astype(np.float32)
