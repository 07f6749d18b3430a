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


MAX_EPOCHS = 1_000_000     # epoch cap limit: 20× the longest run in the suite (50 000); the trainers list every check
FLOAT32_MAX = 3.4028234663852886e38   # the trainers step in float32: a larger step or decay is infinite there


def _finite(value: float) -> bool:
    return value == value and abs(value) < float("inf")


@dataclass(frozen=True)
class TrainSpec:
    """Optimiser and stopping settings shared by every member of a batch.

    Validated here, once, for every caller (the command line turns the ValueError into
    ``error: --train.<field> ...``): each message starts with the field's name. ``layer_lr`` holds
    one multiplier per weight layer (its length is checked against the net by
    :func:`check_layers`); a multiplier of 0 freezes that layer."""

    epochs: int = field(default=1000, metadata={"help": "epoch cap (a safety cap when patience is set)"})
    lr: float = field(default=0.1, metadata={"help": "base learning rate (the grid multiplies it)"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum, in [0, 1)"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 decay on weights (not biases)"})
    layer_lr: tuple[float, ...] | None = field(default=None, metadata={
        "help": "learning-rate multiplier per weight layer, input side first; 0 freezes a layer"})
    batch_size: int | None = field(default=None, metadata={"help": "mini-batch rows (none: full batch)"})
    loss: str = field(default="mse", metadata={"help": "training loss", "choices": ("mse", "ce")})
    halt_metric: str = field(default="mse", metadata={"help": "halt-set metric for stopping and the lr choice",
                                                      "choices": HALT_METRICS})
    eval_every: int = field(default=1, metadata={"help": "epochs between halt-set checks"})
    record_curves: bool = field(default=False, metadata={"help": "keep per-check halt and test curves"})
    patience: int | None = field(default=None, metadata={
        "help": "stop after this many checks without improvement (none: run to the cap)"})
    min_delta: float = field(default=0.0, metadata={"help": "improvement smaller than this does not count"})
    lr_grid: tuple[float, ...] = field(default=(1.0,), metadata={
        "help": "multipliers of lr tried per condition, chosen per seed on the halt set"})
    stopping: str = field(default="all_tasks", metadata={
        "help": "all_tasks (v2): a net stops when all its trained tasks are stale at once; per_task "
                "(symmetric): each task's snapshot freezes when its own patience runs out, the net stops "
                "when every trained task is frozen", "choices": STOPPING_RULES})

    def __post_init__(self) -> None:
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be in 1..{MAX_EPOCHS:_} (the cap on training length), got {self.epochs}")
        if not 1 <= self.eval_every <= MAX_EPOCHS:
            raise ValueError(f"eval_every must be in 1..{MAX_EPOCHS:_} epochs, got {self.eval_every}")
        if not (_finite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (_finite(self.weight_decay) and 0 <= self.weight_decay <= FLOAT32_MAX):
            raise ValueError(f"weight_decay must be a number in [0, {FLOAT32_MAX:.3g}] (float32), got {self.weight_decay}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1 (or none for full batch), got {self.batch_size}")
        if self.halt_metric not in HALT_METRICS:
            raise ValueError(f"halt_metric must be one of {', '.join(HALT_METRICS)}, got {self.halt_metric!r}")
        if self.loss not in ("mse", "ce"):
            raise ValueError(f"loss must be mse or ce, got {self.loss!r}")
        if self.patience is not None and not 1 <= self.patience <= MAX_EPOCHS:
            raise ValueError(f"patience must be in 1..{MAX_EPOCHS:_} evaluations (or none: run to the epoch cap), "
                             f"got {self.patience}")
        if not (_finite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number ≥ 0, got {self.min_delta}")
        if self.stopping not in STOPPING_RULES:
            raise ValueError(f"stopping must be one of {STOPPING_RULES}, got {self.stopping!r}")
        if not self.lr_grid or any(not (_finite(m) and m > 0) for m in self.lr_grid) \
                or len(set(self.lr_grid)) != len(self.lr_grid):
            raise ValueError(f"lr_grid needs distinct finite multipliers > 0, got {_show(self.lr_grid)}")
        if self.layer_lr is not None and (not self.layer_lr or any(not (_finite(m) and m >= 0) for m in self.layer_lr)):
            raise ValueError(f"layer_lr needs one finite multiplier ≥ 0 per weight layer (0 freezes a layer), "
                             f"got {_show(self.layer_lr)}")
        step = self.lr * max(self.lr_grid) * max(self.layer_lr or (1.0,))
        if not step <= FLOAT32_MAX:
            raise ValueError(f"lr {self.lr:g} × the largest lr_grid multiplier {max(self.lr_grid):g}"
                             + (f" × layer_lr {max(self.layer_lr):g}" if self.layer_lr else "")
                             + f" is {step:.3g}, beyond float32 ({FLOAT32_MAX:.3g}): the trainers would step by infinity")

    def check_layers(self, n_layers: int) -> None:
        """``layer_lr`` must have one multiplier per weight layer of a net with ``n_layers`` of them."""
        if self.layer_lr is not None and len(self.layer_lr) != n_layers:
            raise ValueError(f"layer_lr has {len(self.layer_lr)} multiplier{'s' * (len(self.layer_lr) != 1)} "
                             f"({_show(self.layer_lr)}) but the net has {n_layers} weight layers")


def _show(values: tuple) -> str:
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


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
