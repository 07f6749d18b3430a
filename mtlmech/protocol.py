"""The standard paired protocol: per seed, one draw of data; every condition (STL on a task, MTL on
all tasks, variants) trains on that same data from the same initial weights, in one batch.

Members are laid out seed-major (member = seed × condition × learning-rate grid point). Each
condition names the outputs it trains (``tasks``); a single-task net is the MTL architecture with
loss on one output only, so its other outputs never influence the hidden layer.

Fair comparison: every condition gets the same pre-registered learning-rate grid (multipliers of
its base rate, ``TrainSpec.lr_grid``; optionally a second axis for the input→hidden layer,
``Condition.hidden_lr_grid``). All grid points train in the same batch from the same initial
weights on the same rows; for each seed and condition the protocol keeps the grid point with the
lowest halt error (the halt set only — test data never enters the choice) and reports that net.
Test error is measured at each task's own early-stopping snapshot (``stopping="per_task"``, the
sources' practice) or at one shared stopping point.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from .engine.nets import as_net_config, forward, init_params
from .engine.seeding import numpy_rng
from .engine.training import Batch, TrainResult, TrainSpec, train
from .problems.tasks import Problem, Splits, as_batch


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
    lr_grid: tuple[float, ...] | None = None
    hidden_lr_grid: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        """A condition's own settings are checked once, here (the spec's are checked by TrainSpec)."""
        for label, g in (("lr_grid", self.lr_grid), ("hidden_lr_grid", self.hidden_lr_grid)):
            if g is not None and (not g or any(not (0 < m < float("inf")) for m in g) or len(set(g)) != len(g)):
                raise ValueError(f"condition {self.name}: {label} needs distinct finite multipliers > 0, got {g}")
        if self.lr is not None and not 0 < self.lr < float("inf"):
            raise ValueError(f"condition {self.name}: lr must be finite and > 0, got {self.lr}")
        if self.weight_decay is not None and not 0 <= self.weight_decay < float("inf"):
            raise ValueError(f"condition {self.name}: weight_decay must be finite and ≥ 0, got {self.weight_decay}")
        if self.layer_lr is not None and any(not 0 <= m < float("inf") for m in self.layer_lr):
            raise ValueError(f"condition {self.name}: layer_lr multipliers must be finite and ≥ 0 (0 freezes a layer), "
                             f"got {self.layer_lr}")

    def grid(self, default: tuple[float, ...]) -> list[tuple[float, float]]:
        """(lr multiplier, input→hidden multiplier) points tried for this condition (``default``:
        the spec's ``lr_grid``, validated by :class:`~mtlmech.engine.common.TrainSpec`)."""
        lrs = self.lr_grid if self.lr_grid is not None else default
        return [(m, h) for m in sorted(lrs) for h in sorted(self.hidden_lr_grid)]

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
    """A trained batch: which (seed, condition) each member is, the data it saw and the result.

    After :func:`train_conditions` there is one member per (seed, condition): the grid point chosen
    on the halt set; ``choices[i]`` says which (learning rate, multipliers, grid size, whether it
    is at a grid edge)."""

    members: list[tuple[int, Condition]]
    splits: list[Splits]
    result: TrainResult
    problem: Problem
    choices: list[dict] = field(default_factory=list)

    def member_index(self, seed: int, condition: str) -> list[int]:
        return [i for i, (s, c) in enumerate(self.members) if s == seed and c.name == condition]


def _edge(value: float, axis: Sequence[float]) -> str:
    if len(axis) < 2:
        return ""
    return "low" if value == min(axis) else "high" if value == max(axis) else ""


def halt_criterion(result: TrainResult, members: Sequence[int], reported: Sequence[Sequence[int]],
                   select_on: str = "per_task") -> np.ndarray:
    """The halt value each member is chosen on: the mean over its reported tasks of each task's best
    halt value (``per_task``) or the best of the mean over its trained tasks (``shared``);
    non-finite values count as +inf. Reads halt values only."""
    if select_on == "per_task":
        crit = [float(result.best_halt[i, list(ks)].mean()) for i, ks in zip(members, reported)]
    elif select_on == "shared":
        crit = [float(result.shared_best_halt[i]) for i in members]
    else:
        raise ValueError("select_on must be per_task or shared")
    crit = np.asarray(crit, dtype=np.float64)
    return np.where(np.isfinite(crit), crit, np.inf)


def select_on_halt(result: TrainResult, groups: Sequence[Sequence[int]], reported: Sequence[Sequence[int]],
                   *, select_on: str = "per_task") -> list[int]:
    """For each group of members (one seed × condition over its grid points), the member with the
    lowest :func:`halt_criterion`; ties go to the earlier member (the smaller learning rate)."""
    return [group[int(np.argmin(halt_criterion(result, group, [ks] * len(group), select_on)))]
            for group, ks in zip(groups, reported)]


SHARE_ENV = "MTLMECH_SHARE_MEMBERS"   # "0" trains every member, duplicates included (for tests)
_work_records: list[list[dict]] = []   # open :func:`record_work` collectors


def sharing_enabled(share: bool | None = None) -> bool:
    """Whether :func:`train_conditions` trains identical members once: ``share`` if given, else on
    unless ``MTLMECH_SHARE_MEMBERS=0``."""
    return share if share is not None else os.environ.get(SHARE_ENV, "1") != "0"


@contextmanager
def record_work() -> Iterator[list[dict]]:
    """Collect one record per :func:`train_conditions` call in the block: what was trained and how
    long (for ``benchmarks/work_accounting.py``). Reads what the trainer returns; changes no number."""
    records: list[dict] = []
    _work_records.append(records)
    try:
        yield records
    finally:
        _work_records.remove(records)


def _digest(splits: Splits, with_test: bool) -> str:
    """Content digest of the arrays a trainer reads from ``splits``."""
    h = hashlib.sha256()
    parts = [(splits.train, "y"), (splits.halt, "y")] + ([(splits.test, "y_clean")] if with_test else [])
    for data, target in parts:
        for a in (data.x, getattr(data, target), data.mask):
            a = np.ascontiguousarray(a)
            h.update(repr((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def identical_members(seed_index: Sequence[int], member_splits: Sequence[Splits], weights: torch.Tensor,
                      lr: Sequence[float], weight_decay: Sequence[float], layer_lr: Sequence[tuple],
                      member_keys: Sequence[tuple] | None, *, with_test: bool) -> list[int]:
    """For each member, the first member of the batch that is provably the same net: the same
    initial weights (seed), the same data (by content), the same task weights, learning rate, weight
    decay and layer multipliers (as resolved), and, where the row order is drawn per member
    (mini-batches), the same member key. The batch shares one train spec."""
    digests: dict[int, str] = {}
    first: dict[tuple, int] = {}
    out = []
    for i, s in enumerate(member_splits):
        if id(s) not in digests:
            digests[id(s)] = _digest(s, with_test)
        signature = (int(seed_index[i]), digests[id(s)], tuple(float(w) for w in weights[i].tolist()),
                     float(lr[i]), float(weight_decay[i]), tuple(float(m) for m in layer_lr[i]),
                     tuple(member_keys[i]) if member_keys is not None else None)
        out.append(first.setdefault(signature, i))
    return out


def train_conditions(problem: Problem, conditions: Sequence[Condition], seeds: Sequence[int], *, key: tuple,
                     n_train: int, n_halt: int, n_test: int, net, train_spec: TrainSpec,
                     shared_data: bool = False, device: str = "cpu", dtype=torch.float32,
                     splits_for: Callable[[int], Splits] | None = None, select_on: str = "per_task",
                     select: bool = True, backend: str = "auto", share: bool | None = None) -> Trained:
    """Train every (seed, condition, grid point) in one batch and keep, per seed and condition,
    the grid point chosen on the halt set; ``key`` names the config for all random streams.

    With ``select=False`` every grid point is kept (``choices[i]["chosen"]`` marks the halt-set
    choice), e.g. to choose one rate per condition on pilot seeds (:func:`pilot_rates`).
    ``backend`` picks the trainer (``RunContext.backend``; see :func:`mtlmech.engine.training.train`).
    ``net`` is a :class:`~mtlmech.engine.nets.NetConfig` (or a dict of its fields). ``splits_for(seed)``
    replaces the default per-seed draw (for experiments with their own data). With
    ``train_spec.record_curves`` the result holds per-epoch halt and (clean) test curves.

    Members that are provably the same net (:func:`identical_members`, e.g. an untuned condition
    and its tuned condition's ×1 grid point) are trained once and both get its result: a member's
    numbers never depend on its batch-mates, so this changes no number. ``share=False`` (or
    ``MTLMECH_SHARE_MEMBERS=0``) trains every member.
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
    spec = as_net_config(net).spec(problem.n_inputs, problem.n_tasks)
    train_spec.check_layers(spec.n_layers)
    for c in conditions:
        if c.layer_lr is not None and len(c.layer_lr) != spec.n_layers:
            raise ValueError(f"condition {c.name}: layer_lr has {len(c.layer_lr)} multipliers, the net {spec.n_layers} layers")
    grids = {c.name: c.grid(train_spec.lr_grid) for c in conditions}
    layer_default = train_spec.layer_lr or (1.0,) * spec.n_layers
    members, member_splits, points, seed_index, groups = [], [], [], [], []
    for j, seed in enumerate(seeds):
        base = splits_for(seed) if splits_for else draw_splits(problem, key, seed, n_train=n_train,
                                                              n_halt=n_halt, n_test=n_test, shared_data=shared_data)
        for c in conditions:
            s = c.transform(base, numpy_rng(*key, seed, c.name, c.tasks, "transform")) if c.transform else base
            groups.append(list(range(len(members), len(members) + len(grids[c.name]))))
            for point in grids[c.name]:
                members.append((seed, c))
                member_splits.append(s)
                points.append(point)
                seed_index.append(j)
    seed_params = init_params(spec, [(*key, seed) for seed in seeds], device=device, dtype=dtype)
    weights = torch.tensor([[c.weight_of(t) for t in names] for _, c in members])
    base_lr = [(c.lr if c.lr is not None else train_spec.lr) for _, c in members]
    layer_lr = []
    for (_, c), (_, hidden_mult) in zip(members, points):
        layers = list(c.layer_lr if c.layer_lr is not None else layer_default)
        layers[0] *= hidden_mult
        layer_lr.append(tuple(layers))
    lrs = [b * m for b, (m, _) in zip(base_lr, points)]
    decays = [c.weight_decay for _, c in members]
    member_keys = [(*key, seed, c.name, c.tasks) for seed, c in members]
    source = (identical_members(seed_index, member_splits, weights, lrs,
                                [train_spec.weight_decay if d is None else d for d in decays], layer_lr,
                                member_keys if train_spec.batch_size is not None else None,
                                with_test=train_spec.record_curves)
              if sharing_enabled(share) else list(range(len(members))))
    unique = sorted(set(source))
    position = {i: n for n, i in enumerate(unique)}

    def pick(values):
        return [values[i] for i in unique]
    u_splits = pick(member_splits)
    u_index = torch.tensor(pick(seed_index), device=seed_params[0].device)
    result = train(spec, [p.index_select(0, u_index) for p in seed_params],
                   as_batch([s.train for s in u_splits], device=device, dtype=dtype),
                   train_spec=train_spec, task_weights=weights[unique],
                   halt=as_batch([s.halt for s in u_splits], device=device, dtype=dtype),
                   test=as_batch([s.test for s in u_splits], clean=True, device=device, dtype=dtype)
                   if train_spec.record_curves else None,
                   member_keys=pick(member_keys), lr=pick(lrs), weight_decay=pick(decays), layer_lr=pick(layer_lr),
                   backend=backend)
    if len(unique) < len(members):
        result = result.take([position[i] for i in source])
    reported = [[problem.task_index(t) for t in (members[g[0]][1].report or members[g[0]][1].tasks)] for g in groups]
    chosen = select_on_halt(result, groups, reported, select_on=select_on)
    keep = chosen if select else list(range(len(members)))
    kept, picked = set(keep), set(chosen)
    choices = []
    for group in groups:
        lr_axis = sorted({points[j][0] for j in group})
        hidden_axis = sorted({points[j][1] for j in group})
        for i in group:
            if i not in kept:
                continue
            edges = [e for e in (_edge(points[i][0], lr_axis), _edge(points[i][1], hidden_axis)) if e]
            choices.append({"lr": base_lr[i] * points[i][0], "lr_mult": points[i][0], "hidden_lr_mult": points[i][1],
                            "grid_size": len(group), "lr_edge": "+".join(edges),
                            **({} if select else {"chosen": i in picked})})
    if _work_records:
        record = {"problem": getattr(problem, "name", type(problem).__name__), "n_members": len(members), "source": source, "groups": groups,
                  "chosen": chosen, "points": points, "seeds": list(seeds), "conditions": [c.name for c in conditions],
                  "task_weights": weights.numpy().copy(), "layers": [spec.n_inputs, *spec.hidden, spec.n_outputs],
                  "rows": {part: [len(getattr(s, part)) for s in member_splits] for part in ("train", "halt", "test")},
                  "epochs": train_spec.epochs, "eval_every": train_spec.eval_every,
                  "record_curves": train_spec.record_curves, "patience": train_spec.patience,
                  "stop_epoch": result.stop_epoch.cpu().numpy().copy(),
                  "best_epoch": result.best_epoch.cpu().numpy().copy(), "backend": result.backend}
        for records in _work_records:
            records.append(record)
    return Trained(members=[members[i] for i in keep], splits=[member_splits[i] for i in keep],
                   result=result.take(keep), problem=problem, choices=choices)


def pilot_rates(problem: Problem, conditions: Sequence[Condition], pilot_seeds: Sequence[int], *, key: tuple,
                select_on: str = "per_task", **train_kwargs) -> dict[str, tuple[float, float]]:
    """One (lr multiplier, input→hidden multiplier) per condition: the grid point with the lowest
    mean halt error over ``pilot_seeds`` — for experiments that pre-register "one learning rate per
    condition". ``key`` must name the pilot stream, so the pilot seeds are never confirmatory
    seeds; fix the result into the conditions' grids (``lr_grid=(m,)``) for the confirmatory run."""
    trained = train_conditions(problem, conditions, pilot_seeds, key=key, select=False, select_on=select_on,
                               **train_kwargs)
    reported = [[problem.task_index(t) for t in (c.report or c.tasks)] for _, c in trained.members]
    values = halt_criterion(trained.result, range(len(trained.members)), reported, select_on)
    halt: dict[tuple[str, float, float], list[float]] = {}
    for ((_, c), ch), value in zip(zip(trained.members, trained.choices), values):
        halt.setdefault((c.name, ch["lr_mult"], ch["hidden_lr_mult"]), []).append(float(value))
    best: dict[str, tuple[float, float]] = {}
    for (name, m, h), values in sorted(halt.items()):
        if name not in best or np.mean(values) < np.mean(halt[(name, *best[name])]):
            best[name] = (m, h)
    return best


SATURATED_SLOPE = 1e-4   # activation slope f'(z) below which a hidden unit passes on no gradient
CONSTANT_OUTPUT = 1e-6   # output range over the training rows below which an output is constant


def saturated(result: TrainResult, data: Batch, stopping: str = "per_task") -> torch.Tensor:
    """(B, K) bool: the net reported for task k (its snapshot under ``stopping``) is dead on
    ``data`` (its training rows): every unit of a hidden layer is saturated on every row (slope
    f'(z) < ``SATURATED_SLOPE``, so no gradient reaches the weights below it), or its output for k
    is the same on every row. A huge learning rate blows nets into this state without a non-finite
    loss, so ``diverged`` alone does not catch it."""
    n_tasks = result.best_epoch.shape[1]
    out = torch.zeros(result.best_epoch.shape, dtype=torch.bool)
    with torch.no_grad():
        for k in range(n_tasks):
            params = (result.task_params(k) if stopping == "per_task" else
                      result.shared_snapshot if stopping == "shared" else result.final)
            acts = forward(result.spec, params, data.x)
            dead = torch.zeros(out.shape[0], dtype=torch.bool, device=acts[-1].device)
            for a in acts[1:-1]:
                slope = a * (1 - a) if result.spec.activation == "sigmoid" else 1 - a * a
                dead |= (slope < SATURATED_SLOPE).flatten(1).all(dim=1)
            y = acts[-1][..., k]
            dead |= (y.amax(dim=1) - y.amin(dim=1)) < CONSTANT_OUTPUT
            out[:, k] = dead.cpu()
    return out


def score_rows(trained: Trained, *, stopping: str = "per_task", **labels) -> dict[int, dict]:
    """Per-seed records: one row per (condition, reported task) with test and training metrics at
    the snapshot, the snapshot's epoch, when and why training stopped (with symmetric stopping,
    ``TrainSpec.stopping="per_task"``, also ``task_stop_epoch``: when this task froze), the diverged and saturated
    flags (:func:`saturated`) and the chosen learning rate. ``labels`` are added to every row."""
    r, problem = trained.result, trained.problem
    device, dtype = r.final[0].device, r.final[0].dtype
    test = as_batch([s.test for s in trained.splits], clean=True, device=device, dtype=dtype)
    train = as_batch([s.train for s in trained.splits], device=device, dtype=dtype)
    train_m = r.evaluate(train, stopping)
    dead = saturated(r, train, stopping)
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
                         "saturated": bool(dead[i, k]),
                         "stopping": stopping, "stop_epoch": int(r.stop_epoch[i]), "stopped_by": r.stopped_by[i],
                         # symmetric stopping: the epoch this task froze (its own stop; 0 never froze: the net's)
                         **({"task_stop_epoch": int(r.frozen_epoch[i, k]) or int(r.stop_epoch[i])}
                            if r.frozen_epoch is not None else {}),
                         **(trained.choices[i] if trained.choices else {})})
    return out

