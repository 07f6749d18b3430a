"""What both trainers share (the PyTorch trainer, :mod:`.training`, and the fused kernel, :mod:`.fused`):
the data batch, the training settings, the result type, evaluation and the loss weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .nets import NetSpec, as_batched, predict

HALT_METRICS = ("mse", "error")
STOPPING_RULES = ("all_tasks", "per_task")
ALIGN_ROWS = 32


@contextmanager
def member_invariant():
    """Run the enclosed tensor code so that a member's numbers cannot depend on its batch-mates.

    On the CPU, elementwise kernels (``sigmoid``, ``tanh``, ``exp``) evaluate whole SIMD blocks
    with a vectorised formula and the leftover elements of a contiguous range with a scalar one,
    which differ in the last bit; the leftover range is at the end of the tensor and at every
    thread's chunk boundary. With every member's rows padded to a multiple of ``ALIGN_ROWS``
    (:meth:`Batch.aligned`) and one intra-op thread, every member's block is whole SIMD blocks
    wherever it sits in the batch. (Found by a full regenerate in which the last seed of a unit
    changed in the 6th digit.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Batch:
    """Inputs ``x`` (n, d) or (B, n, d), targets ``y`` and loss mask ``mask`` (n, K) or (B, n, K)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor

    @property
    def n_rows(self) -> int:
        return self.x.shape[-2]

    def aligned(self) -> Batch:
        """The batch with zero rows of mask 0 appended so each member holds a multiple of
        ``ALIGN_ROWS`` rows (they carry no loss and no metric; see :func:`member_invariant`)."""
        extra = -self.n_rows % ALIGN_ROWS
        if extra == 0:
            return self

        def pad(t):
            return torch.cat([t, t.new_zeros(*t.shape[:-2], extra, t.shape[-1])], dim=-2)
        return Batch(pad(self.x), pad(self.y), pad(self.mask))

    def rows(self, index: torch.Tensor) -> Batch:
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
    patience: int | None = None
    min_delta: float = 0.0
    lr_grid: tuple[float, ...] = (1.0,)   # multipliers of lr tried per condition (chosen on the halt set)
    # all_tasks (version 2): a net stops when all its trained tasks are stale at once, and each task's
    # snapshot follows its halt error until then; per_task (symmetric): each task's snapshot freezes
    # when that task's own patience runs out, and the net stops when every trained task is frozen
    stopping: str = "all_tasks"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.eval_every < 1:
            raise ValueError("epochs and eval_every must be ≥ 1")
        if not (0 < self.lr < float("inf")) or not 0 <= self.momentum < 1 or not 0 <= self.weight_decay < float("inf"):
            raise ValueError("need finite lr > 0, 0 ≤ momentum < 1 and finite weight_decay ≥ 0")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be ≥ 1 (or None for full batch)")
        if self.halt_metric not in HALT_METRICS:
            raise ValueError(f"halt_metric must be one of {HALT_METRICS}")
        if self.loss not in ("mse", "ce"):
            raise ValueError(f"loss must be mse or ce, got {self.loss!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError("patience must be ≥ 1 evaluations (or None: run to the epoch cap)")
        if not 0 <= self.min_delta < float("inf"):
            raise ValueError("min_delta must be finite and ≥ 0")
        if self.stopping not in STOPPING_RULES:
            raise ValueError(f"stopping must be one of {STOPPING_RULES}, got {self.stopping!r}")
        if not self.lr_grid or any(not 0 < m < float("inf") for m in self.lr_grid) \
                or len(set(self.lr_grid)) != len(self.lr_grid):
            raise ValueError(f"lr_grid needs distinct finite multipliers > 0, got {self.lr_grid}")


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
    shared_best_halt: torch.Tensor    # (B,) best mean halt value over the trained tasks
    diverged: torch.Tensor            # (B,) bool
    diverged_epoch: torch.Tensor      # (B,) first evaluation epoch with a non-finite loss, 0 if none
    epochs_run: int                   # the epoch cap
    stop_epoch: torch.Tensor | None = None   # (B,) epoch at which each member stopped
    stopped_by: list[str] = field(default_factory=list)  # per member: patience, cap or diverged
    curve_epochs: list[int] = field(default_factory=list)
    train_loss_curve: torch.Tensor | None = None   # (B, E)
    halt_curve: torch.Tensor | None = None         # (B, E, K) halt metric
    test_curve: torch.Tensor | None = None         # (B, E, K) test metric
    backend: str = "torch"                         # which trainer ran: "fused" or "torch"
    frozen_epoch: torch.Tensor | None = None       # (B, K) stopping="per_task": epoch each task froze (0: never)

    def take(self, index: Sequence[int]) -> TrainResult:
        """The result restricted to members ``index`` (in that order)."""
        idx = torch.as_tensor(list(index), dtype=torch.long, device=self.final[0].device)

        def sel(value):
            if isinstance(value, torch.Tensor):
                return value.index_select(0, idx)
            if isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                return [sel(v) for v in value]
            if isinstance(value, list) and len(value) == self.final[0].shape[0]:
                return [value[i] for i in index]
            return value
        return dataclasses.replace(self, **{f.name: sel(getattr(self, f.name)) for f in dataclasses.fields(self)
                                            if f.name not in ("spec", "epochs_run", "curve_epochs")})

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
    data = data.aligned()
    with torch.no_grad(), member_invariant():
        out = predict(spec, params, data.x)
        n_members = out.shape[0]
        y, mask = as_batched(data.y, n_members), as_batched(data.mask, n_members)
        count = mask.sum(dim=1).clamp_min(1)
        mse = (mask * (out - y) ** 2).sum(dim=1) / count
        error = (mask * ((out > 0.5) != (y > 0.5)).to(out.dtype)).sum(dim=1) / count
    return {"mse": mse, "error": error}


def loss_weights(task_weights: torch.Tensor, mask: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Each member's loss weight per row and task (B, n, K): its task weight × the row's mask /
    the rows of the (mini-)batch. Both trainers weight the squared error or cross-entropy with it."""
    return task_weights[:, None, :] * as_batched(mask, task_weights.shape[0]) / n_rows
