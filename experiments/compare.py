"""Generic STL-vs-MTL comparison on any registered problem (your own included), on the fair protocol.

Claim CMP1 (generic, no source): on the chosen problem, an MTL net trained on all tasks generalises
better on the main task than an STL net trained on the main task alone.

Construction: the registered problem ``--problem NAME`` built with ``--param key=value`` settings
(``--plugin FILE`` first imports a file that registers it). Each seed draws its own train / halt /
test sets; STL (loss on the main task only) and MTL (loss on every task) train on the same rows
from the same initial weights. Both get the same learning-rate grid (``--train.lr-grid``, chosen
per seed on the halt set), patience stopping (``--train.patience``) and per-task early stopping.
Measurement: main-task test error rate (boolean tasks) or test MSE (real tasks) on clean targets,
and the same on every probe set named by ``--probes``.
Test: at ``--primary-n`` (default: the smallest size), one-sided Wilcoxon signed-rank test of the
paired differences MTL − STL < 0; effect = mean difference with a 95 % paired-bootstrap CI. Every
size is reported in ``tables.by_n`` with Holm-adjusted p-values over the sizes.

    python experiments/compare.py --list
    python experiments/compare.py --problem c93_parity --n-train 64 128 --seeds 50
    python experiments/compare.py --plugin my_task.py --problem my_task --param noise=0.2 --probes "A≠B"

Output goes to ``results/compare_<problem>-<settings hash>/`` (never into the committed ``figures/``):
one folder per setting, so a run with other settings never overwrites an earlier one.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from mtlmech.engine.nets import NetConfig
from mtlmech.engine.resources import ResourceError, require_memory
from mtlmech.engine.seeding import numpy_rng, stable_hash
from mtlmech.engine.training import TrainSpec
from mtlmech.pipeline.cli import RunContext
from mtlmech.pipeline.experiment import Command, Experiment, Findings, unit_key
from mtlmech.pipeline.paths import project_root
from mtlmech.pipeline.runner import Unit
from mtlmech.problems.tasks import PluginError, as_batch, load_plugin, make_problem, problem_descriptions
from mtlmech.protocol import Trained, score_rows, stl_mtl_conditions, train_conditions
from mtlmech.report import plots
from mtlmech.stats import holm
from mtlmech.stats.paired import group_means, paired, paired_claim

NAME = "compare"
VERSION = 2


@dataclass(frozen=True)
class Config:
    problem: str = field(default="c93_parity", metadata={"help": "registered problem name (see --list)"})
    param: tuple[str, ...] = field(default=(), metadata={"help": "problem parameters as key=value (Python literals)"})
    plugin: str = field(default="", metadata={"help": "a .py file that registers problems, imported first"})
    main_task: str = field(default="", metadata={"help": "task scored (default: the problem's first task)"})
    n_train: tuple[int, ...] = field(default=(64, 128), metadata={"help": "training-set sizes"})
    primary_n: int = field(default=0, metadata={"help": "size at which CMP1 is tested (0: the smallest --n-train)"})
    n_halt: int = field(default=200, metadata={"help": "halt-set rows (early stopping and learning-rate choice)"})
    n_test: int = field(default=1000, metadata={"help": "clean test rows"})
    probes: tuple[str, ...] = field(default=(), metadata={"help": "probe sets of the problem to score the main task on"})
    n_probe: int = field(default=500, metadata={"help": "rows per probe set"})
    net: NetConfig = NetConfig(hidden=(16,))
    train: TrainSpec = TrainSpec(lr=0.5, momentum=0.9, epochs=20_000, eval_every=10, patience=50, min_delta=1e-3,
                                 lr_grid=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0))

    def __post_init__(self) -> None:
        if min(self.n_train) < 1 or self.n_halt < 1 or self.n_test < 1 or self.n_probe < 1:
            raise ValueError("--n-train, --n-halt, --n-test and --n-probe must be ≥ 1")
        if self.primary_n and self.primary_n not in self.n_train:
            raise ValueError(f"--primary-n {self.primary_n} must be one of --n-train {self.n_train}")
        if not self.problem or not all(c.isalnum() or c in "_-." for c in self.problem) or self.problem[0] == ".":
            raise ValueError(f"--problem takes a registered problem's name (letters, digits, _ - .), got {self.problem!r}")
        keys = []
        for p in self.param:
            key = p.split("=", 1)[0]
            if "=" not in p or not key.isidentifier():
                raise ValueError(f"--param takes key=value, got {p!r}")
            keys.append(key)
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"--param gives {', '.join(repeated)} more than once")

    @property
    def tested_n(self) -> int:
        return self.primary_n or min(self.n_train)


PROFILES = {"quick": dict(seeds=16, train=dict(patience=20, lr_grid=(0.5, 2.0))), "full": dict(seeds=200)}


def problem_params(cfg: Config) -> dict:
    """``--param key=value`` as keyword arguments: a value is a Python literal where it reads as one
    (else a string). A number must be finite, and a parameter whose factory default is a whole
    number takes a whole number (``n_bits=8.5`` or ``1e11`` is refused here, not deep in the factory)."""
    import inspect
    import math
    try:
        from mtlmech.problems.tasks import _PROBLEMS, _load_builtin_problems
        _load_builtin_problems()
        defaults = {k: v.default for k, v in inspect.signature(_PROBLEMS[cfg.problem]).parameters.items()}
    except (KeyError, ValueError, TypeError):
        defaults = {}
    out = {}
    for p in cfg.param:
        key, value = p.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key] = value
        v, default = out[key], defaults.get(key)
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"--param {p}: {key} must be a finite number")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(v, float):
            raise ValueError(f"--param {p}: {key} takes a whole number (its default is {default})")
    return out


def build(cfg: Config):
    """The problem and its main task, checked against the network (targets a sigmoid output can reach)."""
    if cfg.plugin:
        try:
            load_plugin(cfg.plugin)
        except PluginError as exc:
            raise ValueError(f"--plugin: {exc}") from None
    params = problem_params(cfg) if cfg.problem else {}
    try:
        problem = make_problem(cfg.problem, **params)
    except KeyError as exc:
        raise ValueError(f"--problem: {exc.args[0] if exc.args else exc}") from None
    except (TypeError, ValueError, OverflowError, MemoryError, IndexError) as exc:
        # a factory's own ValueError names its parameter; a size it cannot build is one line too
        message = str(exc.args[0] if exc.args else exc) or type(exc).__name__
        raise ValueError(f"--problem {cfg.problem} --param {' '.join(cfg.param) or '(none)'}: {message}") from None
    width = problem.n_inputs + problem.n_tasks
    rows = max(cfg.n_train) + cfg.n_halt + cfg.n_test + cfg.n_probe * len(cfg.probes)
    try:   # one seed's STL and MTL nets over the lr grid (a lower bound), and the range check's 2000 rows
        require_memory(4.0 * width * max(rows * 2 * len(cfg.train.lr_grid), 2000 * 4),
                       f"{cfg.problem} with {problem.n_inputs} inputs and {problem.n_tasks} tasks over {rows} rows")
    except ResourceError as exc:
        raise ValueError(f"--problem {cfg.problem} --param {' '.join(cfg.param) or '(none)'}: {exc}") from None
    main = cfg.main_task or problem.task_names[0]
    if main not in problem.task_names:
        raise ValueError(f"--main-task {main!r} is not a task of {cfg.problem}: {problem.task_names}")
    unknown = [p for p in cfg.probes if p not in problem.probes]
    if unknown:
        raise ValueError(f"--probes {unknown}: {cfg.problem} has probe sets {sorted(problem.probes)}")
    if cfg.net.output == "sigmoid":
        y = problem.sample(numpy_rng("compare", "range check"), 2000, noisy=False).y_clean
        if y.min() < 0 or y.max() > 1:
            raise ValueError(f"targets of {cfg.problem} span [{y.min():.3g}, {y.max():.3g}] but sigmoid outputs lie in "
                             f"(0, 1): rescale the targets into [0, 1] or pass --net.output linear")
    return problem, main


def train_seeds(seeds: list[int], *, cfg: Config, n_train: int, key: tuple, run: RunContext) -> Trained:
    problem, main = build(cfg)
    return train_conditions(problem, stl_mtl_conditions(problem, [main]), seeds, key=key, n_train=n_train,
                            n_halt=cfg.n_halt, n_test=cfg.n_test, net=cfg.net, train_spec=cfg.train,
                            device=run.device, backend=run.backend)


def score_seeds(trained: Trained, *, cfg: Config, n_train: int, key: tuple) -> dict:
    """score_rows plus the main task's error and MSE on each probe set named by ``--probes``."""
    out = score_rows(trained, n_train=n_train)
    problem, main = trained.problem, cfg.main_task or trained.problem.task_names[0]
    k = problem.task_index(main)
    device = trained.result.final[0].device
    for name in cfg.probes:
        rows = [problem.probe(numpy_rng(*key, seed, "probe", name), name, cfg.n_probe) for seed, _ in trained.members]
        scores = trained.result.evaluate(as_batch(rows, device=device), "per_task")
        for i, (seed, c) in enumerate(trained.members):
            row = next(r for r in out[seed]["rows"] if r["condition"] == c.name and r["task"] == main)
            row[f"probe_{name}_error"] = float(scores["error"][i, k])
            row[f"probe_{name}_mse"] = float(scores["mse"][i, k])
    return out


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    try:
        problem, _ = build(cfg)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    units = []
    for n in cfg.n_train:
        key = (NAME, VERSION, run.stream, cfg.problem, cfg.param, n)
        units.append(Unit(key=unit_key(NAME, VERSION, cfg, run, exclude=("n_train", "plugin", "primary_n"),
                                       problem=problem, n_train=n), label=f"n={n}",
                          train=partial(train_seeds, cfg=cfg, n_train=n, run=run, key=key),
                          score=partial(score_seeds, cfg=cfg, n_train=n, key=key)))
    return units


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    problem, main = build(cfg)
    metric = "test_error" if problem.tasks[problem.task_index(main)].kind == "bool" else "test_mse"
    metrics = [metric] + [f"probe_{p}_{metric.split('_')[1]}" for p in cfg.probes]
    tables = {}
    for m in metrics:
        by_n = paired(runs, metric=m, treatment="MTL", control="STL", by=["n_train"], task=main)
        by_n["p_holm"] = holm(by_n["p_less"].tolist())
        tables[f"by_n_{m}"] = by_n
    by_n = tables[f"by_n_{metric}"]
    claim = paired_claim(by_n[by_n["n_train"] == cfg.tested_n].iloc[0], id="CMP1", direction="less",
                         statement=f"{cfg.problem}: MTL on all tasks beats STL on {main}", source="generic",
                         test=f"one-sided Wilcoxon, paired MTL−STL {metric} at n={cfg.tested_n}; 95% paired bootstrap CI",
                         figure=f"{outdir.name}/compare.png", compared=("MTL", "STL"),
                         where={"n_train": cfg.tested_n, "task": main})
    figure = plot(runs, by_n, main, metric, cfg, outdir)
    return Findings(claims=[claim], constructions_tried=[problem.describe()], figures=[figure],
                    tables={name: t.to_dict(orient="records") for name, t in tables.items()})


