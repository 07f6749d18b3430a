"""The seed-batched trainer: SGD with momentum, early stopping with per-task and shared snapshots.

One call trains B members (seeds × conditions) in one tensor program. The update rule is exactly
``torch.optim.SGD`` (momentum buffer ``v ← μv + g + λw``, ``w ← w − η·v``; weight decay on weights,
not biases; per-layer learning-rate multipliers), which ``tests/test_trainer.py`` checks against a
plain per-seed ``nn.Module`` loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .nets import NetSpec, Workspace, as_batched, loss_and_grads, predict
from .seeding import int_key

HALT_METRICS = ("mse", "error")
BACKENDS = ("auto", "torch", "fused")


@dataclass
class Batch:
    """Inputs ``x`` (n, d) or (B, n, d), targets ``y`` and loss mask ``mask`` (n, K) or (B, n, K)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor

    @property
    def n_rows(self) -> int:
        return self.x.shape[-2]

    def rows(self, index: torch.Tensor) -> "Batch":
        """Rows ``index`` (B, m) of every member (gathers per member)."""
        def take(t):
            t = as_batched(t, index.shape[0])
            return torch.gather(t, 1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))
        return Batch(take(self.x), take(self.y), take(self.mask))


@dataclass(frozen=True)
class TrainSpec:
    """Optimiser and stopping settings shared by every member of a batch."""

    epochs: int = 1000
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    layer_lr: tuple[float, ...] | None = None
    batch_size: int | None = None
    loss: str = "mse"
    halt_metric: str = "mse"
    eval_every: int = 1
    record_curves: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.eval_every < 1:
            raise ValueError("epochs and eval_every must be ≥ 1")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need lr > 0, 0 ≤ momentum < 1, weight_decay ≥ 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be ≥ 1 (or None for full batch)")
        if self.halt_metric not in HALT_METRICS:
            raise ValueError(f"halt_metric must be one of {HALT_METRICS}")


@dataclass
class TrainResult:
    """What a batch of members learned.

    ``task_snapshots[i]`` holds parameter i at each task's best halt epoch, shape (B, K, ...);
    ``shared_snapshot`` holds the parameters at the single best epoch of the members' mean halt
    error over their trained tasks. Without a halt set both equal the final parameters.
    """

    spec: NetSpec
    final: list[torch.Tensor]
    task_snapshots: list[torch.Tensor]
    shared_snapshot: list[torch.Tensor]
    best_epoch: torch.Tensor          # (B, K) epoch (1-based) of each task's best halt error
    best_halt: torch.Tensor           # (B, K)
    shared_best_epoch: torch.Tensor   # (B,)
    diverged: torch.Tensor            # (B,) bool
    diverged_epoch: torch.Tensor      # (B,) first evaluation epoch with a non-finite loss, 0 if none
    epochs_run: int
    curve_epochs: list[int] = field(default_factory=list)
    train_loss_curve: torch.Tensor | None = None   # (B, E)
    halt_curve: torch.Tensor | None = None         # (B, E, K) halt metric
    test_curve: torch.Tensor | None = None         # (B, E, K) test metric
    backend: str = "torch"                         # which trainer ran: "fused" or "torch"

    def task_params(self, k: int) -> list[torch.Tensor]:
        """Parameters of every member at task ``k``'s best halt epoch."""
        return [p[:, k] for p in self.task_snapshots]

    def evaluate(self, data: Batch, which: str = "per_task") -> dict[str, torch.Tensor]:
        """Metrics (B, K) on ``data``: task k scored with its own snapshot (``per_task``), the
        ``shared`` snapshot, or the ``final`` parameters."""
        if which == "final":
            return evaluate(self.spec, self.final, data)
        if which == "shared":
            return evaluate(self.spec, self.shared_snapshot, data)
        if which != "per_task":
            raise ValueError("which must be per_task, shared or final")
        per_task = [evaluate(self.spec, self.task_params(k), data) for k in range(self.best_epoch.shape[1])]
        return {m: torch.stack([per_task[k][m][:, k] for k in range(len(per_task))], dim=1)
                for m in per_task[0]}


def evaluate(spec: NetSpec, params: list[torch.Tensor], data: Batch) -> dict[str, torch.Tensor]:
    """Masked per-task ``mse`` (mean squared error) and ``error`` (0.5-threshold error rate), (B, K)."""
    with torch.no_grad():
        out = predict(spec, params, data.x)
        n_members = out.shape[0]
        y, mask = as_batched(data.y, n_members), as_batched(data.mask, n_members)
        count = mask.sum(dim=1).clamp_min(1)
        mse = (mask * (out - y) ** 2).sum(dim=1) / count
        error = (mask * ((out > 0.5) != (y > 0.5)).to(out.dtype)).sum(dim=1) / count
    return {"mse": mse, "error": error}


