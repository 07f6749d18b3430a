"""Synthetic problems: an input space, named features, tasks (targets) with noise, and samplers.

A :class:`Problem` yields :class:`Dataset` objects (train / halt / test splits, probe sets) from a
numpy Generator, so an experiment decides whether every seed draws its own data
(``numpy_rng(cfg, seed, "data")``) or all seeds share one set (``numpy_rng(cfg, "data")``).
Problems are registered by name with :func:`register_problem`; see ``docs/adding_a_task.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..engine.seeding import canonical_json, numpy_rng
from ..engine.training import Batch
from .features import Feature
from .inputs import InputSpace

TASK_KINDS = ("bool", "real")


@dataclass(frozen=True)
class Task:
    """One output: a target feature, boolean or real, with optional noise on training/halt labels.

    ``noise`` is the label-flip probability for boolean targets and the Gaussian σ for real ones;
    ``labeled`` is the fraction of rows that carry a label (the rest are masked out of the loss).
    """

    name: str
    target: Feature
    kind: str = "bool"
    noise: float = 0.0
    labeled: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if self.noise < 0 or (self.kind == "bool" and self.noise > 0.5):
            raise ValueError(f"task {self.name}: noise must be ≥ 0 (and ≤ 0.5 for a flip probability)")
        if not 0 < self.labeled <= 1:
            raise ValueError(f"task {self.name}: labeled fraction must be in (0, 1]")


@dataclass
class Dataset:
    """Rows of one sample: raw variables ``z``, inputs ``x``, noisy targets ``y``, clean targets
    ``y_clean``, loss mask ``mask`` (all (n, ·) numpy arrays) and the named features' values."""

    z: np.ndarray
    x: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    mask: np.ndarray
    features: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Splits:
    train: Dataset
    halt: Dataset
    test: Dataset


@dataclass(frozen=True)
class Problem:
    """Input space, tasks, named features, a sampling constraint and named probe sets.

    ``constraint`` (a boolean feature) restricts train/halt/test rows, e.g. "A = B";
    ``probes`` name conditions for probe sets, e.g. ``{"A≠B": differs(A, B)}``;
    ``extra_inputs`` are features appended to the network inputs (an "input" variant of a task).
    """

    name: str
    inputs: InputSpace
    tasks: tuple[Task, ...]
    features: dict[str, Feature] = field(default_factory=dict)
    constraint: Feature | None = None
    probes: dict[str, Feature] = field(default_factory=dict)
    extra_inputs: tuple[Feature, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(f"problem {self.name} has no tasks")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"problem {self.name}: duplicate task names {names}")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def n_inputs(self) -> int:
        return self.inputs.n_inputs + len(self.extra_inputs)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def task_index(self, name: str) -> int:
        return self.task_names.index(name)

    def replace(self, **changes) -> Problem:
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict:
        """A JSON-able description (formulas as text), for summaries and docs."""
        return {"name": self.name, "inputs": dataclasses.asdict(self.inputs) | {"encoding": repr(self.inputs.encoding)},
                "tasks": [{"name": t.name, "target": t.target.name, "kind": t.kind, "noise": t.noise,
                           "labeled": t.labeled} for t in self.tasks],
                "features": {k: f.name for k, f in self.features.items()},
                "constraint": self.constraint.name if self.constraint else None,
                "probes": {k: f.name for k, f in self.probes.items()},
                "extra_inputs": [f.name for f in self.extra_inputs]}

    def fingerprint(self, n_rows: int = 256) -> str:
        """A hash of what this problem computes: its description plus the inputs, noisy and clean
        targets, masks and features of rows drawn from a fixed stream, and of each probe set.

        Cache keys include it, so editing a feature's function (or a plugin file) can never reuse
        results computed with the old definition, even when every name stays the same."""
        rng = numpy_rng("fingerprint", self.name)
        parts = [canonical_json(self.describe())]
        sets = [self.sample(rng, n_rows)] + [self.rows_from(self.draw_z(rng, min(n_rows, 64), f))
                                              for _, f in sorted(self.probes.items())]
        digest = hashlib.sha256("".join(parts).encode())
        for d in sets:
            for a in (d.x, d.y, d.y_clean, d.mask, *(d.features[k] for k in sorted(d.features))):
                digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    # -- sampling ---------------------------------------------------------------------------
    def rows_from(self, z: np.ndarray, rng: np.random.Generator | None = None) -> Dataset:
        """A dataset on given raw variables ``z``; label noise and masks need ``rng`` (None = clean)."""
        x = self.inputs.encode(z)
        if self.extra_inputs:
            x = np.concatenate([x, np.stack([f(z) for f in self.extra_inputs], axis=1).astype(np.float32)], axis=1)
        y_clean = np.stack([t.target(z) for t in self.tasks], axis=1)
        y, mask = y_clean.copy(), np.ones_like(y_clean)
        if rng is not None:
            for k, t in enumerate(self.tasks):
                if t.noise > 0 and t.kind == "bool":
                    flip = rng.random(len(z)) < t.noise
                    y[:, k] = np.where(flip, 1 - y_clean[:, k], y_clean[:, k])
                elif t.noise > 0:
                    y[:, k] = y_clean[:, k] + rng.normal(0.0, t.noise, size=len(z))
                if t.labeled < 1:
                    mask[:, k] = rng.random(len(z)) < t.labeled
        return Dataset(z=z, x=x, y=y.astype(np.float32), y_clean=y_clean.astype(np.float32),
                       mask=mask.astype(np.float32), features={k: f(z) for k, f in self.features.items()})

    def draw_z(self, rng: np.random.Generator, n: int, where: Feature | None = None) -> np.ndarray:
        """``n`` raw rows, rejection-sampled where ``where`` holds."""
        if n < 0:
            raise ValueError(f"cannot draw {n} rows")
        if where is None:
            return self.inputs.sample(rng, n)
        kept, have, drawn = [], 0, 0
        chunk = max(2 * n, 1024)
        while have < n:
            z = self.inputs.sample(rng, chunk)
            z = z[where(z) > 0.5]
            kept.append(z)
            have += len(z)
            drawn += chunk
            if drawn >= 10_000 * max(n, 100) and have < n:
                raise ValueError(f"problem {self.name}: condition {where.name} accepts too few rows "
                                 f"({have} of {drawn} drawn)")
        return np.concatenate(kept)[:n]

    def sample(self, rng: np.random.Generator, n: int, where: Feature | None = None, noisy: bool = True) -> Dataset:
        """``n`` rows drawn where the problem's constraint (or ``where``) holds."""
        z = self.draw_z(rng, n, where if where is not None else self.constraint)
        return self.rows_from(z, rng if noisy else None)

    def splits(self, rng: np.random.Generator, *, n_train: int, n_halt: int, n_test: int) -> Splits:
        """Train and halt sets carry label noise; the test set is scored against clean targets."""
        return Splits(train=self.sample(rng, n_train), halt=self.sample(rng, n_halt),
                      test=self.sample(rng, n_test, noisy=False))

    def probe(self, rng: np.random.Generator, name: str, n: int) -> Dataset:
        """``n`` clean rows of probe set ``name`` (the problem's constraint does not apply)."""
        if name not in self.probes:
            raise KeyError(f"problem {self.name} has no probe {name!r}; it has {sorted(self.probes)}")
        return self.rows_from(self.draw_z(rng, n, self.probes[name]))

    def all_patterns(self, where: Feature | None = None) -> Dataset:
        """Every bit pattern (clean), optionally restricted: "training on all patterns"."""
        if self.inputs.kind != "bits" or self.inputs.n_raw > 22:
            raise ValueError("all_patterns needs at most 22 bit variables")
        n_raw = self.inputs.n_raw
        z = ((np.arange(2 ** n_raw)[:, None] >> np.arange(n_raw)) & 1).astype(np.float64)
        if where is not None:
            z = z[where(z) > 0.5]
        return self.rows_from(z)