def plot(runs, by_n, main: str, metric: str, cfg: Config, outdir: Path) -> str:
    means = group_means(runs[runs["task"] == main], metric=metric, by=["condition", "n_train"])
    fig, axes = plots.new_figure(ncols=2)
    ax = axes[0, 0]
    for i, cond in enumerate(["STL", "MTL"]):
        m = means[means["condition"] == cond]
        plots.errorbars(ax, m["n_train"], m["mean"], m["ci_low"], m["ci_high"], label=cond,
                        color=plots.PALETTE[cond], offset=(i - 0.5))
    label = metric.replace("_", " ")
    ax.set(xlabel="training-set size (rows)", ylabel=f"{main} {label}", title=cfg.problem)
    ax.legend()
    ax = axes[0, 1]
    plots.errorbars(ax, by_n["n_train"], by_n["diff"], by_n["ci_low"], by_n["ci_high"], label="MTL − STL", color="k")
    ax.axhline(0, color="grey", lw=1, ls=":")
    ax.set(xlabel="training-set size (rows)", ylabel=f"MTL − STL {label} (paired)", title="Paired difference")
    n_seeds = int(runs["seed"].nunique())
    plots.caption(fig, f"{n_seeds} seeds; STL = one net trained on {main} alone, MTL = one net trained on all tasks, "
                       f"same rows and initial weights per seed; learning rate chosen per seed on the halt set. "
                       f"Error bars: 95% CIs (left: t-interval; right: paired bootstrap).")
    return plots.save(fig, outdir / "compare.png")