def _per_member(value, default: float, n_members: int, like: torch.Tensor) -> torch.Tensor:
    if value is None:
        value = default
    t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=like.dtype, device=like.device)
    return t.expand(n_members).clone() if t.dim() == 0 else t


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing function (elementwise, int64 arithmetic without overflow)."""
    mask = 0xFFFFFFFF
    x = x & mask
    x = ((x >> 16) ^ x) * 0x45D9F3B & mask
    x = ((x >> 16) ^ x) * 0x45D9F3B & mask
    return (x >> 16) ^ x


def minibatch_order(shuffle_keys: torch.Tensor, epoch: int, n_rows: int) -> torch.Tensor:
    """Per-member row permutation (B, n) for ``epoch``: counter-based, so it depends only on the
    member's key and the epoch, never on the batch or device."""
    rows = torch.arange(n_rows, device=shuffle_keys.device)
    mixed = _hash32(shuffle_keys[:, None] * 0x9E37 + _hash32(rows[None, :] + epoch * 0x10001))
    return torch.argsort(mixed, dim=1, stable=True)


def train(spec: NetSpec, params: list[torch.Tensor], data: Batch, *, train_spec: TrainSpec,
          task_weights: torch.Tensor, halt: Batch | None = None, test: Batch | None = None,
          member_keys: Sequence[tuple] | None = None, lr=None, weight_decay=None,
          layer_lr=None, backend: str = "auto") -> TrainResult:
    """Train every member; returns final parameters, per-task and shared early-stopping snapshots.

    ``task_weights`` (B, K) says which outputs each member trains (STL: a one-hot row; MTL: ones).
    ``lr``, ``weight_decay`` (B,) and ``layer_lr`` (B, n_layers) override the spec per member, so
    conditions that differ only in these settings share one batch. ``member_keys`` seed the
    mini-batch order (required when ``train_spec.batch_size`` is set). Inputs are not modified.
    ``backend``: ``"auto"`` runs :mod:`mtlmech.fused` where it applies (one hidden layer, full
    batch, CPU) and this PyTorch trainer, the reference, otherwise; ``"fused"`` or ``"torch"`` force one.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    ts = train_spec
    params = [p.clone() for p in params]
    n_members = params[0].shape[0]
    device, dtype = params[0].device, params[0].dtype
    n_tasks = spec.n_outputs
    task_weights = torch.as_tensor(task_weights, dtype=dtype, device=device).reshape(n_members, n_tasks)
    lr_m = _per_member(lr, ts.lr, n_members, params[0])
    wd_m = _per_member(weight_decay, ts.weight_decay, n_members, params[0])
    if layer_lr is None:
        layer_lr = ts.layer_lr if ts.layer_lr is not None else (1.0,) * spec.n_layers
    layer_lr_m = torch.as_tensor(np.asarray(layer_lr, dtype=np.float64), dtype=dtype, device=device)
    layer_lr_m = layer_lr_m.expand(n_members, spec.n_layers)
    if layer_lr_m.shape != (n_members, spec.n_layers):
        raise ValueError(f"layer_lr needs {spec.n_layers} multipliers per member")
    # step size per parameter tensor, shaped to broadcast against (B, ...)
    steps = []
    for i, p in enumerate(params):
        s = lr_m * layer_lr_m[:, i // 2]
        steps.append(s.reshape(-1, *([1] * (p.dim() - 1))))
    decays = [wd_m.reshape(-1, *([1] * (p.dim() - 1))) if i % 2 == 0 else None for i, p in enumerate(params)]
    velocity = [torch.zeros_like(p) for p in params]

    full_weight = task_weights[:, None, :] * as_batched(data.mask, n_members) / data.n_rows
    if backend != "torch":
        from . import fused
        why_not = fused.unsupported(spec, params, data, ts, task_weights, halt, test)
        if why_not is None:
            fused.announce(f"fused trainer ({fused.get_threads()} threads)")
            return fused.train_fused(spec, params, data, ts, task_weights=task_weights, steps=(steps[0], steps[2]),
                                     weight_decay=wd_m, loss_weight=full_weight, halt=halt, test=test)
        if backend == "fused":
            raise ValueError(f"backend='fused' does not apply: {why_not}")
        fused.announce(f"PyTorch trainer (the fused path does not apply: {why_not})")
    shuffle_keys = None
    if ts.batch_size is not None and ts.batch_size < data.n_rows:
        if member_keys is None:
            raise ValueError("mini-batch training needs member_keys for the row order")
        shuffle_keys = torch.tensor([int_key(*k, "shuffle") for k in member_keys], device=device)

    trained = task_weights > 0
    n_trained = trained.sum(dim=1).clamp_min(1)
    best_halt = torch.full((n_members, n_tasks), float("inf"), dtype=dtype, device=device)
    best_epoch = torch.zeros((n_members, n_tasks), dtype=torch.long, device=device)
    shared_best = torch.full((n_members,), float("inf"), dtype=dtype, device=device)
    shared_epoch = torch.zeros(n_members, dtype=torch.long, device=device)
    task_snap = [p[:, None].expand(-1, n_tasks, *p.shape[1:]).clone() for p in params]
    shared_snap = [p.clone() for p in params]
    diverged = torch.zeros(n_members, dtype=torch.bool, device=device)
    diverged_epoch = torch.zeros(n_members, dtype=torch.long, device=device)
    curve_epochs, loss_curve, halt_curve, test_curve = [], [], [], []
    workspace = Workspace()

    with torch.no_grad():
        for epoch in range(1, ts.epochs + 1):
            if shuffle_keys is None:
                batches = [(data, full_weight)]
            else:
                order = minibatch_order(shuffle_keys, epoch, data.n_rows)
                batches = []
                for start in range(0, data.n_rows, ts.batch_size):
                    part = data.rows(order[:, start:start + ts.batch_size])
                    batches.append((part, task_weights[:, None, :] * part.mask / part.n_rows))
            evaluating = epoch % ts.eval_every == 0 or epoch == ts.epochs
            epoch_loss = torch.zeros(n_members, dtype=dtype, device=device)
            for part, weight in batches:
                value, grads = loss_and_grads(spec, params, part.x, part.y, weight, ts.loss, with_value=evaluating,
                                              workspace=workspace)
                if evaluating:
                    epoch_loss += value
                for p, g, v, step, decay in zip(params, grads, velocity, steps, decays):
                    if decay is not None:
                        g.addcmul_(decay, p)
                    v.mul_(ts.momentum).add_(g)
                    p.addcmul_(step, v, value=-1)
            if not evaluating:
                continue
            # divergence is checked on evaluation epochs (the loss is computed there only)
            bad = ~torch.isfinite(epoch_loss) & ~diverged
            if bad.any():
                diverged |= bad
                diverged_epoch[bad] = epoch
            if halt is not None:
                h = evaluate(spec, params, halt)[ts.halt_metric]
                improved = (h < best_halt) & trained
                best_halt = torch.where(improved, h, best_halt)
                best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
                for snap, p in zip(task_snap, params):
                    mask = improved.reshape(*improved.shape, *([1] * (p.dim() - 1)))
                    snap.copy_(torch.where(mask, p[:, None], snap))
                mean_h = (h * trained).sum(dim=1) / n_trained
                better = mean_h < shared_best
                shared_best = torch.where(better, mean_h, shared_best)
                shared_epoch = torch.where(better, torch.full_like(shared_epoch, epoch), shared_epoch)
                for snap, p in zip(shared_snap, params):
                    snap.copy_(torch.where(better.reshape(-1, *([1] * (p.dim() - 1))), p, snap))
            if ts.record_curves:
                curve_epochs.append(epoch)
                loss_curve.append(epoch_loss)
                if halt is not None:
                    halt_curve.append(h)
                if test is not None:
                    test_curve.append(evaluate(spec, params, test)[ts.halt_metric])

    if halt is None:
        task_snap = [p[:, None].expand(-1, n_tasks, *p.shape[1:]).clone() for p in params]
        shared_snap = [p.clone() for p in params]
        best_epoch = torch.full((n_members, n_tasks), ts.epochs, dtype=torch.long, device=device)
        shared_epoch = torch.full((n_members,), ts.epochs, dtype=torch.long, device=device)

    def stack(curve):
        return torch.stack(curve, dim=1) if curve else None

    return TrainResult(spec=spec, final=params, task_snapshots=task_snap, shared_snapshot=shared_snap,
                       best_epoch=best_epoch, best_halt=best_halt, shared_best_epoch=shared_epoch,
                       diverged=diverged, diverged_epoch=diverged_epoch, epochs_run=ts.epochs,
                       curve_epochs=curve_epochs, train_loss_curve=stack(loss_curve),
                       halt_curve=stack(halt_curve), test_curve=stack(test_curve))