def as_batch(datasets: Dataset | Sequence[Dataset], *, clean: bool = False, device="cpu",
             dtype=torch.float32) -> Batch:
    """One dataset shared by all members ((n, ·) tensors), or one per member ((B, n, ·))."""
    def tensor(get):
        if isinstance(datasets, Dataset):
            return torch.as_tensor(get(datasets), dtype=dtype, device=device)
        return torch.as_tensor(np.stack([get(d) for d in datasets]), dtype=dtype, device=device)
    return Batch(x=tensor(lambda d: d.x), y=tensor(lambda d: d.y_clean if clean else d.y), mask=tensor(lambda d: d.mask))


# -- registry ---------------------------------------------------------------------------------
_PROBLEMS: dict[str, Callable[..., Problem]] = {}


def register_problem(name: str) -> Callable:
    """Decorator: register a factory ``(**params) -> Problem`` under ``name``.

    The factory's docstring (first line) is what ``--list`` shows.
    """
    def decorate(factory: Callable[..., Problem]) -> Callable[..., Problem]:
        old = _PROBLEMS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (factory.__module__, factory.__qualname__):
            raise ValueError(f"a problem named {name!r} is already registered by {old.__module__}")
        _PROBLEMS[name] = factory
        return factory
    return decorate


def _load_builtin_problems() -> None:
    from .. import problems
    for module in pkgutil.iter_modules(problems.__path__):
        importlib.import_module(f"{problems.__name__}.{module.name}")


class PluginError(ValueError):
    """A plugin file that cannot be imported: missing, not a Python source file, or failing."""


def load_plugin(path: str | Path) -> None:
    """Import a user file that registers problems (``--plugin my_problem.py``). This runs the
    file's code with the user's rights, by design: load only files you trust. Every failure is a
    :class:`PluginError` with a one-line message (where the file's own error arose)."""
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"plugin file not found: {path}")
    if path.suffix != ".py":
        raise PluginError(f"plugin {path} is not a Python file (.py)")
    try:
        source = path.read_bytes()
        if b"\0" in source:
            raise PluginError(f"plugin {path} is a binary file, not Python source")
        source.decode("utf-8")
    except UnicodeDecodeError:
        raise PluginError(f"plugin {path} is not UTF-8 text") from None
    spec = importlib.util.spec_from_file_location(f"mtlmech_plugin_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise PluginError(f"plugin {path}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # the plugin's own code failed: say where, in one line
        import traceback
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise PluginError(f"plugin {path}{where} raised {type(exc).__name__}: {exc}") from None


def problem_names() -> list[str]:
    _load_builtin_problems()
    return sorted(_PROBLEMS)


def problem_descriptions() -> dict[str, str]:
    _load_builtin_problems()
    return {name: (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "" for name, f in sorted(_PROBLEMS.items())}


def make_problem(name: str, **params) -> Problem:
    """Build the registered problem ``name`` with keyword parameters."""
    _load_builtin_problems()
    if name not in _PROBLEMS:
        close = difflib.get_close_matches(name, _PROBLEMS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(_PROBLEMS))}"
        raise KeyError(f"unknown problem {name!r}{hint}")
    return _PROBLEMS[name](**params)
