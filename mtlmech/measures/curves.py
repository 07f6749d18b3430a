"""Measures on per-epoch error curves (B, E): stopping point, overfitting rise, non-monotonicity."""

from __future__ import annotations

import numpy as np


def best_index(curves: np.ndarray) -> np.ndarray:
    """Index of each curve's minimum (first one on ties): (B,)."""
    return np.nanargmin(np.asarray(curves, dtype=np.float64), axis=1)


def rise_after_best(curves: np.ndarray) -> np.ndarray:
    """How far each curve climbs after its minimum: max(after) − min, (B,). Overfitting size."""
    c = np.asarray(curves, dtype=np.float64)
    best = best_index(c)
    after = np.where(np.arange(c.shape[1])[None, :] >= best[:, None], c, -np.inf)
    return after.max(axis=1) - c[np.arange(len(c)), best]


def is_non_monotonic(curves: np.ndarray, tol: float) -> np.ndarray:
    """True where a curve dips, rises by more than ``tol`` above the best value seen so far, and
    later falls more than ``tol`` below that earlier best (dip – rise – lower dip), (B,).

    ``tol`` keeps evaluation noise from counting: both the rise and the second dip must exceed it.
    """
    if tol < 0:
        raise ValueError("tol must be ≥ 0")
    c = np.asarray(curves, dtype=np.float64)
    run_min = np.minimum.accumulate(c, axis=1)                      # best so far, up to and incl. t
    later_min = np.flip(np.minimum.accumulate(np.flip(c, axis=1), axis=1), axis=1)  # best from t on
    rose = c - run_min > tol                                        # at t: well above the earlier dip
    later_lower = np.concatenate([later_min[:, 1:], np.full((len(c), 1), np.inf)], axis=1) < run_min - tol
    return np.any(rose & later_lower, axis=1)