def folder(cfg: Config) -> str:
    """One output folder per problem and setting: ``compare_<problem>-<hash of the settings and of
    what the problem computes>`` (its fingerprint, so editing a plugin gets a new folder instead of
    overwriting the results of the old definition)."""
    settings = {k: v for k, v in asdict(cfg).items() if k != "plugin"}
    try:
        settings["problem_fingerprint"] = build(cfg)[0].fingerprint()
    except (ValueError, KeyError, TypeError, FileNotFoundError):
        pass   # a bad setting: make_units reports it, led by its flag
    return f"compare_{cfg.problem}-{stable_hash(settings, 8)}"


def list_problems(argv: list[str]) -> int:
    """``--list [--plugin FILE]``: the registered problems (with those FILE registers), one a line."""
    if "--plugin" in argv:
        at = argv.index("--plugin") + 1
        if at >= len(argv) or argv[at].startswith("--"):
            print("error: --plugin needs a file name", file=sys.stderr)
            return 2
        try:
            load_plugin(argv[at])
        except PluginError as exc:
            print(f"error: --plugin: {exc}", file=sys.stderr)
            return 2
    for name, text in problem_descriptions().items():
        print(f"{name:22s} {text}")
    return 0


TOOL = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES, make_units=make_units, version=VERSION,
                  analyse=analyse, folder=folder, default_root=lambda: project_root(near=make_units) / "results",
                  commands={"--list": Command("list the registered problems (with --plugin FILE: also its own) and exit",
                                              list_problems)})

if __name__ == "__main__":
    sys.exit(TOOL.main())
