"""Data amplification: does a second task that shares F give T more information about F than T's own labels?

Claims (docs/CLAIMS.md; sources in docs/SOURCES.md):
- DA1 (C97 §3.2.1), statistical amplification: T and T' are the same function F with independent
  label noise; MTL on both generalises better on (clean) T — against a tuned STL net, against an
  STL net whose input→hidden rate is doubled (the gradient an MTL hidden layer gets from two
  tasks), and against the "same-noise" MTL net whose T' carries T's own noisy labels (same
  architecture, same gradient scale, no second noise process). DA1 is the composite of the three.
- DA1b: the amplification benefit (same-noise MTL − MTL) is larger with noise than without.
- DA1c: the benefit vanishes as the training set grows: equivalence at the largest n.
- DA2 (thesis taxonomy; our design), sampling amplification, redefined in version 2 so that it is
  not blocking: noise-free, T and T' read F on the same rows through different read-outs.
- DA3 (C95 §2.1.2), blocking amplification: T = A ∨ F, T' = ¬A ∨ F, F = parity; MTL learns T better.
- DA5 (C97 §7.4 remark): MTL reaches its best halt error in fewer epochs than STL; tested with
  both learning rates tuned (DA5) and at one shared untuned rate (DA5u, the version-1 situation).

Construction (version 2, the fair protocol):
- DA1, problem ``amp_noisy_copies``: 8 bits, F = (x0∧x1)∨(x2∧x3)∨(x4∧x5), x6, x7 irrelevant;
  T = F and T' = F, each with its own independent label flips (probability = noise) on training
  and halt rows; test rows clean. Noise 0, 0.1, 0.2, 0.3 at n = 100 (DA1, DA1b); n = 100, 400,
  1600 at noise 0.2 (DA1c).
- DA2, problem ``amp_readout_pair``: T = F ⊕ x6, T' = F ⊕ x7 (same F), noise-free; n = 50 and 100.
- DA3, problem ``amp_blocking_pair``: A = x0, F = parity(x1..x4), x5..x7 irrelevant, noise-free;
  n = 128 and 256.
- Per seed: its own training set, a halt set of 200 rows (noisy like the training set) and 1000
  clean test rows; every condition trains on the same rows from the same initial weights. Net
  8-16-2, sigmoid units, squared error, full-batch SGD with momentum 0.9.
- Conditions (all "tuned" ones share one learning-rate grid, chosen per seed and condition on
  T's halt MSE): STL (loss on T), MTL (T and T'), STL-h2 (STL with the input→hidden rate ×2;
  DA1 primary point), MTL-same-noise (DA1: T' trained on T's own noisy labels) / MTL-copy (DA2:
  T' replaced by a copy of T), and the untuned controls STL-untuned and MTL-untuned at version
  1's single rate (0.5 for DA1, 1.0 for DA3), same stopping rule.
- Learning-rate grid: DA1, DA2 0.5 × {1/64, 1/16, 1/4, 1, 4, 16, 64, 256}; DA3 0.5 × {1/16 … 64}.
  Pilots (scratch seed keys outside the experiment's streams; ``PILOT_V2``) showed the halt MSE
  flat from ×1/4 to ×16 and a cliff at ×64 on DA1 and DA3, so the first grid was ×{1/16 … 64}
  for all parts. On the confirmatory seeds its edges were chosen by 15-27 % of DA1/DA2 seeds
  (> 10 %: the grid-edge rule), so DA1/DA2 were rerun with one more point at each end (the first
  run's numbers are in ``constructions_tried``; DA3's edges were chosen by ≤ 2.5 %).
- Stopping: halt MSE every 10 epochs; a net stops when T's halt MSE (each trained task's, for
  MTL) has not improved by more than 1e-3 for 50 checks (DA1, DA2) or 100 checks (DA3, whose
  parity plateaus longer); safety caps 20 000 and 50 000 epochs. T is scored at its own
  best-halt snapshot.
- Seeds: 200 per point from the confirmatory stream (full profile).

Measurement: T's test error rate (0.5 threshold) on the clean test rows; the epoch of T's best
halt MSE (``best_epoch``).
Tests (pre-registered; α = 0.01, Holm over the family "main"; the untuned controls DA1u, DA3u
and DA5u form the family "controls"):
- DA1t / DA1h / DA1s: one-sided Wilcoxon signed-rank, paired MTL − {STL, STL-h2, MTL-same-noise}
  T test error < 0 at noise 0.2, n = 100; effect = mean difference, 95 % paired-bootstrap CI.
  DA1 (composite) holds when all three do.
- DA1b: contrast C = mean over noise ∈ {0.1, 0.2, 0.3} of the mean benefit B − B at noise 0,
  B = (MTL-same-noise − MTL) T test error per seed, n = 100; C > 0 by a one-sided Welch t-test
  (levels are independent samples); 95 % t-interval. (At noise 0 the two conditions are the same
  net, so B = 0 there exactly; the contrast tests that independent noise creates a benefit.)
- DA1c: equivalence (TOST, two one-sided paired t-tests on the mean) of MTL − MTL-same-noise at n = 1600, noise 0.2,
  within the margin ±0.01 test error. Reported beside it: the benefit at every n (against both
  MTL-same-noise and STL) and the STL training-set size whose mean error matches MTL's at each n
  (log-linear interpolation over the STL curve, seed bootstrap).
- DA2: composite of DA2t (MTL − STL < 0) and DA2c (MTL − MTL-copy < 0), one-sided Wilcoxon at
  n = 50. (Version 1's DA2b "the benefit shrinks with n" is dropped: the pilot showed no benefit
  to shrink; n = 100 is reported in the tables.)
- DA3: one-sided Wilcoxon, paired MTL − STL T test error < 0 at n = 128; the matched STL size is
  reported. DA3u: the same at the untuned rate 1.0.
- DA5: one-sided Wilcoxon, paired log2(best epoch MTL / best epoch STL) < 0 at the DA1 primary
  point, both tuned; DA5u: the same for the untuned pair. Effect = mean log2 ratio.
A claim whose compared conditions have > 5 % of runs stopped by the cap is not judged.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from mtlmech.engine.nets import NetConfig
from mtlmech.engine.training import TrainSpec
from mtlmech.pipeline.cli import RunContext
from mtlmech.pipeline.experiment import Experiment, Findings, unit_key
from mtlmech.pipeline.runner import Unit
from mtlmech.problems.amplification import same_labels_as
from mtlmech.problems.tasks import make_problem
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.report import plots
from mtlmech.stats import ClaimResult, paired_tost
from mtlmech.stats.paired import group_means, paired, paired_claim
from mtlmech.stats.trend import constructions_tried, level_contrast, matched_size_bootstrap, per_seed_benefit

NAME = "data_amplification"
VERSION = 2
GRID = (0.0625, 0.25, 1.0, 4.0, 16.0, 64.0)          # DA3
WIDE_GRID = (1 / 64, 0.0625, 0.25, 1.0, 4.0, 16.0, 64.0, 256.0)   # DA1, DA2


@dataclass(frozen=True)
class Config:
    noise_levels: tuple[float, ...] = field(default=(0.0, 0.1, 0.2, 0.3), metadata={"help": "DA1 label-flip probabilities"})
    primary_noise: float = field(default=0.2, metadata={"help": "noise of DA1, DA1c and DA5"})
    da1_primary_n: int = field(default=100, metadata={"help": "training size of DA1, DA1b and DA5"})
    da1_n: tuple[int, ...] = field(default=(100, 400, 1600), metadata={"help": "DA1c training sizes (noise = primary)"})
    da1c_margin: float = field(default=0.01, metadata={"help": "DA1c equivalence margin (± test error)"})
    da2_n: tuple[int, ...] = field(default=(50, 100), metadata={"help": "DA2 training sizes"})
    da2_primary_n: int = 50
    da3_n: tuple[int, ...] = field(default=(128, 256), metadata={"help": "DA3 training sizes"})
    da3_primary_n: int = 128
    da3_untuned_mult: float = field(default=2.0, metadata={"help": "DA3 untuned rate as a multiple of train.lr (v1: 1.0)"})
    parity_bits: tuple[int, ...] = field(default=(1, 2, 3, 4), metadata={"help": "bits of the blocking pair's F"})
    n_halt: int = 200
    n_test: int = 1000
    net: NetConfig = NetConfig(hidden=(16,))
    train: TrainSpec = TrainSpec(lr=0.5, momentum=0.9, epochs=20_000, eval_every=10, patience=50, min_delta=1e-3,
                                 lr_grid=WIDE_GRID)
    da3_train: TrainSpec = TrainSpec(lr=0.5, momentum=0.9, epochs=50_000, eval_every=10, patience=100, min_delta=1e-3,
                                     lr_grid=GRID)

    def __post_init__(self) -> None:
        if min(self.da1_n + self.da2_n + self.da3_n) < 2 or self.n_halt < 1 or self.n_test < 1:
            raise ValueError("training sizes must be ≥ 2 and --n-halt, --n-test ≥ 1")
        if not all(0 <= p <= 0.5 for p in self.noise_levels) or self.primary_noise not in self.noise_levels:
            raise ValueError("--noise-levels must lie in [0, 0.5] and include --primary-noise")
        if 0.0 not in self.noise_levels or len(self.noise_levels) < 2:
            raise ValueError("the DA1b contrast needs noise 0 and at least one noise level > 0 in --noise-levels")
        if self.da1_primary_n not in self.da1_n or self.da2_primary_n not in self.da2_n or self.da3_primary_n not in self.da3_n:
            raise ValueError("--da1-primary-n, --da2-primary-n and --da3-primary-n must be among their sweeps")
        if not self.da1c_margin > 0 or self.da3_untuned_mult <= 0:
            raise ValueError("--da1c-margin and --da3-untuned-mult must be > 0")


PROFILES = {
    "quick": dict(seeds=12, noise_levels=(0.0, 0.2), da1_n=(100, 400), da2_n=(50,), da3_n=(128, 256),
                  train=dict(patience=20, lr_grid=(0.25, 1.0, 4.0)),
                  da3_train=dict(patience=30, lr_grid=(1.0, 4.0))),
    "full": dict(seeds=200),
}

# Every construction tried before the committed runs (summary.json's constructions_tried).
PILOT_V1 = [
    {"claim": "DA3", "what": "v1 pilot for the parity size (24 seeds, 8 bits, A = x0, lr 0.5, 1500 epochs; T test error STL / MTL)",
     "parity(x1..x3)": {"n=32": [0.226, 0.229], "n=64": [0.155, 0.116], "n=128": [0.058, 0.020]},
     "parity(x1..x4)": {"n=32": [0.242, 0.250], "n=64": [0.237, 0.217], "n=128": [0.194, 0.109]},
     "then parity(x1..x4), lr 1.0, 2000 epochs": {"n=128": [0.147, 0.077], "n=256": [0.035, 0.019]}},
    {"claim": "DA1/DA2", "what": "v1 pilot (32 seeds, lr 0.5, 1000 epochs; T test error STL / MTL)",
     "DA1": {"noise 0, n=50": [0.177, 0.168], "noise 0, n=200": [0.024, 0.011], "noise 0.2, n=50": [0.295, 0.272],
             "noise 0.2, n=200": [0.159, 0.108], "noise 0.4, n=50": [0.448, 0.455], "noise 0.4, n=200": [0.377, 0.378]},
     "DA2 (T = F∧x6, T' = F∨x7)": {"n=25": [0.177, 0.174], "n=50": [0.118, 0.122], "n=100": [0.070, 0.078],
                                   "n=200": [0.036, 0.038]}},
]
PILOT_V2 = [
    {"claim": "DA1", "what": "learning-rate landscape, pilot seeds 0-23, noise 0.2, n = 100, patience 50, min_delta 1e-3; "
                             "mean best halt MSE STL / MTL per lr multiplier of 0.5",
     "×1/64": [0.234, 0.223], "×1/16": [0.220, 0.216], "×1/4": [0.214, 0.210], "×1": [0.212, 0.208],
     "×4": [0.212, 0.209], "×16": [0.213, 0.211], "×64": [0.402, 0.352], "×256": [0.502, 0.493],
     "T test error STL → MTL (tuned over ×1/64..×256)": "0.217 → 0.210", "cap fraction": 0.0,
     "earlier grids": "×{1/4..4} (16 seeds): 44 % of choices at the bottom edge; ×{1/16..32} (32 seeds): top edge "
                      "chosen by 25 % (MTL) / 19 % (STL), bottom edge by 12 % / 16 %: the landscape is flat"},
    {"claim": "DA1c", "what": "n = 1600, noise 0.2, pilot seeds 0-7, grid ×{1/16..64}",
     "T test error STL / MTL": [0.0015, 0.0001], "cap fraction": 0.0, "seconds for 8 seeds": 4.3},
    {"claim": "DA2", "what": "readout pair T = F⊕x6, T' = F⊕x7, pilot seeds 0-23, grid ×{1/16..64}",
     "T test error STL / MTL, n = 50": [0.331, 0.351], "n = 100": [0.136, 0.171],
     "MTL − STL": {"n=50": "+0.020 (s.e. 0.023)", "n=100": "+0.035 (s.e. 0.010)"},
     "consequence": "no benefit to shrink: DA2b dropped; DA2 kept at n = 50 as pre-registered, expected not to replicate"},
    {"claim": "all", "what": "first confirmatory run, grid ×{1/16..64} for every part (replaced for DA1/DA2 by the "
                             "grid-edge rule; same seeds)",
     "DA1t / DA1h / DA1s": "−0.022 [−0.028, −0.016] / −0.019 [−0.025, −0.013] / −0.020 [−0.026, −0.014]",
     "DA1u": "−0.022", "DA1b": "+0.016 [0.013, 0.020]", "DA1c": "−0.0045 [−0.0062, −0.0029] (TOST p 1e-14)",
     "DA2t / DA2c": "+0.010 [−0.003, +0.024] / +0.023 [+0.009, +0.036]", "DA3": "−0.049 [−0.059, −0.038]",
     "DA5 / DA5u": "+0.02 [−0.33, +0.37] / +0.15 [−0.00, +0.32]",
     "edge shares": "DA1 primary: STL 22 %, MTL 22 %, same-noise 18 %; DA1c n=1600 top edge 24 %; DA2 22-27 %",
     "cap fraction": 0.0, "compute seconds": 1492},
    {"claim": "DA3", "what": "blocking pair parity(x1..x4), n = 128, pilot seeds 0-15, patience 100, cap 50 000",
     "mean best halt MSE STL / MTL": {"×1/16": [0.137, 0.135], "×1/4": [0.137, 0.121], "×1": [0.100, 0.055],
                                      "×4": [0.073, 0.051], "×16": [0.175, 0.169], "×64": [0.248, 0.248]},
     "T test error STL → MTL (tuned)": "0.103 → 0.059", "chosen rates": "×1 and ×4 (no edge)", "cap fraction": 0.0},
]
SUPERSEDED = {  # claim ID -> why its v1 verdict changed
    "DA1b": "benefit redefined against the same-noise MTL control (v1's noise-0 baseline was a pure learning-rate effect); "
            "the pre-registered contrast (noise > 0) − (noise 0) is positive",
    "DA1c": "v1 fitted a linear slope over n = 50-200, the rising limb of an inverted U; v2 tests equivalence at n = 1600, "
            "where the benefit (−0.005) lies within ±0.01",
    "DA2": "redefined as a non-blocking read-out pair (v1's pair was blocking with an easy F): MTL is worse than its "
           "copy control and no better than tuned STL",
}

UNTUNED = (1.0,)


def conditions(part: str, primary: bool, cfg: Config) -> list[Condition]:
    """The conditions trained at one sweep point (see the docstring)."""
    stl, mtl = Condition("STL", ("T",)), Condition("MTL", ("T", "T'"), report=("T",))
    if part == "DA3":
        extra = [Condition("STL-untuned", ("T",), lr_grid=(cfg.da3_untuned_mult,)),
                 Condition("MTL-untuned", ("T", "T'"), report=("T",), lr_grid=(cfg.da3_untuned_mult,))] if primary else []
        return [stl, mtl, *extra]
    name, kw = PROBLEMS[part](cfg, 0.0)
    problem = make_problem(name, **kw)
    copy = Condition("MTL-copy" if part == "DA2" else "MTL-same-noise", ("T", "T'"), report=("T",),
                     transform=same_labels_as(problem, "T", ("T'",)))
    if part == "DA2":
        return [stl, mtl, copy]
    out = [stl, mtl, copy]
    if part == "DA1":   # the noise sweep at the primary n
        out += [Condition("STL-untuned", ("T",), lr_grid=UNTUNED),
                Condition("MTL-untuned", ("T", "T'"), report=("T",), lr_grid=UNTUNED)]
    if primary:
        out.append(Condition("STL-h2", ("T",), hidden_lr_grid=(2.0,)))
    return out


PROBLEMS = {
    "DA1": lambda cfg, noise: ("amp_noisy_copies", {"noise": noise}),
    "DA1c": lambda cfg, noise: ("amp_noisy_copies", {"noise": noise}),
    "DA2": lambda cfg, noise: ("amp_readout_pair", {}),
    "DA3": lambda cfg, noise: ("amp_blocking_pair", {"parity_bits": cfg.parity_bits}),
}


def sweep_points(cfg: Config) -> list[dict]:
    """Every (part, noise, size) point. "DA1": the noise sweep at the primary n (incl. the primary
    point); "DA1c": the other sizes at the primary noise."""
    pts = [dict(part="DA1", noise=p, n_train=cfg.da1_primary_n,
                primary=bool(np.isclose(p, cfg.primary_noise))) for p in cfg.noise_levels]
    pts += [dict(part="DA1c", noise=cfg.primary_noise, n_train=n, primary=False)
            for n in cfg.da1_n if n != cfg.da1_primary_n]
    pts += [dict(part="DA2", noise=0.0, n_train=n, primary=n == cfg.da2_primary_n) for n in cfg.da2_n]
    pts += [dict(part="DA3", noise=0.0, n_train=n, primary=n == cfg.da3_primary_n) for n in cfg.da3_n]
    return pts


def run_seeds(seeds: list[int], *, part: str, noise: float, n_train: int, primary: bool, cfg: Config, key: tuple,
              run: RunContext) -> dict:
    name, kw = PROBLEMS[part](cfg, noise)
    trained = train_conditions(make_problem(name, **kw), conditions(part, primary, cfg), seeds, key=key, n_train=n_train,
                               n_halt=cfg.n_halt, n_test=cfg.n_test, net=cfg.net, device=run.device, backend=run.backend,
                               train_spec=cfg.da3_train if part == "DA3" else cfg.train)
    # DA1c points are the DA1 construction at other sizes: analysed together as part "DA1"
    return score_rows(trained, part="DA1" if part == "DA1c" else part, n_train=n_train, noise=noise)


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    sweeps = ("noise_levels", "primary_noise", "da1_primary_n", "da1_n", "da1c_margin", "da2_n", "da2_primary_n",
              "da3_n", "da3_primary_n")
    units = []
    for pt in sweep_points(cfg):
        name, kw = PROBLEMS[pt["part"]](cfg, pt["noise"])
        problem = make_problem(name, **kw)   # validates the construction before anything runs
        names = [c.name for c in conditions(pt["part"], pt["primary"], cfg)]
        unused = ("train",) if pt["part"] == "DA3" else ("da3_train",)   # the spec a part does not train with
        key = unit_key(NAME, VERSION, cfg, run, exclude=sweeps + unused, problem=problem, **pt, conditions=names)
        units.append(Unit(key=key, label=f"{pt['part']} noise={pt['noise']} n={pt['n_train']}",
                          compute=partial(run_seeds, **pt, cfg=cfg, run=run,
                                          key=(NAME, VERSION, run.stream, pt["part"], pt["noise"], pt["n_train"]))))
    return units


# -- analysis -----------------------------------------------------------------------------------

WIL = "one-sided Wilcoxon signed-rank on paired {a}−{b} T test error, {at}; 95% paired bootstrap CI"


def at(df: pd.DataFrame, **where) -> pd.DataFrame:
    for col, v in where.items():
        df = df[np.isclose(df[col], v)] if isinstance(v, float) else df[df[col] == v]
    return df


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    runs = runs[runs["task"] == "T"].copy()
    runs["log2_best_epoch"] = np.log2(runs["best_epoch"].clip(lower=1))
    fig_path = f"{NAME}/amplification.png"
    p_noise, p_n = cfg.primary_noise, cfg.da1_primary_n
    da1 = runs[runs["part"] == "DA1"]
    noise_sweep, n_sweep = at(da1, n_train=p_n), at(da1, noise=p_noise)
    primary = at(noise_sweep, noise=p_noise)
    w1 = {"part": "DA1", "n_train": p_n, "noise": p_noise, "task": "T"}
    point = f"noise {p_noise}, n={p_n}"

    def pc(df, a, b, cid, statement, source, where, family="main", metric="test_error", test=None):
        row = paired(df, metric=metric, treatment=a, control=b).iloc[0]
        return paired_claim(row, id=cid, statement=statement, source=source, direction="less", figure=fig_path,
                            test=test or WIL.format(a=a, b=b, at=where.pop("_at")), compared=(a, b), where=where,
                            family=family)

    claims = [
        pc(primary, "MTL", "STL", "DA1t", "statistical amplification: MTL beats tuned STL on clean T", "C97 §3.2.1",
           {**w1, "_at": point}),
        pc(primary, "MTL", "STL-h2", "DA1h", "statistical amplification survives an STL net with the input→hidden rate "
           "doubled (the MTL hidden layer's gradient scale)", "C97 §3.1, §3.2.1", {**w1, "_at": point}),
        pc(primary, "MTL", "MTL-same-noise", "DA1s", "statistical amplification needs independent noise: MTL beats "
           "the same-noise MTL net (T' = T's own noisy labels)", "C97 §3.2.1", {**w1, "_at": point}),
        pc(primary, "MTL-untuned", "STL-untuned", "DA1u", "control: DA1t at the single untuned rate 0.5 (version 1's "
           "comparison, with patience stopping)", "C97 §3.2.1", {**w1, "_at": point}, family="controls"),
    ]
    claims.insert(0, ClaimResult(id="DA1", statement="statistical amplification: independent noise on T and T' sharing F "
                                 "→ MTL better on clean T, not explained by learning rate or gradient scale",
                                 source="C97 §3.2.1", test="composite: DA1t, DA1h and DA1s all replicated",
                                 effect=float("nan"), ci=(float("nan"), float("nan")), p_value=None,
                                 n=claims[0].n, rule="composite", parts=("DA1t", "DA1h", "DA1s"), figure=fig_path))

    # DA1b: benefit B = (MTL-same-noise − MTL) per seed at each noise level, contrast (noise > 0) − (noise 0)
    b_noise = per_seed_benefit(noise_sweep, metric="test_error", treatment="MTL", control="MTL-same-noise", by=["noise"])
    levels = {float(p): g["benefit"].to_numpy() for p, g in b_noise.groupby("noise")}
    zero = [p for p in levels if p == 0.0]
    fit = level_contrast(levels, high=[p for p in levels if p > 0], low=zero, direction="greater")
    claims.append(ClaimResult(
        id="DA1b", statement="statistical amplification: the benefit of independent noise is larger with noise than without",
        source="C97 §3.2.1", test=f"contrast mean B(noise>0) − B(0) of B = MTL-same-noise − MTL T test error per seed, "
                                  f"n={p_n}; one-sided Welch t-test; 95% t-interval",
        effect=fit["effect"], ci=fit["ci"], p_value=fit["p"], p_opposite=fit["p_opposite"], n=fit["n"],
        direction="greater", figure=fig_path, compared=("MTL", "MTL-same-noise"),
        where={"part": "DA1", "n_train": p_n, "task": "T"},
        details={"benefit_at_noise_0_all_zero": bool(np.all(levels[0.0] == 0)) if zero else None}))

    # DA1c: equivalence at the largest n; benefits and matched STL size at every n
    big = max(cfg.da1_n)
    big_runs = at(n_sweep, n_train=big)
    row = paired(big_runs, metric="test_error", treatment="MTL", control="MTL-same-noise").iloc[0]
    wide = big_runs.pivot_table(index="seed", columns="condition", values="test_error")
    tost_p, p_lo, p_hi = paired_tost(wide["MTL"].to_numpy(), wide["MTL-same-noise"].to_numpy(),
                                     -cfg.da1c_margin, cfg.da1c_margin)
    by_n = {pair: paired(n_sweep, metric="test_error", treatment="MTL", control=pair, by=["n_train"])
            for pair in ("MTL-same-noise", "STL")}
    stl_curve = {float(n): g["test_error"].to_numpy(float) for n, g in at(n_sweep, condition="STL").groupby("n_train")}
    matched = []
    for n in sorted(stl_curve):
        mtl_n = at(n_sweep, condition="MTL", n_train=int(n))["test_error"].to_numpy(float)
        m = matched_size_bootstrap(stl_curve, mtl_n, n_resamples=1000)
        matched.append({"n_train": int(n), "mtl_mean_error": float(mtl_n.mean()), "matched_stl_size": m["size"],
                        "ci": list(m["ci"]), "bootstrap_outside_curve": m["n_outside"],
                        "note": "NaN: MTL's mean error lies outside the STL curve over the sizes run"})
    claims.append(ClaimResult(
        id="DA1c", statement="statistical amplification: the benefit vanishes as the training set grows",
        source="C97 §3.2.1", test=f"{paired_tost.description}: MTL − MTL-same-noise T test error at n={big}, noise "
                                  f"{p_noise} lies within ±{cfg.da1c_margin}; effect with 95% paired bootstrap CI",
        effect=float(row["diff"]), ci=(float(row["ci_low"]), float(row["ci_high"])), p_value=tost_p, n=int(row["n"]),
        rule="equivalence", margin=(-cfg.da1c_margin, cfg.da1c_margin), figure=fig_path,
        compared=("MTL", "MTL-same-noise"), where={"part": "DA1", "n_train": big, "noise": p_noise, "task": "T"},
        details={"p_low": p_lo, "p_high": p_hi, "mean_treatment": float(row["mean_treatment"]),
                 "mean_control": float(row["mean_control"])}))

    # DA2: readout pair at small n
    da2 = runs[runs["part"] == "DA2"]
    d2p = at(da2, n_train=cfg.da2_primary_n)
    w2 = {"part": "DA2", "n_train": cfg.da2_primary_n, "task": "T"}
    claims += [
        pc(d2p, "MTL", "STL", "DA2t", "sampling amplification: with two noise-free read-outs of F, MTL beats tuned STL",
           "thesis taxonomy; our design", {**w2, "_at": f"n={cfg.da2_primary_n}"}),
        pc(d2p, "MTL", "MTL-copy", "DA2c", "sampling amplification: the second read-out, not a second copy of T, helps",
           "thesis taxonomy; our design", {**w2, "_at": f"n={cfg.da2_primary_n}"}),
    ]
    claims.append(ClaimResult(id="DA2", statement="sampling amplification: noise-free different read-outs of F → MTL "
                              "better at small n", source="thesis taxonomy; our design",
                              test="composite: DA2t and DA2c both replicated", effect=float("nan"),
                              ci=(float("nan"), float("nan")), p_value=None, n=claims[-1].n, rule="composite",
                              parts=("DA2t", "DA2c"), figure=fig_path))

    # DA3: blocking, tuned and untuned; matched STL size
    da3 = runs[runs["part"] == "DA3"]
    d3p = at(da3, n_train=cfg.da3_primary_n)
    w3 = {"part": "DA3", "n_train": cfg.da3_primary_n, "task": "T"}
    stl3 = {float(n): g["test_error"].to_numpy(float) for n, g in at(da3, condition="STL").groupby("n_train")}
    mtl3 = at(d3p, condition="MTL")["test_error"].to_numpy(float)
    m3 = matched_size_bootstrap(stl3, mtl3)
    da3_claim = pc(d3p, "MTL", "STL", "DA3", "blocking amplification: with T = A∨F, T' = ¬A∨F (F parity), MTL learns T "
                   "better than tuned STL", "C95 §2.1.2", {**w3, "_at": f"n={cfg.da3_primary_n}"})
    da3_claim.details.update(matched_stl_size=m3["size"], matched_stl_size_ci=list(m3["ci"]),
                             matched_bootstrap_outside=m3["n_outside"], effective_size_ratio=m3["size"] / cfg.da3_primary_n)
    claims += [da3_claim,
               pc(d3p, "MTL-untuned", "STL-untuned", "DA3u", f"control: DA3 at the single untuned rate "
                  f"{cfg.da3_untuned_mult * cfg.da3_train.lr:g} (version 1's)", "C95 §2.1.2",
                  {**w3, "_at": f"n={cfg.da3_primary_n}"}, family="controls")]

    # DA5: MTL needs fewer epochs (C97 §7.4), tuned vs untuned
    ep = "one-sided Wilcoxon signed-rank on paired log2(best epoch {a} / best epoch {b}) of T, " + point + \
         "; effect = mean log2 ratio, 95% paired bootstrap CI"
    claims += [
        pc(primary, "MTL", "STL", "DA5", "MTL reaches its best halt error in fewer epochs than STL (both rates tuned)",
           "C97 §7.4", dict(w1), metric="log2_best_epoch", test=ep.format(a="MTL", b="STL")),
        pc(primary, "MTL-untuned", "STL-untuned", "DA5u", "control: DA5 with both nets at the untuned rate 0.5",
           "C97 §7.4", dict(w1), metric="log2_best_epoch", test=ep.format(a="MTL-untuned", b="STL-untuned"),
           family="controls"),
    ]

    tables = {
        "DA1_by_noise": {pair: paired(noise_sweep, metric="test_error", treatment=a, control=b, by=["noise"]).to_dict("records")
                         for pair, (a, b) in {"MTL-STL": ("MTL", "STL"), "MTL-MTL_same_noise": ("MTL", "MTL-same-noise"),
                                              "untuned MTL-STL": ("MTL-untuned", "STL-untuned")}.items()},
        "DA1b_benefit_by_noise": b_noise.groupby("noise")["benefit"].agg(["mean", "std", "count"]).reset_index().to_dict("records"),
        "DA1c_by_n": {k: v.to_dict("records") for k, v in by_n.items()},
        "DA1c_matched_stl_size": matched,
        "DA2_by_n": {pair: paired(da2, metric="test_error", treatment="MTL", control=pair, by=["n_train"]).to_dict("records")
                     for pair in ("STL", "MTL-copy")},
        "DA3_by_n": paired(da3, metric="test_error", treatment="MTL", control="STL", by=["n_train"]).to_dict("records"),
        "DA3_matched_stl_size": {**m3, "ci": list(m3["ci"]), "mtl_n": cfg.da3_primary_n, "mtl_mean_error": float(mtl3.mean())},
        "best_epoch_by_point": runs.groupby(["part", "noise", "n_train", "condition"])["best_epoch"]
                                   .agg(["median", "mean"]).reset_index().to_dict("records"),
    }
    figure = plot(runs, noise_sweep, n_sweep, da2, da3, primary, by_n, matched, m3, cfg, outdir)
    tried = constructions_tried(PILOT_V1, PILOT_V2, {
        "construction": "fixed lr 0.5 (DA3 1.0), 1000/2000-epoch budget, no patience; DA2 was T = F∧x6, T' = F∨x7 "
                        "(really blocking with an easy F)",
        "result": "DA1 −0.021 [−0.026, −0.015]; DA1b slope −0.005; DA1c slope +0.011; DA2 −0.002; DA3 −0.047, n = 200"},
        version=VERSION, train=[cfg.train, cfg.da3_train])
    return Findings(claims=claims, constructions_tried=tried, tables=tables, figures=[figure], superseded=SUPERSEDED)


# -- figure -------------------------------------------------------------------------------------

STYLE = {"STL-untuned": ("STL, untuned rate", plots.PALETTE["STL"], "s", ":"),
         "STL": ("STL, tuned", plots.PALETTE["STL"], "o", "-"),
         "STL-h2": ("STL, tuned, hidden rate ×2", "#17becf", "D", "-"),
         "MTL-same-noise": ("MTL, T' = T's noisy labels", "#ff7f0e", "^", "--"),
         "MTL-copy": ("MTL, T' = copy of T", "#ff7f0e", "^", "--"),
         "MTL-untuned": ("MTL, untuned rate", plots.PALETTE["MTL"], "s", ":"),
         "MTL": ("MTL, tuned", plots.PALETTE["MTL"], "o", "-")}


def lines(ax, df, x, conds, log=False, scale=0.01):
    means = group_means(df, metric="test_error", by=["condition", x])
    present = [c for c in conds if (means["condition"] == c).any()]
    for i, c in enumerate(present):
        m = means[means["condition"] == c]
        label, color, marker, ls = STYLE[c]
        off = (i - (len(present) - 1) / 2) * scale
        xs = m[x] * (2 ** off) if log else m[x] + off
        plots.errorbars(ax, xs, m["mean"], m["ci_low"], m["ci_high"], label=label, color=color, marker=marker,
                        linestyle=ls)
    if log:
        ax.set_xscale("log", base=2)
        ticks = sorted(df[x].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()


def rate_label(rate: float) -> str:
    """A learning rate as a short tick label: 1/128 rather than 0.0078125."""
    return f"1/{1 / rate:g}" if 0 < rate < 1 and float(1 / rate).is_integer() else f"{rate:g}"


def plot(runs, noise_sweep, n_sweep, da2, da3, primary, by_n, matched, m3, cfg: Config, outdir: Path) -> str:
    fig, axes = plots.new_figure(ncols=2, nrows=4, width=5.0, height=3.4)   # two columns: readable at page width
    panels = axes.ravel()
    ax = panels[0]
    lines(ax, noise_sweep, "noise", ["STL-untuned", "STL", "STL-h2", "MTL-same-noise", "MTL-untuned", "MTL"], scale=0.004)
    ax.set(xlabel="label-flip probability on T and T'", ylabel="T test error (clean rows)",
           title=f"DA1 statistical amplification, n={cfg.da1_primary_n}")
    ax.legend(fontsize=7.5)
    ax = panels[1]
    for i, (a, b, label, color) in enumerate([("MTL", "MTL-same-noise", "MTL − same-noise MTL (DA1s, DA1b)", "k"),
                                              ("MTL", "STL", "MTL − tuned STL (DA1t)", "grey")]):
        d = paired(noise_sweep, metric="test_error", treatment=a, control=b, by=["noise"])
        plots.errorbars(ax, d["noise"] + (i - 0.5) * 0.006, d["diff"], d["ci_low"], d["ci_high"], label=label,
                        color=color, marker="s")
    ax.axhline(0, color="grey", lw=1, ls=":")
    ax.set(xlabel="label-flip probability on T and T'", ylabel="paired difference in T test error",
           title="DA1/DA1b: what independent noise adds")
    ax.legend(fontsize=7.5)
    ax = panels[2]
    lines(ax, n_sweep, "n_train", ["STL", "MTL-same-noise", "MTL"], log=True, scale=0.05)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="training-set size (rows)", ylabel="T test error (clean rows)",
           title=f"DA1c: sizes at noise {cfg.primary_noise}")
    ax.legend(fontsize=7.5)
    ax = panels[3]
    for i, (pair, label, color) in enumerate([("MTL-same-noise", "MTL − same-noise MTL (DA1c)", "k"),
                                              ("STL", "MTL − tuned STL", "grey")]):
        d = by_n[pair]
        plots.errorbars(ax, d["n_train"] * 2 ** ((i - 0.5) * 0.08), d["diff"], d["ci_low"], d["ci_high"], label=label,
                        color=color, marker="s")
    ax.axhspan(-cfg.da1c_margin, cfg.da1c_margin, color="green", alpha=0.12, label=f"equivalence margin ±{cfg.da1c_margin}")
    ax.axhline(0, color="grey", lw=1, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(by_n["STL"]["n_train"]), [str(int(n)) for n in sorted(by_n["STL"]["n_train"])])
    ax.minorticks_off()
    ax.set(xlabel="training-set size (rows)", ylabel="paired difference in T test error", title="DA1c: benefit vs size")
    ax.legend(fontsize=7.5)
    ax = panels[4]
    lines(ax, da2, "n_train", ["STL", "MTL-copy", "MTL"], log=True, scale=0.05)
    ax.set(xlabel="training-set size (rows)", ylabel="T test error", title="DA2 read-outs T=F⊕x6, T'=F⊕x7")
    ax.legend(fontsize=7.5)
    ax = panels[5]
    lines(ax, da3, "n_train", ["STL-untuned", "STL", "MTL-untuned", "MTL"], log=True, scale=0.05)
    if np.isfinite(m3["size"]):
        mtl_mean = float(at(da3, condition="MTL", n_train=cfg.da3_primary_n)["test_error"].mean())
        ax.plot([cfg.da3_primary_n, m3["size"]], [mtl_mean, mtl_mean], color="grey", ls=":", lw=1.5)
        ax.annotate(f"tuned STL needs n≈{m3['size']:.0f}", (m3["size"], mtl_mean), fontsize=7, xytext=(-40, 8),
                    textcoords="offset points")
    ax.set(xlabel="training-set size (rows)", ylabel="T test error", title="DA3 blocking T=A∨F, T'=¬A∨F")
    ax.legend(fontsize=7.5)
    ax = panels[6]
    pairs = [("MTL", "STL", "tuned (DA5)"), ("MTL-untuned", "STL-untuned", "untuned, lr 0.5 (DA5u)")]
    for i, (a, b, _label) in enumerate(pairs):
        d = paired(primary, metric="log2_best_epoch", treatment=a, control=b).iloc[0]
        ax.errorbar([i], [2 ** d["diff"]], yerr=[[2 ** d["diff"] - 2 ** d["ci_low"]], [2 ** d["ci_high"] - 2 ** d["diff"]]],
                    fmt="o", color="k", capsize=4)
    ax.axhline(1, color="grey", lw=1, ls=":")
    ax.set_xticks(range(len(pairs)), [p[2] for p in pairs])
    ax.set_xlim(-0.5, len(pairs) - 0.5)
    ax.set(ylabel="best epoch MTL / STL (geometric mean)", title="DA5: epochs to best halt error, DA1 primary point")
    ax = panels[7]
    grid = sorted(cfg.train.lr * m for m in cfg.train.lr_grid)
    width = 0.27
    for j, cond in enumerate(["STL", "MTL", "MTL-same-noise"]):
        chosen = primary[primary["condition"] == cond]["lr"].round(10)
        counts = [int((chosen == round(g, 10)).sum()) for g in grid]
        ax.bar(np.arange(len(grid)) + (j - 1) * width, counts, width, color=STYLE[cond][1], label=STYLE[cond][0])
    ax.set_xticks(range(len(grid)), [rate_label(g) for g in grid])
    ax.set(xlabel="learning rate chosen on the halt set", ylabel="seeds", title="DA1 primary point: chosen rates")
    ax.legend(fontsize=7.5)
    n_seeds = int(runs.groupby(["part", "n_train", "noise", "condition"])["seed"].nunique().min())
    plots.caption(fig, f"{n_seeds} seeds per point. Error bars: 95% t-intervals over seeds (errors) and 95% paired-bootstrap "
                       "CIs (differences, ratios). STL: loss on T only; MTL: T and T'; tuned: learning rate chosen per seed "
                       "on the halt set from one grid; untuned: version 1's single rate. Patience stopping; T scored at its "
                       "best-halt snapshot on 1000 clean rows. DA1: F=(x0∧x1)∨(x2∧x3)∨(x4∧x5); DA3: F=parity(x1..x4).")
    return plots.save(fig, outdir / "amplification.png")


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES, version=VERSION,
                        make_units=make_units, analyse=analyse)

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
