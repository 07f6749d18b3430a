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
CHECK_ROWS = 64   # rows on which a problem's contract is checked when it is built


class ProblemError(ValueError):
    """A problem that breaks the contract (:meth:`Problem.check`) or whose factory fails: one line
    naming the problem and the task, feature or probe at fault."""


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
        if not isinstance(self.target, Feature):
            what = "a plain function" if callable(self.target) else type(self.target).__name__
            raise ProblemError(f"task {self.name}: its target must be a Feature (e.g. Feature('name', fn) or var(i)), "
                               f"got {what}")
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
    # the SHA-256 of a plugin problem's source (its file and what that imports from outside the library):
    # set by make_problem for problems registered outside mtlmech, part of their fingerprint; built-ins: ""
    source: str = field(default="", repr=False, compare=False)

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

        Cache keys include it, so editing a feature's function can never reuse results computed with
        the old definition, even when every name stays the same. Sampled rows can miss an edit that
        changes few inputs, so a plugin problem's fingerprint also covers its source (``source``:
        the plugin file and what it imports from outside the library); a built-in problem's has no
        source part, so its fingerprint (and the committed results' keys) stay as they were."""
        rng = numpy_rng("fingerprint", self.name)
        parts = [canonical_json(self.describe())]
        if self.source:
            parts.append("source:" + self.source)
        sets = [self.sample(rng, n_rows)] + [self.rows_from(self.draw_z(rng, min(n_rows, 64), f))
                                              for _, f in sorted(self.probes.items())]
        digest = hashlib.sha256("".join(parts).encode())
        for d in sets:
            for a in (d.x, d.y, d.y_clean, d.mask, *(d.features[k] for k in sorted(d.features))):
                digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def check(self, n_rows: int = CHECK_ROWS) -> None:
        """The contract, checked on ``n_rows`` raw rows from a fixed stream: every task target,
        feature, extra input, probe and the constraint is a :class:`Feature` that gives one value per
        row without raising; targets and extra inputs are finite; a bool task's targets lie in
        [0, 1]. A :class:`ProblemError` names the task, feature or probe at fault."""
        def label(kind: str, key: str, f: Feature) -> str:
            return f"{kind} {key} ({f.name})" if isinstance(f, Feature) and f.name != key else f"{kind} {key}"

        parts = [(label("task", t.name, t.target), t.target, True, t) for t in self.tasks]
        parts += [(label("feature", k, f), f, False, None) for k, f in self.features.items()]
        parts += [(label("extra input", getattr(f, "name", str(i)), f), f, True, None)
                  for i, f in enumerate(self.extra_inputs)]
        parts += [(label("probe", k, f), f, False, None) for k, f in self.probes.items()]
        if self.constraint is not None:
            parts.append((label("constraint", getattr(self.constraint, "name", "?"), self.constraint),
                          self.constraint, False, None))
        for what, f, _, _ in parts:
            if not isinstance(f, Feature):
                raise ProblemError(f"problem {self.name}: {what} must be a Feature, got {type(f).__name__}")
        try:
            z = self.inputs.sample(numpy_rng("contract", self.name), n_rows)
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            raise ProblemError(f"problem {self.name}: its inputs cannot be sampled ({_why(exc)})") from None
        for what, f, finite, task in parts:
            try:
                values = f(z)
            except (Exception, KeyboardInterrupt, SystemExit) as exc:
                raise ProblemError(f"problem {self.name}: {what} raised {_why(exc)}") from None
            if values.shape != (len(z),):
                raise ProblemError(f"problem {self.name}: {what} gives an array of shape {values.shape} on "
                                   f"{len(z)} rows; it must give one value per row, shape ({len(z)},)")
            if finite and not np.isfinite(values).all():
                bad = int((~np.isfinite(values)).sum())
                raise ProblemError(f"problem {self.name}: {what} gives non-finite values (NaN or ±inf) on {bad} of "
                                   f"{len(z)} rows; a net cannot be trained or scored on them")
            if task is not None and task.kind == "bool" and (values.min() < 0 or values.max() > 1):
                raise ProblemError(f"problem {self.name}: {what} is a bool task but its targets span "
                                   f"[{values.min():.3g}, {values.max():.3g}]; a bool target must lie in [0, 1] "
                                   f"(or declare the task kind='real')")

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


def _why(exc: BaseException) -> str:
    """An exception as ``Type: first line`` (``sys.exit(n)`` said as such)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit (it called sys.exit({exc.code!r}))"
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_builtin(factory: Callable) -> bool:
    """Whether a problem factory is one of the library's own (defined in an ``mtlmech`` module)."""
    module = getattr(factory, "__module__", None) or ""
    return module == "mtlmech" or module.startswith("mtlmech.")


def _library_dirs() -> list[Path]:
    """Folders whose code is not a plugin's own: the mtlmech package, the standard library and the
    installed packages."""
    import sysconfig
    dirs = [Path(__file__).resolve().parent.parent]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.append(Path(sysconfig.get_paths()[key]).resolve())
        except (KeyError, OSError):
            continue
    return dirs


def _source_file(obj: object) -> Path | None:
    """The .py file a module, function or class comes from (None: built in, or not a file)."""
    import inspect
    import sys as _sys
    try:
        if inspect.ismodule(obj):
            name = getattr(obj, "__file__", None)
        elif inspect.isfunction(obj) or inspect.ismethod(obj):
            name = obj.__code__.co_filename if inspect.isfunction(obj) else obj.__func__.__code__.co_filename
        elif inspect.isclass(obj):
            name = getattr(_sys.modules.get(obj.__module__), "__file__", None) or inspect.getsourcefile(obj)
        else:
            return None
    except (TypeError, OSError, AttributeError):
        return None
    if not name or not str(name).endswith(".py"):
        return None
    path = Path(name)
    return path.resolve() if path.is_file() else None


def _namespace(obj: object) -> dict:
    import inspect
    if inspect.ismodule(obj):
        return vars(obj)
    if inspect.isfunction(obj):
        return obj.__globals__
    return {}


def _imported_files(path: Path, source: bytes) -> list[Path]:
    """The .py files of the modules a source file imports (``import x``, ``from x import y``), as far as
    they can be found without running anything new (modules already loaded, or found on the path)."""
    import ast
    import importlib.util as util
    import sys as _sys
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    files = []
    for name in sorted(names):
        module = _sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is None and module is None and "." not in name:
            try:
                spec = util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            origin = spec.origin if spec is not None else None
        if origin and str(origin).endswith(".py") and Path(origin).is_file():
            files.append(Path(origin).resolve())
    return files


def plugin_source(factory: Callable) -> str:
    """The SHA-256 of a plugin factory's source: the file defining it and, transitively, every .py
    file it imports from outside the library (a helper module next to the plugin: found from its
    import statements and from the functions, classes and modules in its namespace), each by content."""
    library = _library_dirs()
    seen: dict[Path, bytes] = {}
    todo: list[object] = [factory]
    while todo and len(seen) < 200:
        obj = todo.pop()
        path = obj if isinstance(obj, Path) else _source_file(obj)
        if path is None or path in seen or any(path.is_relative_to(d) for d in library):
            continue
        try:
            seen[path] = path.read_bytes()
        except OSError:
            continue
        todo.extend(_imported_files(path, seen[path]))
        namespace = _namespace(obj) if not isinstance(obj, Path) else {}
        if not namespace and isinstance(obj, type):   # a class: the module it was defined in, where loaded
            import sys as _sys
            module = _sys.modules.get(obj.__module__)
            namespace = vars(module) if module is not None else {}
        todo.extend(v for v in list(namespace.values()) if _source_file(v) is not None)
    digest = hashlib.sha256()
    for content in sorted(hashlib.sha256(c).hexdigest() for c in seen.values()):
        digest.update(content.encode())
    return digest.hexdigest()


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
    except (Exception, KeyboardInterrupt, SystemExit) as exc:  # the plugin's own code failed (or exited): say where
        import traceback
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise PluginError(f"plugin {path}{where} raised {_why(exc)}") from None


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
    factory = _PROBLEMS[name]
    if is_builtin(factory):
        problem = factory(**params)
    else:   # a plugin's factory: its mistakes are one line naming the problem, never a traceback
        import inspect
        try:
            inspect.signature(factory).bind(**params)
        except ValueError:   # no signature to check against
            pass
        try:
            problem = factory(**params)
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            raise ProblemError(f"problem {name}: its factory {getattr(factory, '__qualname__', factory)!s} raised "
                               f"{_why(exc)}") from None
    if not isinstance(problem, Problem):
        got = "None (no return statement?)" if problem is None else f"a {type(problem).__name__}"
        raise ProblemError(f"problem {name}: its factory returned {got}, not a Problem")
    if not is_builtin(factory):
        if problem.name != name:
            raise ProblemError(f"problem {name}: its factory builds a Problem named {problem.name!r}; the name "
                               f"must be the registered one ({name!r})")
        problem = dataclasses.replace(problem, source=plugin_source(factory))
    problem.check()
    return problem
