"""The standard paired protocol: per seed, one draw of data; every condition (STL on a task, MTL on
all tasks, variants) trains on that same data from the same initial weights, in one batch.

Members are laid out seed-major (member = seed × condition). Each condition names the outputs it
trains (``tasks``); a single-task net is the MTL architecture with loss on one output only, so its
other outputs never influence the hidden layer. Test error is measured at each task's own early
stopping snapshot (``stopping="per_task"``, the sources' practice) or at one shared stopping point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .nets import NetSpec, init_params
from .seeding import numpy_rng
from .tasks import Problem, Splits, as_batch
from .training import TrainResult, TrainSpec, train


@dataclass(frozen=True)
class Condition:
    """One way of training a net on a seed's data.

    ``tasks``: names of the outputs that carry loss. ``report``: tasks whose test metrics are
    recorded (default: ``tasks``). ``lr``/``weight_decay``/``layer_lr``: per-condition overrides.
    ``transform(splits, rng)`` returns modified splits (e.g. shuffled extra-task targets) drawn
    from this seed's and condition's own generator. ``loss_weight`` maps trained task names to a
    weight (> 0) on their loss term (default 1): a per-output step size for the output layer and
    a down-weighted share of the hidden layer's gradient (C97 §7.2's slower task).
    """

    name: str
    tasks: tuple[str, ...]
    report: tuple[str, ...] | None = None
    lr: float | None = None
    weight_decay: float | None = None
    layer_lr: tuple[float, ...] | None = None
    transform: Callable[[Splits, np.random.Generator], Splits] | None = field(default=None, compare=False)
    loss_weight: dict[str, float] | None = field(default=None, compare=False)

    def weight_of(self, task: str) -> float:
        """Loss weight of ``task`` in this condition (0 when it is not trained)."""
        if task not in self.tasks:
            return 0.0
        return float((self.loss_weight or {}).get(task, 1.0))


def stl_mtl_conditions(problem: Problem, main: Sequence[str] | None = None) -> list[Condition]:
    """STL on each task in ``main`` (default: every task) plus MTL on all tasks, reporting ``main``."""
    main = tuple(main or problem.task_names)
    return [Condition("STL", (t,)) for t in main] + [Condition("MTL", tuple(problem.task_names), report=main)]


def draw_splits(problem: Problem, key: tuple, seed: int, *, n_train: int, n_halt: int, n_test: int,
                shared_data: bool = False) -> Splits:
    """This seed's splits (or the one set all seeds share when ``shared_data``)."""
    rng = numpy_rng(*key, "data") if shared_data else numpy_rng(*key, seed, "data")
    return problem.splits(rng, n_train=n_train, n_halt=n_halt, n_test=n_test)


@dataclass
class Trained:
    """A trained batch: which (seed, condition) each member is, the data it saw and the result."""

    members: list[tuple[int, Condition]]
    splits: list[Splits]
    result: TrainResult
    problem: Problem

    def member_index(self, seed: int, condition: str) -> list[int]:
        return [i for i, (s, c) in enumerate(self.members) if s == seed and c.name == condition]


def train_conditions(problem: Problem, conditions: Sequence[Condition], seeds: Sequence[int], *, key: tuple,
                     n_train: int, n_halt: int, n_test: int, net: dict, train_spec: TrainSpec,
                     shared_data: bool = False, device: str = "cpu", dtype=torch.float32,
                     splits_for: Callable[[int], Splits] | None = None) -> Trained:
    """Train every (seed, condition) pair in one batch; ``key`` names the config for all streams.

    ``splits_for(seed)`` replaces the default per-seed draw (for experiments with their own data).
    With ``train_spec.record_curves`` the result holds per-epoch halt and (clean) test curves.
    """
    names = problem.task_names
    if len({(c.name, c.tasks) for c in conditions}) != len(conditions):
        raise ValueError("conditions must differ in name or trained tasks")
    for c in conditions:
        unknown = set(c.tasks) - set(names)
        if unknown:
            raise ValueError(f"condition {c.name} trains unknown tasks {sorted(unknown)}; problem has {names}")
        weighted = c.loss_weight or {}
        if set(weighted) - set(c.tasks) or any(not w > 0 for w in weighted.values()):
            raise ValueError(f"condition {c.name}: loss weights must be > 0 and name trained tasks, got {weighted}")
    spec = NetSpec(n_inputs=problem.n_inputs, n_outputs=problem.n_tasks, **net)
    members, member_splits = [], []
    for seed in seeds:
        base = splits_for(seed) if splits_for else draw_splits(problem, key, seed, n_train=n_train,
                                                              n_halt=n_halt, n_test=n_test, shared_data=shared_data)
        for c in conditions:
            s = c.transform(base, numpy_rng(*key, seed, c.name, c.tasks, "transform")) if c.transform else base
            members.append((seed, c))
            member_splits.append(s)
    params = init_params(spec, [(*key, seed) for seed, _ in members], device=device, dtype=dtype)
    weights = torch.tensor([[c.weight_of(t) for t in names] for _, c in members])
    per_member = lambda attr, default: [getattr(c, attr) if getattr(c, attr) is not None else default
                                        for _, c in members]
    layer_default = train_spec.layer_lr or (1.0,) * spec.n_layers
    result = train(spec, params, as_batch([s.train for s in member_splits], device=device, dtype=dtype),
                   train_spec=train_spec, task_weights=weights,
                   halt=as_batch([s.halt for s in member_splits], device=device, dtype=dtype),
                   test=as_batch([s.test for s in member_splits], clean=True, device=device, dtype=dtype)
                   if train_spec.record_curves else None,
                   member_keys=[(*key, seed, c.name, c.tasks) for seed, c in members],
                   lr=per_member("lr", train_spec.lr), weight_decay=per_member("weight_decay", train_spec.weight_decay),
                   layer_lr=per_member("layer_lr", layer_default))
    return Trained(members=members, splits=member_splits, result=result, problem=problem)


def score_rows(trained: Trained, *, stopping: str = "per_task", **labels) -> dict[int, dict]:
    """Per-seed records: one row per (condition, reported task) with test and training metrics at
    the snapshot, the stopping epoch and the diverged flag. ``labels`` are added to every row."""
    r, problem = trained.result, trained.problem
    device, dtype = r.final[0].device, r.final[0].dtype
    test = as_batch([s.test for s in trained.splits], clean=True, device=device, dtype=dtype)
    train_m = r.evaluate(as_batch([s.train for s in trained.splits], device=device, dtype=dtype), stopping)
    test_m = r.evaluate(test, stopping)
    epochs = r.best_epoch if stopping == "per_task" else r.shared_best_epoch[:, None].expand_as(r.best_epoch)
    out: dict[int, dict] = {}
    for i, (seed, c) in enumerate(trained.members):
        rows = out.setdefault(seed, {"rows": []})["rows"]
        for t in c.report or c.tasks:
            k = problem.task_index(t)
            rows.append({**labels, "condition": c.name, "task": t, "trained_tasks": "+".join(c.tasks),
                         "test_error": float(test_m["error"][i, k]), "test_mse": float(test_m["mse"][i, k]),
                         "train_error": float(train_m["error"][i, k]), "train_mse": float(train_m["mse"][i, k]),
                         "best_epoch": int(epochs[i, k]), "diverged": bool(r.diverged[i]),
                         "stopping": stopping})
    return out

