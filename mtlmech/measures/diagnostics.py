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
from collections.abc import Callable, Sequence

import numpy as np

from ..problems.tasks import Dataset, Problem, Splits

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


def live_units(spec, params: list, x, *, min_sd: float = 0.01, rel: float = 0.01) -> np.ndarray:
    """Boolean (B, H): hidden units that are alive — their activation varies over the rows ``x``
    (standard deviation ≥ ``min_sd``) and some output relies on them (sensitivity ≥ ``rel`` × that
    output's largest unit sensitivity, :func:`mtlmech.measures.probes.hidden_sensitivity`). Weight decay
    kills units (outgoing weights → 0, or saturated constant activations); ranking dead units
    against each other inflates a rank correlation of sensitivities without any sharing."""
    import torch

    from ..engine.nets import as_batched, forward
    from .probes import hidden_sensitivity
    with torch.no_grad():
        h = forward(spec, params, as_batched(x, params[0].shape[0]))[-2]       # (B, n, H)
        varies = (h.std(dim=1) >= min_sd).cpu().numpy()
        sens = hidden_sensitivity(spec, params, x)                             # (B, K, H)
        used = (sens >= rel * sens.amax(dim=2, keepdim=True).clamp_min(1e-12)).any(dim=1).cpu().numpy()
    return varies & used


def masked_spearman(a: np.ndarray, b: np.ndarray, keep: np.ndarray, min_units: int = 3) -> np.ndarray:
    """Per row: Spearman correlation of ``a`` and ``b`` (B, H) over the columns where ``keep`` (B, H)
    is true; NaN when fewer than ``min_units`` columns are kept or either vector is constant."""
    from scipy.stats import spearmanr
    a, b, keep = np.asarray(a, float), np.asarray(b, float), np.asarray(keep, bool)
    if not a.shape == b.shape == keep.shape or a.ndim != 2:
        raise ValueError("a, b and keep must be (B, H) arrays of one shape")
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        x, y = a[i, keep[i]], b[i, keep[i]]
        if len(x) >= min_units and np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = spearmanr(x, y).statistic
    return out


def gradient_norm(spec, params: list, x, y, task_weight) -> np.ndarray:
    """(B,) Euclidean norm of the gradient of each member's own training loss (mean over rows of
    Σ_k w_k · ½(out_k − y_k)², ``task_weight`` (B, K)) with respect to all its parameters: how flat
    the loss is where a run stopped."""
    import torch

    from ..engine.nets import as_batched, loss_and_grads
    with torch.no_grad():
        b = params[0].shape[0]
        xb, yb = as_batched(x, b), as_batched(y, b)
        weight = torch.as_tensor(task_weight, dtype=xb.dtype)[:, None, :] / xb.shape[1]
        _, grads = loss_and_grads(spec, params, xb, yb, weight, with_value=False)
        return torch.sqrt(sum((g.reshape(b, -1) ** 2).sum(dim=1) for g in grads)).cpu().numpy()


def ratio_of_means_ci(num: np.ndarray, den: np.ndarray, level: float = 0.95, n_resamples: int = 10_000,
                      random_state: int = 0) -> tuple[float, float, float]:
    """mean(num) / mean(den) over paired rows (seeds) with a percentile-bootstrap CI (rows resampled
    together), e.g. the fraction of the STL−MTL gap that a control closes."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    ok = np.isfinite(num) & np.isfinite(den)
    num, den = num[ok], den[ok]
    if len(num) == 0 or den.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(random_state).integers(0, len(num), size=(n_resamples, len(num)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = num[idx].mean(axis=1) / den[idx].mean(axis=1)
    lo, hi = np.nanquantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(num.mean() / den.mean()), float(lo), float(hi)
