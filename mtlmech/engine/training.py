"""The seed-batched trainer: SGD with momentum, early stopping with per-task and shared snapshots.

One call trains B members (seeds × conditions) in one tensor program. The update rule is exactly
``torch.optim.SGD`` (momentum buffer ``v ← μv + g + λw``, ``w ← w − η·v``; weight decay on weights,
not biases; per-layer learning-rate multipliers), which ``tests/test_trainer.py`` checks against a
plain per-seed ``nn.Module`` loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch

from .common import (
    ALIGN_ROWS,
    HALT_METRICS,
    STOPPING_RULES,
    Batch,
    TrainResult,
    TrainSpec,
    evaluate,
    loss_weights,
    member_invariant,
)
from .nets import NetSpec, Workspace, loss_and_grads
from .seeding import int_key

__all__ = ["ALIGN_ROWS", "BACKENDS", "HALT_METRICS", "STOPPING_RULES", "Batch", "TrainResult", "TrainSpec", "evaluate", "loss_weights",
           "member_invariant", "minibatch_order", "resolve_backend", "resolve_member_settings", "train"]

TORCH_TRAINER_VERSION = 2   # bump when this trainer's numbers change (2: feature-major training step)


@contextmanager
def denormals_flushed():
    """Subnormal results and operands count as zero in the enclosed CPU code on this thread
    (``torch.set_flush_denormal``; with :func:`member_invariant`'s one intra-op thread that is all of
    it). Saturated nets produce subnormal deltas, which some CPUs (Intel) compute 50-100x slower;
    flushing them is part of the fused kernel's declared arithmetic (``mtlmech.engine.fused.FLUSH_DENORMALS``),
    so the two trainers keep agreeing. Switched off again on exit (mtlmech never leaves it on; torch
    has no way to read the previous setting)."""
    from . import fused
    if not fused.FLUSH_DENORMALS:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


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


STOP_REASONS = ("patience", "cap", "diverged")
BACKENDS = ("auto", "torch", "fused")


def resolve_backend(requested: str, net=None, train: TrainSpec | None = None, device: str = "cpu") -> str:
    """The trainer that will run for this network and training setting, with its version:
    ``torch-v<n>`` or ``fused-v<n>`` (cache keys record it, since the two agree to ~1e-7, not
    bitwise). ``auto`` takes the fused kernel where it applies (CPU, one hidden layer, full batch)."""
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {requested!r}")
    torch_trainer = f"torch-v{TORCH_TRAINER_VERSION}"
    if requested == "torch":
        return torch_trainer
    from . import fused
    why = fused.structure_unsupported(len(net.hidden) if net is not None else 1,
                                      train.batch_size if train is not None else None, device)
    if why is None:
        return fused.arithmetic_name()
    if requested == "fused":
        raise ValueError(f"--backend fused does not apply here: {why}")
    return torch_trainer


def resolve_member_settings(spec: NetSpec, train_spec: TrainSpec, n_members: int, *, lr=None, weight_decay=None,
                            layer_lr=None, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-member learning rate (B,), weight decay (B,) and layer multipliers (B, n_layers).

    The one place where per-member overrides meet the spec's defaults: a value of ``None``, or a
    ``None`` entry in a per-member list, means the spec's value. A layer multiplier of 0 freezes
    that layer."""
    default_layers = train_spec.layer_lr if train_spec.layer_lr is not None else (1.0,) * spec.n_layers

    def per_member(value, default, width=None):
        shared = value is None or (np.ndim(value) == 0 if width is None else
                                   not any(v is None or np.ndim(v) for v in value))
        if shared:
            value = [value] * n_members
        value = [default if v is None else v for v in value]
        t = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=like.dtype, device=like.device)
        if t.shape != ((n_members,) if width is None else (n_members, width)):
            raise ValueError(f"per-member settings must have shape {(n_members,) if width is None else (n_members, width)}, "
                             f"got {tuple(t.shape)}")
        return t

    lr_m = per_member(lr, train_spec.lr)
    wd_m = per_member(weight_decay, train_spec.weight_decay)
    layers = per_member(layer_lr, default_layers, spec.n_layers)
    if not (torch.isfinite(lr_m).all() and (lr_m > 0).all()):
        raise ValueError("learning rates must be finite and > 0")
    if not (torch.isfinite(layers).all() and (layers >= 0).all()):
        raise ValueError("layer learning-rate multipliers must be finite and ≥ 0")
    if not (torch.isfinite(wd_m).all() and (wd_m >= 0).all()):
        raise ValueError("weight decay must be finite and ≥ 0")
    return lr_m, wd_m, layers


