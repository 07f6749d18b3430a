"""Controls that rule out alternative explanations of an MTL benefit (C97 §3.1, §7; seed page).

- :func:`shuffled_targets`: C97's shuffle test as a :class:`~mtlmech.protocol.Condition` transform —
  the named tasks' targets are reassigned among the rows of the training and halt sets (one random
  permutation per split, shared by the named tasks), so each task's marginal distribution is kept
  and its relation to the inputs (and to the other tasks) is broken.
- :func:`scaled_layer_lr`: per-layer learning-rate multipliers with one layer scaled (the
  "effective learning rate" control: STL with the input→hidden rate × number of tasks).
- :func:`stuck_runs`: the local-minimum detector: runs whose training error never reaches ``tol``.
- :func:`snapshot_metric`: a metric read off per-epoch curves at each task's own best halt epoch or
  at one shared best epoch (the mean halt metric over the trained tasks), as the trainer does.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from .tasks import Dataset, Problem, Splits

SPLITS_SHUFFLED = ("train", "halt")


def shuffle_rows(data: Dataset, columns: Sequence[int], rng: np.random.Generator) -> Dataset:
    """A copy of ``data`` whose target columns ``columns`` (noisy and clean targets and the loss
    mask together) are permuted among the rows by one random permutation; inputs stay in place."""
    columns = list(columns)
    order = rng.permutation(len(data))
    y, y_clean, mask = data.y.copy(), data.y_clean.copy(), data.mask.copy()
    for a in (y, y_clean, mask):
        a[:, columns] = a[order][:, columns]
    return dataclasses.replace(data, y=y, y_clean=y_clean, mask=mask)


def shuffled_targets(problem: Problem, tasks: Sequence[str],
                     splits: Sequence[str] = SPLITS_SHUFFLED) -> Callable[[Splits, np.random.Generator], Splits]:
    """A ``Condition.transform`` that shuffles ``tasks``' targets among the rows of ``splits``."""
    columns = [problem.task_index(t) for t in tasks]
    unknown = set(splits) - {"train", "halt", "test"}
    if unknown or not columns:
        raise ValueError(f"shuffled_targets needs task names and splits among train/halt/test, got {tasks}, {splits}")

    def transform(s: Splits, rng: np.random.Generator) -> Splits:
        return dataclasses.replace(s, **{name: shuffle_rows(getattr(s, name), columns, rng) for name in splits})

    transform.__name__ = f"shuffled_targets({','.join(tasks)})"
    return transform


def scaled_layer_lr(n_layers: int, layer: int, factor: float) -> tuple[float, ...]:
    """Learning-rate multipliers: ``factor`` for ``layer`` (0 = input→hidden), 1 for the others."""
    if not 0 <= layer < n_layers or factor < 0:
        raise ValueError(f"need 0 ≤ layer < {n_layers} and factor ≥ 0, got layer {layer}, factor {factor}")
    return tuple(float(factor) if i == layer else 1.0 for i in range(n_layers))


def stuck_runs(train_error: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """True for runs that never reach training error ≤ ``tol``: ``train_error`` is (B,) (the lowest
    training error a run reached) or (B, E) (per-epoch curves; the minimum over epochs is used)."""
    e = np.asarray(train_error, dtype=np.float64)
    if e.ndim == 2:
        e = np.nanmin(e, axis=1)
    if e.ndim != 1 or tol < 0:
        raise ValueError("train_error must be (B,) or (B, E) and tol ≥ 0")
    return ~(e <= tol)


def snapshot_metric(halt: np.ndarray, metric: np.ndarray, trained: np.ndarray, stopping: str) -> tuple[np.ndarray, np.ndarray]:
    """``metric`` (B, E, K) read at the stopping epoch index chosen on ``halt`` (B, E, K).

    ``per_task``: task k at the first minimum of its own halt curve; ``shared``: every task at the
    first minimum of the mean halt curve over the member's trained tasks (``trained`` (B, K) bool).
    Returns (values (B, K), epoch indices (B, K)).
    """
    halt, metric = np.asarray(halt, dtype=np.float64), np.asarray(metric, dtype=np.float64)
    trained = np.asarray(trained, dtype=bool)
    if halt.shape != metric.shape or halt.ndim != 3 or trained.shape != (halt.shape[0], halt.shape[2]):
        raise ValueError("halt and metric must be (B, E, K) and trained (B, K)")
    if stopping == "per_task":
        idx = np.argmin(halt, axis=1)
    elif stopping == "shared":
        mean = (halt * trained[:, None, :]).sum(axis=2) / np.maximum(trained.sum(axis=1), 1)[:, None]
        idx = np.repeat(np.argmin(mean, axis=1)[:, None], halt.shape[2], axis=1)
    else:
        raise ValueError("stopping must be per_task or shared")
    return np.take_along_axis(metric, idx[:, None, :], axis=1)[:, 0, :], idx
