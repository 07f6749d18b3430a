"""Eavesdropping: a task that can reach F only with difficulty uses the F another task builds.

Claims:
- EV1 (C97 §3.2.3): F is easy to learn through T and hard through T'; T' generalises better when
  trained with T (incl. the catalytic hint T = F).
- EV2 (C95 §2.3): the eavesdropper's generalisation curve is more often non-monotonic (it starts
  to overtrain, then finds F and improves again) in MTL than in STL.

Construction (problem ``eavesdropping``; the first, easier version is listed in
``constructions_tried``):
- 10 random bits; F = majority(x0..x4); T' = F ⊕ x5 ⊕ x6 (uncorrelated with F, x5, x6 and any two of
  them, so T''s own gradient carries no low-order signal about F); x8, x9 irrelevant.
- route "hint": T = F (catalytic hint); route "task": T = F ∨ x7.
- Per seed: training set of n = 128 or 256 rows, halt set 200 rows, test set 1000 rows, noise-free;
  STL (loss on T' only) and MTL (T and T') on the same data from the same initial weights.
- Net 10-16-2, sigmoid units, squared error, full-batch SGD lr 0.5, momentum 0.9, 1200 epochs;
  halt MSE recorded every 10 epochs (``record_curves``); T' scored at its own best-halt snapshot.

Measurements: T' test error rate; T''s per-epoch halt-MSE curve. A curve is *non-monotonic* when
it rises more than tol above the best value seen so far and later falls more than tol below that
earlier best (``curves.is_non_monotonic``). tol = 0.01 in MSE: 4 % of the chance-level MSE 0.25
and several times the evaluation-to-evaluation jitter of a halt curve on its plateau (< 0.002
in the pilot); 0.005 and 0.02 are reported as sensitivity. We use halt MSE rather than the 0/1
error rate because the latter moves in steps of 1/200 and counts threshold flicker near chance.
Tests (pre-registered; α = 0.01, Holm over this file's claims), primary point route "hint", n = 128:
- EV1: one-sided Wilcoxon signed-rank, paired MTL − STL T' test error < 0.
- EV1b: the same for route "task" at n = 128.
- EV2: rate of non-monotonic T' halt curves, MTL > STL, one-sided Fisher exact test; Newcombe CI
  of the rate difference.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from mtlmech import plots
from mtlmech.analysis import group_means, paired, paired_claim
from mtlmech.curves import is_non_monotonic
from mtlmech.cli import RunContext
from mtlmech.experiment import Experiment, Findings, unit_key
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.runner import Unit
from mtlmech.stats import ClaimResult, fisher_exact, newcombe_diff_ci, wilson_ci
from mtlmech.tasks import make_problem
from mtlmech.training import TrainSpec

NAME = "eavesdropping"
VERSION = 1
CONDITIONS = [Condition("STL", ("T'",)), Condition("MTL", ("T", "T'"), report=("T'",))]
N_EXAMPLES = 4  # seeds whose curves are kept for the figure


@dataclass(frozen=True)
class Config:
    routes: tuple[str, ...] = field(default=("hint", "task"), metadata={"help": "how T uses F"})
    n_train: tuple[int, ...] = field(default=(128, 256), metadata={"help": "training-set sizes"})
    primary_n: int = 128
    tol: float = field(default=0.01, metadata={"help": "non-monotonicity tolerance (halt MSE)"})
    tol_sensitivity: tuple[float, ...] = (0.005, 0.02)
    n_bits: int = 10
    n_halt: int = 200
    n_test: int = 1000
    hidden: int = 16
    lr: float = 0.5
    momentum: float = 0.9
    epochs: int = 1200
    eval_every: int = 10

    def __post_init__(self) -> None:
        if min(self.n_train) < 2 or self.n_halt < 1 or self.n_test < 1 or self.hidden < 1:
            raise ValueError("need ≥ 2 training rows, halt/test rows and --hidden ≥ 1")
        if self.primary_n not in self.n_train or "hint" not in self.routes:
            raise ValueError("--primary-n must be in --n-train and --routes must include hint")
        if self.tol < 0 or min(self.tol_sensitivity, default=0) < 0:
            raise ValueError("tolerances must be ≥ 0")


PROFILES = {
    "quick": dict(seeds=24, n_train=(128,), epochs=600),
    "full": dict(seeds=200),
}


def run_seeds(seeds: list[int], *, cfg: Config, route: str, n_train: int, key: tuple, device: str) -> dict:
    problem = make_problem("eavesdropping", route=route, n_bits=cfg.n_bits)
    trained = train_conditions(
        problem, CONDITIONS, seeds, key=key, n_train=n_train, n_halt=cfg.n_halt, n_test=cfg.n_test,
        net=dict(hidden=(cfg.hidden,)), device=device,
        train_spec=TrainSpec(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum, eval_every=cfg.eval_every,
                             record_curves=True))
    out = score_rows(trained, route=route, n_train=n_train)
    k = problem.task_index("T'")
    curves = trained.result.halt_curve[:, :, k].cpu().numpy().astype(np.float64)
    flags = {tol: is_non_monotonic(curves, tol) for tol in (cfg.tol, *cfg.tol_sensitivity)}
    for i, (seed, c) in enumerate(trained.members):
        row = next(r for r in out[seed]["rows"] if r["condition"] == c.name)
        row["non_monotonic"] = bool(flags[cfg.tol][i])
        for tol in cfg.tol_sensitivity:
            row[f"non_monotonic_tol{tol:g}"] = bool(flags[tol][i])
        if seed < N_EXAMPLES:
            out[seed].setdefault("extra", {})[c.name] = np.round(curves[i], 4).tolist()
    for seed in out:
        if seed < N_EXAMPLES:
            out[seed]["extra"]["epochs"] = list(trained.result.curve_epochs)
    return out


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    device = run.device  # version-1 cache keys and streams (re-registration adds run.stream)
    units = []
    for route in cfg.routes:
        make_problem("eavesdropping", route=route, n_bits=cfg.n_bits)  # validate before anything runs
        for n in cfg.n_train:
            key = unit_key(NAME, VERSION, cfg, device, exclude=("routes", "n_train", "primary_n", "tol", "tol_sensitivity"),
                           route=route, n_train=n, tols=[cfg.tol, *cfg.tol_sensitivity])
            units.append(Unit(key=key, label=f"{route} n={n}",
                              compute=partial(run_seeds, cfg=cfg, route=route, n_train=n,
                                              key=(NAME, VERSION, route, n), device=device)))
    return units


def rates(runs, column: str) -> list[dict]:
    """Non-monotonic rate per (route, n, condition) with Wilson CIs, and the MTL − STL difference."""
    out = []
    for (route, n), g in runs.groupby(["route", "n_train"], sort=True):
        k = {c: int(g[g["condition"] == c][column].sum()) for c in ("STL", "MTL")}
        m = {c: int((g["condition"] == c).sum()) for c in ("STL", "MTL")}
        row = {"route": route, "n_train": int(n), "tol_column": column}
        for c in ("STL", "MTL"):
            row.update({f"k_{c}": k[c], f"n_{c}": m[c], f"rate_{c}": k[c] / max(m[c], 1),
                        f"ci_{c}": list(wilson_ci(k[c], m[c]))})
        row["diff"] = row["rate_MTL"] - row["rate_STL"]
        row["diff_ci"] = list(newcombe_diff_ci(k["MTL"], m["MTL"], k["STL"], m["STL"]))
        row["p_greater"] = fisher_exact(k["MTL"], m["MTL"], k["STL"], m["STL"], "greater")
        row["p_less"] = fisher_exact(k["MTL"], m["MTL"], k["STL"], m["STL"], "less")
        out.append(row)
    return out


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    runs = runs[runs["task"] == "T'"]
    fig_path = f"{NAME}/eavesdropping.png"
    err = paired(runs, metric="test_error", treatment="MTL", control="STL", by=["route", "n_train"])
    rate_rows = rates(runs, "non_monotonic")
    sensitivity = [r for tol in cfg.tol_sensitivity for r in rates(runs, f"non_monotonic_tol{tol:g}")]
    at = lambda route: err[(err["route"] == route) & (err["n_train"] == cfg.primary_n)]

    def ev1(claim_id: str, route: str, what: str) -> ClaimResult:
        return paired_claim(at(route).iloc[0], id=claim_id, source="C97 §3.2.3", direction="less", figure=fig_path,
                            statement=f"eavesdropping: T' (hard route to F) generalises better when trained with T ({what})",
                            test=f"one-sided Wilcoxon signed-rank, paired MTL−STL T' test error, route {route}, "
                                 f"n={cfg.primary_n}; 95% paired bootstrap CI")

    claims = [ev1("EV1", "hint", "T = F, a catalytic hint")]
    if "task" in cfg.routes:
        claims.append(ev1("EV1b", "task", "T = F ∨ x7"))
    r2 = next(r for r in rate_rows if r["route"] == "hint" and r["n_train"] == cfg.primary_n)
    claims.append(ClaimResult(
        id="EV2", statement="eavesdroppers show non-monotonic generalisation curves more often", source="C95 §2.3",
        test=f"one-sided Fisher exact test, rate of non-monotonic T' halt-MSE curves (tol {cfg.tol}) MTL > STL, route hint, "
             f"n={cfg.primary_n}; Newcombe 95% CI of the rate difference", effect=r2["diff"], ci=tuple(r2["diff_ci"]),
        p_value=r2["p_greater"], n=r2["n_MTL"], direction="greater", figure=fig_path,
        details={"p_opposite": r2["p_less"], "rate_mtl": r2["rate_MTL"], "rate_stl": r2["rate_STL"],
                 "ci_mtl": r2["ci_MTL"], "ci_stl": r2["ci_STL"]}))

    fig, axes = plots.new_figure(ncols=3, width=4.4)
    ax = axes[0, 0]
    unit = next((u for u, recs in extras.items() if any("epochs" in r for r in recs.values())
                 and runs[(runs["unit"] == u)]["route"].iloc[0] == "hint"
                 and runs[(runs["unit"] == u)]["n_train"].iloc[0] == cfg.primary_n), None)
    if unit is not None:
        for s, rec in sorted(extras[unit].items())[:N_EXAMPLES]:
            for c in ("STL", "MTL"):
                ax.plot(rec["epochs"], rec[c], color=plots.PALETTE[c], lw=1, alpha=0.8,
                        label=c if s == "0" else None)
    ax.set(xlabel="epoch", ylabel="T' halt MSE", title=f"example T' curves (hint, n={cfg.primary_n}, seeds 0-{N_EXAMPLES - 1})")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    labels = [f"{r['route']}\nn={r['n_train']}" for r in rate_rows]
    for i, c in enumerate(("STL", "MTL")):
        x = np.arange(len(rate_rows)) + (i - 0.5) * 0.2
        mean = [r[f"rate_{c}"] for r in rate_rows]
        ax.errorbar(x, mean, yerr=[[max(0.0, m - r[f"ci_{c}"][0]) for m, r in zip(mean, rate_rows)],
                                   [max(0.0, r[f"ci_{c}"][1] - m) for m, r in zip(mean, rate_rows)]],
                    fmt="o", color=plots.PALETTE[c], capsize=3, label=f"{c} (n={rate_rows[0][f'n_{c}']} runs)")
    ax.set_xticks(np.arange(len(rate_rows)), labels)
    ax.set(ylabel=f"fraction non-monotonic (tol {cfg.tol})", title="non-monotonic T' halt curves", ylim=(0, 1))
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    means = group_means(runs, metric="test_error", by=["route", "n_train", "condition"])
    for i, c in enumerate(("STL", "MTL")):
        m = means[means["condition"] == c]
        ax.errorbar(np.arange(len(m)) + (i - 0.5) * 0.2, m["mean"],
                    yerr=[m["mean"] - m["ci_low"], m["ci_high"] - m["mean"]], fmt="o", capsize=3,
                    color=plots.PALETTE[c], label=c)
    ax.set_xticks(np.arange(len(rate_rows)), labels)
    ax.set(ylabel="T' test error rate", title="T' = F ⊕ x5 ⊕ x6 generalisation")
    ax.legend(fontsize=7)
    plots.caption(fig, "Error bars: 95% Wilson intervals (rates) and 95% t-intervals over seeds (errors). F = majority(x0..x4), "
                       "10 bits, 16 hidden units, full-batch SGD; hint: T = F; task: T = F ∨ x7. Non-monotonic: rises > tol "
                       "above its best so far, later falls > tol below it.")
    figure = plots.save(fig, outdir / "eavesdropping.png")
    constructions = [
        {"version": "first tried (pilot, 32 seeds, 8 bits, lr 0.5, 1500 epochs, halt metric error)",
         "construction": "F = majority(x0..x4), T' = F ⊕ x5, T = F or F ∨ x6",
         "T' test error STL / MTL": {"hint n=64": [0.047, 0.030], "hint n=128": [0.003, 0.002],
                                     "hint n=256": [0.003, 0.003], "task n=64": [0.066, 0.065],
                                     "task n=128": [0.002, 0.002]},
         "non-monotonic rate STL / MTL at tol 0.01/0.03/0.05 (halt error)":
             {"hint n=128": [[1.0, 0.875, 0.56], [0.97, 0.81, 0.63]]},
         "why changed": "T' alone was easy (nothing to eavesdrop on with 256 patterns); halt error-rate curves "
                        "counted flicker near chance at any tol, so curves use halt MSE"},
        {"version": "used (pilot, 32 seeds, 10 bits, route hint, lr 0.5, 1500 epochs)",
         "construction": "T' = F ⊕ x5 ⊕ x6",
         "T' test error STL / MTL": {"n=128": [0.224, 0.028], "n=256": [0.141, 0.000]},
         "non-monotonic rate STL / MTL, halt MSE, tol 0.005/0.01/0.02":
             {"n=128": [[0.75, 0.75, 0.69], [0.97, 0.97, 0.81]], "n=256": [[0.66, 0.50, 0.25], [0.72, 0.47, 0.12]]}},
    ]
    return Findings(claims=claims, constructions_tried=constructions,
                    tables={"error": err.to_dict(orient="records"), "non_monotonic": rate_rows,
                            "non_monotonic_sensitivity": sensitivity}, figures=[figure])


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES,
                        make_units=make_units, analyse=analyse)

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
