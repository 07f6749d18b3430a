"""Generic STL-vs-MTL comparison on any registered problem (your own included).

Claim CMP1 (generic, no source): on the chosen problem, an MTL net trained on all tasks generalises
better on the main task than an STL net trained on the main task alone.

Construction: the registered problem ``--problem NAME`` built with ``--param key=value`` settings
(``--plugin FILE`` first imports a file that registers it). Each seed draws its own train / halt /
test sets; STL (loss on the main task only) and MTL (loss on every task) train on the same rows
from the same initial weights, with per-task early stopping on the halt set.
Measurement: main-task test error rate (boolean tasks) or test MSE (real tasks) on clean targets.
Test: at the first training-set size given, one-sided Wilcoxon signed-rank test of the paired
differences MTL − STL < 0; effect = mean difference with a 95 % paired-bootstrap CI.

    python experiments/compare.py --list
    python experiments/compare.py --problem c93_parity --n-train 64 128 --seeds 50
    python experiments/compare.py --plugin my_task.py --problem my_task --param noise=0.2

Output goes to ``results/compare_<problem>/`` (never into the committed ``figures/``).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from mtlmech import plots
from mtlmech.analysis import group_means, paired, paired_claim
from mtlmech.cli import RunContext
from mtlmech.experiment import REPO_ROOT, Experiment, Findings, unit_key
from mtlmech.protocol import score_rows, stl_mtl_conditions, train_conditions
from mtlmech.runner import Unit
from mtlmech.tasks import load_plugin, make_problem, problem_descriptions
from mtlmech.training import TrainSpec

NAME = "compare"
VERSION = 1


@dataclass(frozen=True)
class Config:
    problem: str = field(default="c93_parity", metadata={"help": "registered problem name (see --list)"})
    param: tuple[str, ...] = field(default=(), metadata={"help": "problem parameters as key=value (Python literals)"})
    plugin: str = field(default="", metadata={"help": "a .py file that registers problems, imported first"})
    main_task: str = field(default="", metadata={"help": "task scored (default: the problem's first task)"})
    n_train: tuple[int, ...] = (64, 128)
    n_halt: int = 200
    n_test: int = 1000
    hidden: int = 16
    activation: str = field(default="sigmoid", metadata={"choices": ("sigmoid", "tanh")})
    lr: float = 0.5
    momentum: float = 0.9
    epochs: int = 1000
    eval_every: int = 10

    def __post_init__(self) -> None:
        if min(self.n_train) < 1 or self.n_halt < 1 or self.n_test < 1 or self.hidden < 1 or self.epochs < 1:
            raise ValueError("sizes, --hidden and --epochs must be ≥ 1")
        for p in self.param:
            if "=" not in p:
                raise ValueError(f"--param takes key=value, got {p!r}")


PROFILES = {"quick": dict(seeds=16, epochs=500), "full": dict(seeds=200)}


def problem_params(cfg: Config) -> dict:
    out = {}
    for p in cfg.param:
        key, value = p.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def build(cfg: Config):
    if cfg.plugin:
        load_plugin(cfg.plugin)
    problem = make_problem(cfg.problem, **problem_params(cfg))
    main = cfg.main_task or problem.task_names[0]
    if main not in problem.task_names:
        raise ValueError(f"--main-task {main!r} is not a task of {cfg.problem}: {problem.task_names}")
    return problem, main


def run_seeds(seeds: list[int], *, cfg: Config, n_train: int, key: tuple, device: str) -> dict:
    problem, main = build(cfg)
    trained = train_conditions(problem, stl_mtl_conditions(problem, [main]), seeds, key=key, n_train=n_train,
                               n_halt=cfg.n_halt, n_test=cfg.n_test, net=dict(hidden=(cfg.hidden,), activation=cfg.activation),
                               train_spec=TrainSpec(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum,
                                                    eval_every=cfg.eval_every), device=device)
    return score_rows(trained, n_train=n_train)


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    device = run.device  # version-1 cache keys and streams (re-registration adds run.stream)
    try:
        build(cfg)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    return [Unit(key=unit_key(NAME, VERSION, cfg, device, exclude=("n_train", "plugin"), n_train=n), label=f"n={n}",
                 compute=partial(run_seeds, cfg=cfg, n_train=n, key=(NAME, VERSION, cfg.problem, cfg.param, n), device=device))
            for n in cfg.n_train]


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    problem, main = build(cfg)
    kind = problem.tasks[problem.task_index(main)].kind
    metric = "test_error" if kind == "bool" else "test_mse"
    by_n = paired(runs, metric=metric, treatment="MTL", control="STL", by=["n_train"], task=main)
    first = by_n[by_n["n_train"] == cfg.n_train[0]].iloc[0]
    claim = paired_claim(first, id="CMP1", statement=f"{cfg.problem}: MTL on all tasks beats STL on {main}",
                         source="generic", test=f"one-sided Wilcoxon, paired MTL−STL {metric} at n={cfg.n_train[0]}; "
                                                "95% paired bootstrap CI", direction="less",
                         figure=f"{outdir.name}/compare.png")
    means = group_means(runs, metric=metric, by=["condition", "n_train"])
    fig, axes = plots.new_figure()
    ax = axes[0, 0]
    for i, cond in enumerate(["STL", "MTL"]):
        m = means[means["condition"] == cond]
        plots.errorbars(ax, m["n_train"], m["mean"], m["ci_low"], m["ci_high"], label=f"{cond} (n={m['n'].min()} seeds)",
                        color=plots.PALETTE[cond], offset=(i - 0.5))
    ax.set(xlabel="training-set size (rows)", ylabel=f"{main} {metric.replace('_', ' ')}", title=cfg.problem)
    ax.legend()
    plots.caption(fig, "Error bars: 95% t-intervals over seeds; STL and MTL paired by seed (same data, same init).")
    return Findings(claims=[claim], constructions_tried=[problem.describe()],
                    tables={"by_n": by_n.to_dict(orient="records")}, figures=[plots.save(fig, outdir / "compare.png")])


TOOL = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES, make_units=make_units,
                  analyse=analyse, folder=lambda cfg: f"compare_{cfg.problem}", default_root=REPO_ROOT / "results")

if __name__ == "__main__":
    if "--list" in sys.argv[1:]:
        if "--plugin" in sys.argv[1:]:
            load_plugin(sys.argv[sys.argv.index("--plugin") + 1])
        for name, text in problem_descriptions().items():
            print(f"{name:22s} {text}")
        sys.exit(0)
    sys.exit(TOOL.main())
