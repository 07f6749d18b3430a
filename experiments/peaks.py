"""C97's Peaks functions: does hidden-unit sharing between two tasks rise with how related they are?

Claims (C97 §3.3, Fig. 5; SOURCES.md):
- PK1: in one MTL net trained on all 120 Peaks tasks, the sharing of hidden units between two tasks
  rises with the number of variables they have in common (0–3), and is slightly negative at 0.
- PK2: at equal overlap, pairs whose IF (test) variable is the same share more than pairs with
  that many variables in common in any position ("test must match" above "any feature").

Construction (fixed before the full run; C97 leaves training size, hyper-parameters, sensitivity
definition and rank statistic unpublished):
- Six variables A–F ~ U[0, 1]; 120 tasks P001 … P120 = IF ?1 > 1/2 THEN ?2 ELSE ?3, distinct letters,
  lexicographic in (test, then, else) (``mtlmech.problems.peaks``). Targets are the real values.
- Encoding (primary): a 10-bit binary code of each variable's bin index (1024 bins on [0, 1]) —
  the code CS97 uses for its real-valued benchmark by the same author, and one that keeps the value
  resolution (1024 levels) so the real-valued targets can be fit; its most significant bit is the
  test "> 1/2" itself. Check: a 10-unit thermometer code (thresholds k/11; 11 levels, no unit at
  exactly 1/2), to show the result does not hinge on the encoding.
- One net 60-64-120 per seed, sigmoid hidden and output units, squared error summed over the 120
  outputs; 1000 training, 500 halt, 1000 test rows, fresh per seed; full-batch SGD lr 1.0, momentum
  0.9, 800 epochs, halt MSE checked every 10 epochs; the net is taken at its shared early-stopping
  snapshot (lowest mean halt MSE over all 120 outputs: one net, as in the paper).
- Unlike the paper's single net: 20 independent nets per encoding in the full profile (the net is
  the unit of replication; every statistic below is computed per net, then compared across nets).

Measurement (per net, on its 1000 clean test rows):
- Per-task test RMSE and R² = 1 − MSE / Var(target) (reported per task).
- Sensitivity of output k to hidden unit j: ``hidden_sensitivity`` = mean over rows |∂out_k/∂h_j|
  (primary); check: ``ablation_sensitivity`` (mean |Δout_k| when h_j is clamped to its mean).
- Sharing of tasks i, j: Spearman rank correlation of their 64-long sensitivity vectors (primary);
  check: Kendall τ-b. Averaged per net over the task pairs with 0, 1, 2, 3 variables in common
  ("any feature"), and over the pairs with the same test variable and 1, 2, 3 in common ("test must
  match"; a subset of "any feature" at the same overlap, as in the figure).

Tests (pre-registered; primary = binary code, gradient sensitivity, Spearman; n = nets; α = 0.01,
Holm over the four claims below by the driver):
- PK1 (trend): per net, Spearman ρ between the number of shared variables and the sharing of all
  7140 pairs; one-sided Wilcoxon signed-rank over nets that ρ > 0; effect = mean ρ, 95 % t-CI.
- PK1b (monotone): the three steps any[k+1] − any[k], k = 0, 1, 2, each > 0; intersection–union
  test: p = the largest of the three one-sided Wilcoxon p-values; effect = smallest mean step.
- PK1c (negative at 0): any[0] < 0, one-sided Wilcoxon over nets; effect = mean any[0].
- PK2: test[k] − any[k] > 0 at k = 1, 2, 3 (paired within net), intersection–union as PK1b.
The thermometer code and the ablation / Kendall definitions are reported in ``tables.robustness``
with the same statistics (not separately judged). Training quality is reported, not judged; we
consider it adequate when the median per-task R² is ≥ 0.9.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats as sps

from mtlmech import plots
from mtlmech.cli import RunContext
from mtlmech.experiment import Experiment, Findings, unit_key
from mtlmech.probes import ablation_sensitivity, hidden_sensitivity, rank_correlation
from mtlmech.problems.peaks import ENCODINGS, peaks_pairs
from mtlmech.protocol import Condition, train_conditions
from mtlmech.runner import Unit
from mtlmech.sharing import group_means, kendall_correlation, pair_values
from mtlmech.stats import ClaimResult, mean_ci, paired_wilcoxon
from mtlmech.tasks import as_batch, make_problem
from mtlmech.training import TrainSpec

NAME = "peaks"
VERSION = 1

# C97 Fig. 5, read off the figure by eye (not printed in the paper): shape only.
PUBLISHED = {"any": {0: -0.03, 1: 0.03, 2: 0.11, 3: 0.19}, "test_match": {1: 0.12, 2: 0.22, 3: 0.48}}
SENSITIVITIES = {"gradient": hidden_sensitivity, "ablation": ablation_sensitivity}
RANKS = {"spearman": rank_correlation, "kendall": kendall_correlation}
PRIMARY = dict(encoding="binary", sensitivity="gradient", rank="spearman")


@dataclass(frozen=True)
class Config:
    encodings: tuple[str, ...] = field(default=ENCODINGS, metadata={"help": "per-variable codes; the first is primary"})
    width: int = field(default=10, metadata={"help": "inputs per variable"})
    n_train: int = 1000
    n_halt: int = 500
    n_test: int = 1000
    hidden: int = 64
    lr: float = 1.0
    momentum: float = 0.9
    epochs: int = 800
    eval_every: int = 10

    def __post_init__(self) -> None:
        if not self.encodings or any(e not in ENCODINGS for e in self.encodings):
            raise ValueError(f"--encodings must be among {ENCODINGS}, got {self.encodings}")
        if self.encodings[0] != PRIMARY["encoding"]:
            raise ValueError(f"the primary encoding {PRIMARY['encoding']!r} must come first in --encodings")
        if min(self.n_train, self.n_halt, self.n_test, self.hidden, self.width) < 1:
            raise ValueError("sizes, --hidden and --width must be ≥ 1")


PROFILES = {
    "quick": dict(seeds=4, epochs=250, n_train=500),
    "full": dict(seeds=20),
}


def problem(cfg: Config, encoding: str):
    return make_problem("peaks", encoding=encoding, width=cfg.width)


def sharing_rows(matrix, pairs: dict, **labels) -> list[list[dict]]:
    """Per member: bin means ("any" by overlap, "test_match" by overlap) and the trend ρ."""
    values = pair_values(matrix, pairs["i"], pairs["j"])
    any_bins = group_means(values, pairs["n_shared"])
    test_bins = group_means(values, pairs["n_shared"], pairs["test_match"])
    counts = {("any", k): int((pairs["n_shared"] == k).sum()) for k in any_bins}
    counts |= {("test_match", k): int(((pairs["n_shared"] == k) & pairs["test_match"]).sum()) for k in test_bins}
    out = []
    for b in range(values.shape[0]):
        rows = [{**labels, "record": "sharing", "series": series, "n_shared": k, "sharing": float(bins[k][b]),
                 "n_pairs": counts[(series, k)]}
                for series, bins in (("any", any_bins), ("test_match", test_bins)) for k in bins]
        rho = sps.spearmanr(pairs["n_shared"], values[b]).statistic
        rows.append({**labels, "record": "trend", "rho": float(rho)})
        out.append(rows)
    return out


def run_seeds(seeds: list[int], *, cfg: Config, encoding: str, key: tuple, device: str) -> dict:
    prob = problem(cfg, encoding)
    trained = train_conditions(
        prob, [Condition("MTL", tuple(prob.task_names))], seeds, key=key, n_train=cfg.n_train,
        n_halt=cfg.n_halt, n_test=cfg.n_test, net=dict(hidden=(cfg.hidden,)), device=device,
        train_spec=TrainSpec(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum, eval_every=cfg.eval_every))
    r = trained.result
    test = as_batch([s.test for s in trained.splits], clean=True, device=device)
    train_m = r.evaluate(as_batch([s.train for s in trained.splits], device=device), "shared")["mse"].cpu().numpy()
    test_mse = r.evaluate(test, "shared")["mse"].cpu().numpy()
    target_var = test.y.var(dim=1, unbiased=False).cpu().numpy()
    pairs = peaks_pairs()
    per_member = [[] for _ in seeds]
    for sens_name, sens_fn in SENSITIVITIES.items():
        sens = sens_fn(r.spec, r.shared_snapshot, test.x)
        for rank_name, rank_fn in RANKS.items():
            for b, rows in enumerate(sharing_rows(rank_fn(sens), pairs, encoding=encoding, sensitivity=sens_name,
                                                  rank=rank_name)):
                per_member[b] += rows
    out = {}
    for b, (seed, _) in enumerate(trained.members):
        task_rows = [{"encoding": encoding, "record": "task", "task": t, "test_mse": float(test_mse[b, k]),
                      "test_rmse": float(np.sqrt(test_mse[b, k])), "r2": float(1 - test_mse[b, k] / target_var[b, k]),
                      "train_mse": float(train_m[b, k]), "best_epoch": int(r.shared_best_epoch[b]),
                      "diverged": bool(r.diverged[b])} for k, t in enumerate(prob.task_names)]
        out[seed] = {"rows": task_rows + per_member[b]}
    return out


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    device = run.device  # version-1 cache keys and streams (re-registration adds run.stream)
    units = []
    for encoding in cfg.encodings:
        problem(cfg, encoding)
        key = unit_key(NAME, VERSION, cfg, device, exclude=("encodings",), encoding=encoding)
        units.append(Unit(key=key, label=encoding, compute=partial(
            run_seeds, cfg=cfg, encoding=encoding, key=(NAME, VERSION, encoding), device=device)))
    return units


def one_sided(x: np.ndarray, direction: str) -> tuple[float, float]:
    """One-sample Wilcoxon p-values (predicted direction, opposite) of x against 0."""
    opposite = "less" if direction == "greater" else "greater"
    zeros = np.zeros_like(x)
    return paired_wilcoxon(x, zeros, direction), paired_wilcoxon(x, zeros, opposite)


def tests_for(sharing: pd.DataFrame, trend: pd.DataFrame) -> dict:
    """The four pre-registered statistics for one (encoding, sensitivity, rank) variant.

    ``sharing``: wide table, one row per seed, columns (series, n_shared); ``trend``: ρ per seed."""
    out = {}
    rho = trend["rho"].to_numpy(float)
    p, p_opp = one_sided(rho, "greater")
    out["PK1"] = dict(effect=mean_ci(rho)[0], ci=mean_ci(rho)[1:], p=p, p_opposite=p_opp, n=len(rho))
    parts = []
    for label, diffs in (("PK1b", [sharing[("any", k + 1)] - sharing[("any", k)] for k in range(3)]),
                         ("PK2", [sharing[("test_match", k)] - sharing[("any", k)] for k in (1, 2, 3)])):
        diffs = [d.to_numpy(float) for d in diffs]
        ps = [one_sided(d, "greater") for d in diffs]
        worst = int(np.argmin([d.mean() for d in diffs]))
        m, lo, hi = mean_ci(diffs[worst])
        out[label] = dict(effect=m, ci=(lo, hi), p=max(q[0] for q in ps), p_opposite=min(q[1] for q in ps),
                          n=len(diffs[worst]), step_means=[float(d.mean()) for d in diffs],
                          step_p=[q[0] for q in ps], worst_step=worst)
        parts.append(label)
    zero = sharing[("any", 0)].to_numpy(float)
    p, p_opp = one_sided(zero, "less")
    m, lo, hi = mean_ci(zero)
    out["PK1c"] = dict(effect=m, ci=(lo, hi), p=p, p_opposite=p_opp, n=len(zero))
    return out


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    tasks = runs[runs["record"] == "task"]
    share = runs[runs["record"] == "sharing"].astype({"n_shared": int})
    trend = runs[runs["record"] == "trend"]
    variant_cols = ["encoding", "sensitivity", "rank"]
    robustness, bins, stats_by_variant = [], [], {}
    for variant, g in share.groupby(variant_cols, sort=True):
        wide = g.pivot_table(index="seed", columns=["series", "n_shared"], values="sharing", aggfunc="first")
        t = trend.set_index(variant_cols).loc[variant]
        st = tests_for(wide, t)
        stats_by_variant[variant] = st
        label = dict(zip(variant_cols, variant))
        robustness.append({**label, **{f"{c}_effect": st[c]["effect"] for c in st},
                           **{f"{c}_p": st[c]["p"] for c in st},
                           "all_four_significant": all(st[c]["p"] < 0.01 for c in st)})
        for (series, k), col in wide.items():
            m, lo, hi = mean_ci(col.to_numpy(float))
            bins.append({**label, "series": series, "n_shared": int(k), "mean": m, "ci_low": lo, "ci_high": hi,
                         "n_nets": int(col.notna().sum()),
                         "published_approx": PUBLISHED[series].get(int(k))})
    bins = pd.DataFrame(bins)
    primary_key = tuple(PRIMARY[c] for c in variant_cols)
    st = stats_by_variant[primary_key]
    figure = f"{NAME}/sharing_vs_overlap.png"
    statements = {
        "PK1": ("hidden-unit sharing rises with the number of shared variables (trend)",
                "one-sided Wilcoxon over nets of per-net Spearman ρ(n_shared, pair sharing) > 0; 95% t-CI of mean ρ"),
        "PK1b": ("sharing rises at every step 0→1→2→3 shared variables ('any feature')",
                 "intersection–union: max of three one-sided Wilcoxon p (step > 0); effect = smallest mean step, 95% t-CI"),
        "PK1c": ("sharing is negative for tasks with no variable in common",
                 "one-sided Wilcoxon over nets that the 0-overlap mean < 0; 95% t-CI"),
        "PK2": ("'test must match' sharing exceeds 'any feature' at 1, 2 and 3 shared variables",
                "intersection–union: max of three one-sided paired Wilcoxon p (test_match − any > 0); "
                "effect = smallest mean difference, 95% t-CI"),
    }
    claims = []
    for cid, (statement, test) in statements.items():
        s = st[cid]
        details = {k: v for k, v in s.items() if k not in ("effect", "ci", "p", "n")}
        claims.append(ClaimResult(
            id=cid, statement=statement, source="C97 §3.3, Fig. 5", test=test + " (binary code, |∂out/∂h|, Spearman)",
            effect=float(s["effect"]), ci=tuple(float(c) for c in s["ci"]), p_value=float(s["p"]), n=int(s["n"]),
            direction="less" if cid == "PK1c" else "greater", figure=figure, details=details))

    per_task = tasks.groupby(["encoding", "task"], sort=True).agg(
        test_rmse=("test_rmse", "mean"), r2=("r2", "mean"), r2_min=("r2", "min"), n_nets=("seed", "nunique"),
        n_diverged=("diverged", "sum")).reset_index()
    quality = tasks.groupby("encoding").agg(
        median_task_r2=("r2", "median"), mean_rmse=("test_rmse", "mean"), n_nets=("seed", "nunique"),
        n_diverged_rows=("diverged", "sum"), frac_stopped_at_cap=("best_epoch", lambda e: float((e == cfg.epochs).mean()))
    ).reset_index()

    # -- figure: Fig. 5 style (primary), robustness variants, per-task accuracy -------------------------
    fig, axes = plots.new_figure(ncols=3, width=4.4, height=3.8)
    ax = axes[0, 0]
    prim = bins.set_index(variant_cols).loc[primary_key]
    n_nets = int(prim["n_nets"].min())
    for series, color, label in (("any", "#1f77b4", "any feature"), ("test_match", "#d62728", "test must match")):
        b = prim[prim["series"] == series]
        plots.errorbars(ax, b["n_shared"], b["mean"], b["ci_low"], b["ci_high"], label=f"ours: {label}", color=color)
        pub = PUBLISHED[series]
        ax.plot(list(pub), list(pub.values()), ls="--", marker="s", mfc="none", color=color, alpha=0.7,
                label=f"C97 Fig. 5 (read off figure): {label}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="number of variables two tasks share", ylabel="mean sharing (Spearman ρ of sensitivities)",
           title=f"Peaks: binary code, |∂out/∂h| ({n_nets} nets)", xticks=[0, 1, 2, 3])
    ax.legend(fontsize=6.5, loc="upper left")
    ax = axes[0, 1]
    variants = [v for v in bins.set_index(variant_cols).index.unique()]
    for i, v in enumerate(variants):
        b = bins.set_index(variant_cols).loc[v]
        for series, ls in (("any", "-"), ("test_match", ":")):
            s = b[b["series"] == series]
            ax.plot(s["n_shared"] + (i - len(variants) / 2) * 0.03, s["mean"], ls=ls, marker="o", ms=3,
                    color=sns.color_palette("tab10")[i % 10], label="/".join(v) if series == "any" else None)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="number of variables two tasks share", ylabel="mean sharing over nets",
           title="robustness (solid: any feature; dotted: test must match)", xticks=[0, 1, 2, 3])
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    for encoding, g in per_task.groupby("encoding"):
        ax.plot(np.arange(len(g)) + 1, g["r2"].to_numpy(), marker=".", ls="none", label=f"{encoding} code")
    ax.set(xlabel="task (P001 … P120)", ylabel="test R² (mean over nets)", title="per-task test accuracy")
    ax.legend(fontsize=7)
    plots.caption(fig, f"Left: means over {n_nets} independent 60-64-120 nets with 95% t-intervals; dashed hollow squares: "
                       "C97 Fig. 5 values read off the figure by eye (approximate, shape only). Sharing = rank correlation "
                       "between two outputs' 64-long hidden-unit sensitivity vectors, computed on 1000 clean test rows at the "
                       "shared early-stopping snapshot. Middle: means for every encoding / sensitivity / rank statistic.")
    plots.save(fig, outdir / "sharing_vs_overlap.png")

    paper_vs_ours = [{"series": r["series"], "n_shared": int(r["n_shared"]), "ours_mean": r["mean"],
                      "ours_ci": [r["ci_low"], r["ci_high"]], "paper_approx": r["published_approx"]}
                     for _, r in prim.reset_index().iterrows()]
    return Findings(
        claims=claims,
        constructions_tried=[
            {"construction": "pilot (4 nets, not judged): binary code, full-batch lr 0.5, 500 epochs, n_train 1000",
             "result": "median task R² 0.91; any ≈ −0.16/−0.02/0.14/0.27, test-match ≈ 0.11/0.24/0.37"},
            {"construction": "pilot: binary, mini-batch 100, lr 0.1, 300 epochs", "result": "R² 0.92; same shape"},
            {"construction": "pilot: binary, full-batch lr 0.5, 1500 epochs", "result": "R² 0.955; same shape"},
            {"construction": "pilots used to pick training settings (on R² only): binary and thermometer, lr 1.0, "
                             "800 epochs", "result": "R² 0.957 / 0.894; same shape; chosen for the full run",
             "version": VERSION}],
        tables={"paper_vs_ours": paper_vs_ours, "bins": bins.to_dict(orient="records"),
                "robustness": robustness, "training_quality": quality.to_dict(orient="records"),
                "per_task": per_task.to_dict(orient="records")},
        figures=["sharing_vs_overlap.png"])


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES,
                        make_units=make_units, analyse=analyse)

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