def train(spec: NetSpec, params: list[torch.Tensor], data: Batch, *, train_spec: TrainSpec,
          task_weights: torch.Tensor, halt: Batch | None = None, test: Batch | None = None,
          member_keys: Sequence[tuple] | None = None, lr=None, weight_decay=None,
          layer_lr=None, backend: str = "auto") -> TrainResult:
    """Train every member; returns final parameters, per-task and shared early-stopping snapshots.

    ``task_weights`` (B, K) says which outputs each member trains (STL: a one-hot row; MTL: ones).
    ``lr``, ``weight_decay`` (B,) and ``layer_lr`` (B, n_layers) override the spec per member, so
    conditions that differ only in these settings share one batch. ``member_keys`` seed the
    mini-batch order (required when ``train_spec.batch_size`` is set). Inputs are not modified.

    Stopping: with ``train_spec.patience = P`` a member stops at the first evaluation epoch where
    none of its trained tasks has improved its halt metric by more than ``min_delta`` for P
    evaluations (``stopped_by = "patience"``), or at once when its loss is non-finite
    (``"diverged"``); ``epochs`` is a safety cap (``"cap"``). Stopped members leave the batch (the
    member axis is compacted), so the work shrinks as members finish; since every operation acts
    on each member's slice alone, a member's numbers do not depend on when others stop. Without
    ``patience`` every member runs to ``epochs`` and ``stopped_by`` is ``"cap"``.

    ``backend``: ``"auto"`` runs :mod:`mtlmech.engine.fused` where it applies (one hidden layer, full
    batch, CPU) and this PyTorch trainer, the reference, otherwise; ``"fused"`` or ``"torch"`` force one.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    ts = train_spec
    n_members = params[0].shape[0]
    device, dtype = params[0].device, params[0].dtype
    n_tasks = spec.n_outputs
    if ts.patience is not None and halt is None:
        raise ValueError("patience stopping needs a halt set")
    task_weights = torch.as_tensor(task_weights, dtype=dtype, device=device).reshape(n_members, n_tasks)
    lr_m, wd_m, layer_lr_m = resolve_member_settings(spec, ts, n_members, lr=lr, weight_decay=weight_decay,
                                                     layer_lr=layer_lr, like=params[0])
    if backend != "torch":
        from . import fused
        why_not = fused.unsupported(spec, params, data, ts, task_weights, halt, test)
        if why_not is None:
            fused.announce(f"fused trainer, threads: {fused.get_threads()}")
            return fused.train_fused(spec, params, data, ts, task_weights=task_weights, lr=lr_m, weight_decay=wd_m,
                                     layer_lr=layer_lr_m, halt=halt, test=test)
        if backend == "fused":
            raise ValueError(f"backend='fused' does not apply: {why_not}")
        fused.announce(f"PyTorch trainer (the fused path does not apply: {why_not})")
    shuffle_keys = None
    if ts.batch_size is not None and ts.batch_size < data.n_rows:
        if member_keys is None:
            raise ValueError("mini-batch training needs member_keys for the row order")
        shuffle_keys = torch.tensor([int_key(*k, "shuffle") for k in member_keys], device=device)
    n_rows = data.n_rows
    if shuffle_keys is None:   # mini-batches are aligned as they are cut
        data = data.aligned()
    halt = halt.aligned() if halt is not None else None
    test = test.aligned() if test is not None else None

    # Working state of the active members (leading axis = active members); ``done`` holds every
    # member's state (leading axis = all members) and receives a member's state when it stops.
    n_params = len(params)
    work: dict[str, torch.Tensor] = {f"p{i}": p.clone() for i, p in enumerate(params)}
    work.update({f"v{i}": torch.zeros_like(p) for i, p in enumerate(params)})
    work.update({f"task_snap{i}": p[:, None].expand(-1, n_tasks, *p.shape[1:]).clone() for i, p in enumerate(params)})
    work.update({f"shared_snap{i}": p.clone() for i, p in enumerate(params)})
    for i, p in enumerate(params):  # step size (and decay, weights only) per parameter tensor, broadcastable
        shape = (-1, *([1] * (p.dim() - 1)))
        work[f"step{i}"] = (lr_m * layer_lr_m[:, i // 2]).reshape(shape)
        if i % 2 == 0:
            work[f"decay{i}"] = wd_m.reshape(shape)
    work.update(
        task_weights=task_weights,
        best_halt=torch.full((n_members, n_tasks), float("inf"), dtype=dtype, device=device),
        best_epoch=torch.zeros((n_members, n_tasks), dtype=torch.long, device=device),
        ref=torch.full((n_members, n_tasks), float("inf"), dtype=dtype, device=device),
        last_improved=torch.zeros((n_members, n_tasks), dtype=torch.long, device=device),
        shared_best=torch.full((n_members,), float("inf"), dtype=dtype, device=device),
        shared_epoch=torch.zeros(n_members, dtype=torch.long, device=device),
        diverged=torch.zeros(n_members, dtype=torch.bool, device=device),
        diverged_epoch=torch.zeros(n_members, dtype=torch.long, device=device),
        stop_epoch=torch.full((n_members,), ts.epochs, dtype=torch.long, device=device),
        stop_code=torch.full((n_members,), STOP_REASONS.index("cap"), dtype=torch.long, device=device),
        frozen=torch.zeros((n_members, n_tasks), dtype=torch.bool, device=device),
        frozen_epoch=torch.zeros((n_members, n_tasks), dtype=torch.long, device=device),
    )
    per_task = ts.stopping == "per_task" and ts.patience is not None
    member_data = {name: t for name, t in (("x", data.x), ("y", data.y), ("mask", data.mask)) if t.dim() == 3}
    for prefix, batch in (("halt_", halt), ("test_", test)):
        if batch is not None:
            member_data.update({prefix + n: t for n, t in (("x", batch.x), ("y", batch.y), ("mask", batch.mask))
                                if t.dim() == 3})
    if shuffle_keys is not None:
        member_data["shuffle_keys"] = shuffle_keys
    else:   # full batch: each member's loss weights, built once (they leave the batch with it)
        member_data["loss_weight"] = loss_weights(task_weights, data.mask, n_rows)
    done = {name: t.clone() for name, t in work.items()}
    active = torch.arange(n_members, device=device)
    curve_epochs, loss_curve, halt_curve, test_curve = [], [], [], []
    workspace = Workspace()

    def view(name: str, shared: torch.Tensor) -> torch.Tensor:
        return member_data.get(name, shared)

    with torch.no_grad(), member_invariant(), denormals_flushed():
        for epoch in range(1, ts.epochs + 1):
            p_act = [work[f"p{i}"] for i in range(n_params)]
            n_active = active.numel()
            tw = work["task_weights"]
            train_b = Batch(view("x", data.x), view("y", data.y), view("mask", data.mask))
            if shuffle_keys is None:
                batches = [(train_b, member_data["loss_weight"])]
            else:
                order = minibatch_order(member_data["shuffle_keys"], epoch, n_rows)
                batches = []
                for start in range(0, n_rows, ts.batch_size):
                    part = train_b.rows(order[:, start:start + ts.batch_size])
                    padded = part.aligned()
                    batches.append((padded, loss_weights(tw, padded.mask, part.n_rows)))
            evaluating = epoch % ts.eval_every == 0 or epoch == ts.epochs
            epoch_loss = torch.zeros(n_active, dtype=dtype, device=device)
            for part, weight in batches:
                value, grads = loss_and_grads(spec, p_act, part.x, part.y, weight, ts.loss, with_value=evaluating,
                                              workspace=workspace)
                if evaluating:
                    epoch_loss += value
                for i, (p, g) in enumerate(zip(p_act, grads)):
                    if i % 2 == 0:
                        g.addcmul_(work[f"decay{i}"], p)
                    v = work[f"v{i}"]
                    v.mul_(ts.momentum).add_(g)
                    p.addcmul_(work[f"step{i}"], v, value=-1)
            if not evaluating:
                continue
            # divergence is checked on evaluation epochs (the loss is computed there only)
            bad = ~torch.isfinite(epoch_loss) & ~work["diverged"]
            if bad.any():
                work["diverged"] |= bad
                work["diverged_epoch"][bad] = epoch
            trained = tw > 0
            if halt is not None:
                halt_b = Batch(view("halt_x", halt.x), view("halt_y", halt.y), view("halt_mask", halt.mask))
                h = evaluate(spec, p_act, halt_b)[ts.halt_metric]
                improved = (h < work["best_halt"]) & trained & ~work["frozen"]
                work["best_halt"] = torch.where(improved, h, work["best_halt"])
                work["best_epoch"] = torch.where(improved, torch.full_like(work["best_epoch"], epoch), work["best_epoch"])
                for i, p in enumerate(p_act):
                    snap = work[f"task_snap{i}"]
                    snap.copy_(torch.where(improved.reshape(*improved.shape, *([1] * (p.dim() - 1))), p[:, None], snap))
                mean_h = (h * trained).sum(dim=1) / trained.sum(dim=1).clamp_min(1)
                better = mean_h < work["shared_best"]
                work["shared_best"] = torch.where(better, mean_h, work["shared_best"])
                work["shared_epoch"] = torch.where(better, torch.full_like(work["shared_epoch"], epoch),
                                                   work["shared_epoch"])
                for i, p in enumerate(p_act):
                    snap = work[f"shared_snap{i}"]
                    snap.copy_(torch.where(better.reshape(-1, *([1] * (p.dim() - 1))), p, snap))
                gained = (h < work["ref"] - ts.min_delta) & trained & ~work["frozen"]
                work["ref"] = torch.where(gained, h, work["ref"])
                work["last_improved"] = torch.where(gained, torch.full_like(work["last_improved"], epoch),
                                                    work["last_improved"])
            if ts.record_curves:
                curve_epochs.append(epoch)
                loss_curve.append(_scatter_full(epoch_loss, active, n_members))
                if halt is not None:
                    halt_curve.append(_scatter_full(h, active, n_members))
                if test is not None:
                    test_b = Batch(view("test_x", test.x), view("test_y", test.y), view("test_mask", test.mask))
                    test_curve.append(_scatter_full(evaluate(spec, p_act, test_b)[ts.halt_metric], active, n_members))
            if ts.patience is None or epoch == ts.epochs:
                continue
            stale = ((epoch - work["last_improved"]) >= ts.patience * ts.eval_every) | ~trained
            if per_task:   # a task freezes when its own patience runs out; the net stops when all are frozen
                freezing = stale & trained & ~work["frozen"]
                work["frozen"] |= freezing
                work["frozen_epoch"] = torch.where(freezing, torch.full_like(work["frozen_epoch"], epoch),
                                                   work["frozen_epoch"])
                stale = work["frozen"] | ~trained
            stopping = work["diverged"] | stale.all(dim=1)
            if stopping.any():
                code = torch.where(work["diverged"], STOP_REASONS.index("diverged"), STOP_REASONS.index("patience"))
                work["stop_code"] = torch.where(stopping, code, work["stop_code"])
                work["stop_epoch"] = torch.where(stopping, torch.full_like(work["stop_epoch"], epoch),
                                                 work["stop_epoch"])
                leaving = stopping.nonzero().squeeze(1)
                for name, t in work.items():
                    done[name][active[leaving]] = t[leaving]
                keep = (~stopping).nonzero().squeeze(1)
                active = active[keep]
                work = {name: t[keep] for name, t in work.items()}
                member_data = {name: t[keep] for name, t in member_data.items()}
                if active.numel() == 0:
                    break
        for name, t in work.items():
            done[name][active] = t

    final = [done[f"p{i}"] for i in range(n_params)]
    task_snap = [done[f"task_snap{i}"] for i in range(n_params)]
    shared_snap = [done[f"shared_snap{i}"] for i in range(n_params)]
    best_epoch, shared_epoch = done["best_epoch"], done["shared_epoch"]
    if halt is None:
        task_snap = [p[:, None].expand(-1, n_tasks, *p.shape[1:]).clone() for p in final]
        shared_snap = [p.clone() for p in final]
        best_epoch = torch.full((n_members, n_tasks), ts.epochs, dtype=torch.long, device=device)
        shared_epoch = torch.full((n_members,), ts.epochs, dtype=torch.long, device=device)

    def stack(curve):
        return torch.stack(curve, dim=1) if curve else None

    return TrainResult(spec=spec, final=final, task_snapshots=task_snap, shared_snapshot=shared_snap,
                       best_epoch=best_epoch, best_halt=done["best_halt"], shared_best_epoch=shared_epoch,
                       shared_best_halt=done["shared_best"],
                       diverged=done["diverged"], diverged_epoch=done["diverged_epoch"], epochs_run=ts.epochs,
                       stop_epoch=done["stop_epoch"],
                       stopped_by=[STOP_REASONS[int(c)] for c in done["stop_code"]],
                       curve_epochs=curve_epochs, train_loss_curve=stack(loss_curve),
                       halt_curve=stack(halt_curve), test_curve=stack(test_curve),
                       frozen_epoch=done["frozen_epoch"] if ts.stopping == "per_task" else None)


def _scatter_full(values: torch.Tensor, active: torch.Tensor, n_members: int) -> torch.Tensor:
    """A (B, ...) tensor holding ``values`` at the active members' rows and NaN elsewhere."""
    full = torch.full((n_members, *values.shape[1:]), float("nan"), dtype=values.dtype, device=values.device)
    full[active] = values
    return full
