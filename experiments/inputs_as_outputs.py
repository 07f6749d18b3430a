"""Some inputs work better as outputs: a feature used as an extra output beats the same feature as an input.

Claims (C97 §4.9, Table 6; CS97 Table 1 and Fig. 2a; SOURCES.md):
- IO1: on CS97's F1 problem, STD+OUT (F2 as an extra output) has lower test RMSE than STD.
- IO1b: STD+IN (F2 as an extra input) is about as good as STD.
- IO2 (noisy features, CS97 Fig. 2a): STD+IN helps at low noise (IO2a) and hurts at high noise
  (IO2b); STD+OUT never hurts (IO2c) and helps less than STD+IN at low noise (IO2d).

Construction (fixed before the full run; CS97's protocol where it is published):
- A, B ~ U[−5, 5]; each enters as the 10 bits of its bin index (1024 bins): 20 inputs.
  F1 = σ(A + B) (main task), F2 = σ(A − B) (``mtlmech.problems.inputs_as_outputs``).
- STD: 20-16-1 on F1. STD+IN: 21-16-1, F2 appended as a 21st real input. STD+OUT: 20-16-2, F1 and
  F2 outputs; F1 is early-stopped, evaluated and reported on its own output only (per-task
  snapshots), so F2 never enters F1's stopping choice. STD is trained as the STD+OUT net with loss on
  F1 alone (its F2 output carries no gradient), so STD and STD+OUT start from the same weights.
- Every trial draws its own 50 training, 1000 halt and 1000 test rows; all three conditions use the
  same rows (STD+IN in a separate ``train_conditions`` call fed the same rows via ``splits_for``).
- Sigmoid hidden and output units, squared error, full-batch (per-epoch) SGD lr 2.0, momentum 0.9,
  3000 epochs, halt MSE checked every 10 epochs; test RMSE of F1 at F1's best-halt snapshot.
  (The learning rate and epoch cap were chosen from STD-only pilot runs; CS97 publishes neither.)
- 1000 trials (full profile); the first 50 are the published-size replication.
- Noisy variant: the extra information is EF(A) = A + s·U[−1, 1] and EF(B) = B + s·U[−1, 1]
  (two features, mapped affinely from [−5−s, 5+s] onto [0, 1]), as two extra inputs (STD+IN) or two
  extra outputs (STD+OUT); s ∈ {0, 0.5, 1, 2, 4, 6, 8, 10}; 256 hidden units; same sizes; lr 0.5,
  1500 epochs, halt checked every 25 epochs; every trial's rows and noise draws are shared by all s
  and conditions (STD does not depend on s and is trained once per trial); 30 trials (seeds 0–29;
  set to fit the time budget before any full-run result was seen).

Measurement: F1 test RMSE per trial and condition.
Tests (pre-registered; α = 0.01, Holm over the directional claims by the driver):
- IO1: one-sided Wilcoxon signed-rank, STD+OUT − STD < 0 over all trials; effect = mean paired
  difference, 95 % paired-bootstrap CI. The 50-trial subset and a paired t-test are reported beside
  it, with C97 Table 6 (0.0648 / 0.0647 / 0.0631) and CS97 (0.01348 / 0.01347 / 0.01331).
- IO1b: relative difference (STD+IN − STD) / mean STD: replicated if its 95 % bootstrap CI lies
  within ±1.3 % (half the published 2.6 % STD+OUT gain), not replicated if it lies wholly outside.
- IO2a: STD+IN − STD < 0 at s = 0; IO2b: STD+IN − STD > 0 at s = 10; IO2d: STD+OUT − STD+IN > 0 at
  s = 0 (one-sided Wilcoxon each).
- IO2c: at every s, the 95 % bootstrap CI of (STD+OUT − STD) / mean STD: replicated if every upper
  bound is below +1 %; not replicated if some lower bound is above 0 (significant harm); else
  inconclusive.
- Crossing point: the smallest s at which the mean STD+IN − STD curve turns from negative to positive
  (linear interpolation), with a 95 % bootstrap CI over trials.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from mtlmech import plots
from mtlmech.analysis import group_means, paired, paired_claim
from mtlmech.cli import RunContext
from mtlmech.experiment import Experiment, Findings, unit_key
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.runner import Unit
from mtlmech.seeding import numpy_rng
from mtlmech.stats import ClaimResult, combine_verdicts, paired_bootstrap_ci, verdict_band
from mtlmech.tasks import Splits, make_problem
from mtlmech.training import TrainSpec

NAME = "inputs_as_outputs"
VERSION = 1

PUBLISHED = {"C97 Table 6": {"STD": 0.0648, "STD+IN": 0.0647, "STD+OUT": 0.0631},
             "CS97 Table 1": {"STD": 0.01348, "STD+IN": 0.01347, "STD+OUT": 0.01331}}
CONDITIONS = ("STD", "STD+IN", "STD+OUT")
IN_BAND = 0.013      # IO1b: |relative difference| bound (half the published 2.6 % gain)
HARM_BOUND = 0.01    # IO2c: STD+OUT "never hurts" = every CI upper bound below +1 %


@dataclass(frozen=True)
class Config:
    bits: int = 10
    n_train: int = 50
    n_halt: int = 1000
    n_test: int = 1000
    hidden: int = 16
    lr: float = 2.0
    momentum: float = 0.9
    epochs: int = 3000
    eval_every: int = 10
    published_trials: int = field(default=50, metadata={"help": "the first N trials form the published-size run"})
    noise_scales: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0)
    noisy_trials: int = field(default=30, metadata={"help": "trials (seeds 0..N-1) of the noisy-feature variant"})
    noisy_hidden: int = 256
    noisy_lr: float = 0.5
    noisy_epochs: int = 1500
    noisy_eval_every: int = 25

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_halt, self.n_test, self.hidden, self.noisy_hidden, self.bits) < 1:
            raise ValueError("sizes, --bits and hidden sizes must be ≥ 1")
        if self.published_trials < 2 or self.noisy_trials < 2:
            raise ValueError("--published-trials and --noisy-trials must be ≥ 2")
        if not self.noise_scales or min(self.noise_scales) != 0 or sorted(self.noise_scales) != list(self.noise_scales):
            raise ValueError("--noise-scales must be increasing and start at 0 (IO2a is tested at s = 0)")


PROFILES = {
    "quick": dict(seeds=50, epochs=1000, published_trials=50, noisy_trials=8, noise_scales=(0.0, 2.0, 10.0),
                  noisy_hidden=64, noisy_epochs=500),
    "full": dict(seeds=1000),
}


def problem(cfg: Config, variant: str, extra: str = "F2", noise: float = 0.0):
    return make_problem("inputs_as_outputs", variant=variant, extra=extra, noise=noise, bits=cfg.bits)


def draw_rows(prob, seed: int, *, cfg: Config, stream: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This trial's raw rows (train, halt, test): one draw shared by every condition and noise scale."""
    rng = numpy_rng(NAME, VERSION, stream, seed, "data")
    return tuple(prob.inputs.sample(rng, n) for n in (cfg.n_train, cfg.n_halt, cfg.n_test))


def splits_on(prob, rows) -> Splits:
    return Splits(*(prob.rows_from(z) for z in rows))


def train_and_score(prob, conditions, seeds, *, rows: dict, key: tuple, hidden: int, spec: TrainSpec,
                    device: str, **labels) -> dict:
    trained = train_conditions(prob, conditions, seeds, key=key, n_train=0, n_halt=0, n_test=0,
                               net=dict(hidden=(hidden,)), train_spec=spec, device=device,
                               splits_for=lambda s: splits_on(prob, rows[s]))
    out = score_rows(trained, stopping="per_task", **labels)
    for rec in out.values():
        for row in rec["rows"]:
            row["test_rmse"] = float(np.sqrt(row["test_mse"]))
    return out


def merge(*parts: dict) -> dict:
    out: dict[int, dict] = {}
    for part in parts:
        for seed, rec in part.items():
            out.setdefault(seed, {"rows": []})["rows"] += rec["rows"]
    return out


def run_f1(seeds: list[int], *, cfg: Config, device: str) -> dict:
    out_p, in_p = problem(cfg, "out"), problem(cfg, "in")
    rows = {s: draw_rows(out_p, s, cfg=cfg, stream="F1") for s in seeds}
    spec = TrainSpec(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum, eval_every=cfg.eval_every)
    common = dict(rows=rows, key=(NAME, VERSION, "F1"), hidden=cfg.hidden, spec=spec, device=device,
                  study="F1", noise=0.0)
    return merge(train_and_score(out_p, [Condition("STD", ("F1",)), Condition("STD+OUT", ("F1", "F2"), report=("F1",))],
                                 seeds, **common),
                 train_and_score(in_p, [Condition("STD+IN", ("F1",))], seeds, **common))


def run_noisy(seeds: list[int], *, cfg: Config, noise: float | None, device: str) -> dict:
    """``noise=None``: STD (independent of s); otherwise STD+IN and STD+OUT at noise scale ``noise``."""
    active = [s for s in seeds if s < cfg.noisy_trials]
    result = {s: {"rows": []} for s in seeds}
    if not active:
        return result
    out_p = problem(cfg, "out", "EF", noise or 0.0)
    rows = {s: draw_rows(out_p, s, cfg=cfg, stream="EF") for s in active}
    spec = TrainSpec(epochs=cfg.noisy_epochs, lr=cfg.noisy_lr, momentum=cfg.momentum, eval_every=cfg.noisy_eval_every)
    common = dict(rows=rows, key=(NAME, VERSION, "EF"), hidden=cfg.noisy_hidden, spec=spec, device=device, study="EF")
    if noise is None:
        return result | train_and_score(out_p, [Condition("STD", ("F1",))], active, noise=float("nan"), **common)
    return result | merge(
        train_and_score(out_p, [Condition("STD+OUT", ("F1", "EF(A)", "EF(B)"), report=("F1",))], active,
                        noise=noise, **common),
        train_and_score(problem(cfg, "in", "EF", noise), [Condition("STD+IN", ("F1",))], active, noise=noise, **common))


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    device = run.device  # version-1 cache keys and streams (re-registration adds run.stream)
    problem(cfg, "out"), problem(cfg, "in")
    f1_fields = ("bits", "n_train", "n_halt", "n_test", "hidden", "lr", "momentum", "epochs", "eval_every")
    noisy_fields = ("bits", "n_train", "n_halt", "n_test", "momentum", "noisy_trials", "noisy_hidden", "noisy_lr",
                    "noisy_epochs", "noisy_eval_every")
    all_fields = set(Config.__dataclass_fields__)
    units = [Unit(key=unit_key(NAME, VERSION, cfg, device, exclude=tuple(all_fields - set(f1_fields)), study="F1"),
                  label="F1", compute=partial(run_f1, cfg=cfg, device=device))]
    for noise in (None, *cfg.noise_scales):
        units.append(Unit(key=unit_key(NAME, VERSION, cfg, device, exclude=tuple(all_fields - set(noisy_fields)),
                                       study="EF", noise=noise),
                          label=f"EF s={noise}", compute=partial(run_noisy, cfg=cfg, noise=noise, device=device)))
    return units


def comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """Paired differences of test RMSE for the three condition pairs (bootstrap CI, Wilcoxon, t-test)."""
    out = []
    for treatment, control in (("STD+OUT", "STD"), ("STD+IN", "STD"), ("STD+OUT", "STD+IN")):
        r = paired(df, metric="test_rmse", treatment=treatment, control=control).iloc[0].to_dict()
        wide = df.pivot_table(index="seed", columns="condition", values="test_rmse", aggfunc="first")
        t = sps.ttest_rel(wide[treatment], wide[control])
        rel = paired_bootstrap_ci(wide[treatment] / wide[control].mean(), wide[control] / wide[control].mean())
        out.append({"comparison": f"{treatment} − {control}", **r, "p_ttest_two_sided": float(t.pvalue),
                    "rel_diff": rel[0], "rel_ci_low": rel[1], "rel_ci_high": rel[2]})
    return pd.DataFrame(out)


def crossing(diff_curves: np.ndarray, scales: np.ndarray) -> float:
    """Smallest s where the mean curve turns from < 0 to ≥ 0 (linear interpolation); nan if never."""
    m = diff_curves.mean(axis=0)
    for k in range(1, len(m)):
        if m[k - 1] < 0 <= m[k]:
            return float(scales[k - 1] + (scales[k] - scales[k - 1]) * (-m[k - 1]) / (m[k] - m[k - 1]))
    return float("nan")


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    f1 = runs[runs["study"] == "F1"]
    n_all = int(f1["seed"].nunique())
    subsets = {"published_size": f1[f1["seed"] < cfg.published_trials], "all_trials": f1}
    table, comps = [], {}
    for label, df in subsets.items():
        means = group_means(df, metric="test_rmse", by=["condition"]).set_index("condition")
        comps[label] = comparisons(df)
        for cond in CONDITIONS:
            table.append({"trials": label, "n": int(means.loc[cond, "n"]), "condition": cond,
                          "ours_rmse": means.loc[cond, "mean"], "ours_ci": [means.loc[cond, "ci_low"], means.loc[cond, "ci_high"]],
                          **{src: vals[cond] for src, vals in PUBLISHED.items()},
                          "frac_stopped_at_cap": float((df[df["condition"] == cond]["best_epoch"] == cfg.epochs).mean()),
                          "n_diverged": int(df[df["condition"] == cond]["diverged"].sum())})
    main = comps["all_trials"].set_index("comparison")
    out_std, in_std = main.loc["STD+OUT − STD"], main.loc["STD+IN − STD"]
    means_all = {r["condition"]: r["ours_rmse"] for r in table if r["trials"] == "all_trials"}
    ordering = " > ".join(sorted(CONDITIONS, key=lambda c: -means_all[c]))
    gain = {src: (v["STD"] - v["STD+OUT"]) / v["STD"] for src, v in PUBLISHED.items()}
    ours_gain = -float(out_std["rel_diff"]), -float(out_std["rel_ci_high"]), -float(out_std["rel_ci_low"])

    claims = [
        paired_claim(out_std, id="IO1", statement="F1: STD+OUT (F2 as extra output) has lower test RMSE than STD",
                     source="C97 §4.9 Table 6; CS97 Table 1", direction="less", figure=f"{NAME}/f1_table.png",
                     test=f"one-sided Wilcoxon signed-rank, paired STD+OUT − STD test RMSE over {n_all} trials; "
                          "95% paired bootstrap CI",
                     relative_gain=ours_gain[0], relative_gain_ci=ours_gain[1:], published_relative_gain=gain),
        ClaimResult(id="IO1b", statement="F1: STD+IN (F2 as extra input) is about as good as STD",
                    source="C97 §4.9 Table 6; CS97 Table 1",
                    test=f"band: 95% bootstrap CI of (STD+IN − STD)/mean STD within ±{IN_BAND:.1%}",
                    effect=float(in_std["rel_diff"]), ci=(float(in_std["rel_ci_low"]), float(in_std["rel_ci_high"])),
                    p_value=None, n=int(in_std["n"]),
                    verdict=verdict_band((float(in_std["rel_ci_low"]), float(in_std["rel_ci_high"])), -IN_BAND, IN_BAND),
                    figure=f"{NAME}/f1_table.png",
                    details={"diff": float(in_std["diff"]), "p_two_sided_wilcoxon": min(1.0, 2 * min(in_std["p_less"], in_std["p_greater"]))}),
    ]

    # -- noisy variant ----------------------------------------------------------------------------
    ef = runs[runs["study"] == "EF"]
    std = ef[ef["condition"] == "STD"].drop(columns="noise")
    scales = np.array(sorted(ef["noise"].dropna().unique()))
    by_noise = pd.concat([ef[ef["condition"] != "STD"], *[std.assign(noise=s) for s in scales]], ignore_index=True)
    curves = group_means(by_noise, metric="test_rmse", by=["condition", "noise"])
    noisy_tables = {pair: paired(by_noise, metric="test_rmse", treatment=pair[0], control=pair[1], by=["noise"])
                    for pair in (("STD+IN", "STD"), ("STD+OUT", "STD"), ("STD+OUT", "STD+IN"))}
    wide = by_noise.pivot_table(index="seed", columns=["condition", "noise"], values="test_rmse", aggfunc="first")
    std_mean = wide["STD"].mean()
    harm_rows = []
    for s in scales:
        m, lo, hi = paired_bootstrap_ci(wide[("STD+OUT", s)] / std_mean[s], wide[("STD", s)] / std_mean[s])
        harm_rows.append({"noise": float(s), "rel_diff": m, "ci_low": lo, "ci_high": hi})
    harm = pd.DataFrame(harm_rows)
    io2c_parts = ["not replicated" if r["ci_low"] > 0 else "replicated" if r["ci_high"] < HARM_BOUND else "inconclusive"
                  for _, r in harm.iterrows()]
    in_diff = (wide["STD+IN"] - wide["STD"]).to_numpy()
    cross = crossing(in_diff, scales)
    rng = np.random.default_rng(0)
    boot = np.array([crossing(in_diff[rng.integers(0, len(in_diff), len(in_diff))], scales) for _ in range(2000)])
    cross_ci = (float(np.nanquantile(boot, 0.025)), float(np.nanquantile(boot, 0.975))) if np.isfinite(boot).any() else (float("nan"),) * 2
    n_noisy = int(wide.shape[0])

    def at(pair, s):
        return noisy_tables[pair].set_index("noise").loc[s]

    lo_in, hi_in, lo_out_in = at(("STD+IN", "STD"), scales[0]), at(("STD+IN", "STD"), scales[-1]), at(("STD+OUT", "STD+IN"), scales[0])
    fig_noisy = f"{NAME}/noisy_features.png"
    claims += [
        paired_claim(lo_in, id="IO2a", statement="noisy features: STD+IN helps at low noise (s = 0)", source="CS97 Fig. 2a",
                     test="one-sided Wilcoxon, paired STD+IN − STD test RMSE at s = 0; 95% paired bootstrap CI",
                     direction="less", figure=fig_noisy),
        paired_claim(hi_in, id="IO2b", statement=f"noisy features: STD+IN hurts at high noise (s = {scales[-1]:g})",
                     source="CS97 Fig. 2a", direction="greater", figure=fig_noisy,
                     test=f"one-sided Wilcoxon, paired STD+IN − STD test RMSE at s = {scales[-1]:g}; 95% paired bootstrap CI",
                     crossing_s=cross, crossing_ci=cross_ci, crossing_frac_bootstrap_none=float(np.isnan(boot).mean())),
        ClaimResult(id="IO2c", statement="noisy features: STD+OUT never hurts (at any noise scale)", source="CS97 Fig. 2a",
                    test=f"per s: 95% bootstrap CI of (STD+OUT − STD)/mean STD; replicated if every upper bound < "
                         f"+{HARM_BOUND:.0%}, not replicated if any lower bound > 0; effect = worst (largest) relative difference",
                    effect=float(harm["rel_diff"].max()),
                    ci=(float(harm.loc[harm["rel_diff"].idxmax(), "ci_low"]), float(harm.loc[harm["rel_diff"].idxmax(), "ci_high"])),
                    p_value=None, n=n_noisy, verdict=combine_verdicts(io2c_parts), figure=fig_noisy,
                    details={"per_noise": harm.to_dict(orient="records"), "per_noise_verdicts": io2c_parts}),
        paired_claim(lo_out_in, id="IO2d", statement="noisy features: at low noise STD+OUT helps less than STD+IN",
                     source="CS97 Fig. 2a", direction="greater", figure=fig_noisy,
                     test="one-sided Wilcoxon, paired STD+OUT − STD+IN test RMSE at s = 0 (> 0); 95% paired bootstrap CI"),
    ]

    # -- figures ----------------------------------------------------------------------------------
    colors = {"STD": "#1f77b4", "STD+IN": "#ff7f0e", "STD+OUT": "#d62728"}
    fig, axes = plots.new_figure(ncols=2, width=4.6, height=3.6)
    ax = axes[0, 0]
    for i, (label, df) in enumerate(subsets.items()):
        rows = [r for r in table if r["trials"] == label]
        for j, r in enumerate(rows):
            x = i * 4 + j
            ax.bar(x, r["ours_rmse"], color=colors[r["condition"]], alpha=0.8, label=r["condition"] if i == 0 else None)
            ax.errorbar(x, r["ours_rmse"], yerr=[[r["ours_rmse"] - r["ours_ci"][0]], [r["ours_ci"][1] - r["ours_rmse"]]],
                        color="k", capsize=3)
    for j, cond in enumerate(CONDITIONS):
        ax.plot(8 + j, PUBLISHED["C97 Table 6"][cond], marker="s", color=colors[cond], ls="none", ms=8)
    ax.set_xticks([1, 5, 9], [f"ours, {cfg.published_trials} trials", f"ours, {n_all} trials", "C97 Table 6"])
    ax.set(ylabel="F1 test RMSE", title="F1 = σ(A+B): STD / STD+IN / STD+OUT")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    comp = comps["all_trials"]
    ax.errorbar(np.arange(3), comp["rel_diff"] * 100, yerr=[(comp["rel_diff"] - comp["rel_ci_low"]) * 100,
                (comp["rel_ci_high"] - comp["rel_diff"]) * 100], marker="o", ls="none", color="k", capsize=3, label="ours")
    pub = PUBLISHED["C97 Table 6"]
    pub_rel = [(pub["STD+OUT"] - pub["STD"]) / pub["STD"], (pub["STD+IN"] - pub["STD"]) / pub["STD"],
               (pub["STD+OUT"] - pub["STD+IN"]) / pub["STD"]]
    ax.plot(np.arange(3), np.array(pub_rel) * 100, marker="s", ls="none", mfc="none", color="#d62728", label="C97 Table 6")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(3), comp["comparison"], fontsize=8)
    ax.set(ylabel="paired difference (% of mean STD RMSE)", title=f"paired differences, {n_all} trials")
    ax.legend(fontsize=7)
    plots.caption(fig, f"Bars: mean F1 test RMSE with 95% t-intervals over trials; right: mean paired difference with 95% "
                       f"paired-bootstrap CI. Each trial: fresh 50 train / 1000 halt / 1000 test rows shared by the three nets; "
                       f"{cfg.hidden} hidden units, full-batch SGD lr {cfg.lr}, {cfg.epochs} epochs, early stopping on F1's halt MSE.")
    plots.save(fig, outdir / "f1_table.png")

    fig, axes = plots.new_figure(ncols=2, width=4.6, height=3.6)
    ax = axes[0, 0]
    for i, cond in enumerate(CONDITIONS):
        c = curves[curves["condition"] == cond]
        plots.errorbars(ax, c["noise"], c["mean"], c["ci_low"], c["ci_high"], label=cond, color=colors[cond], offset=(i - 1) * 0.08)
    ax.set(xlabel="noise scale s (EF = value + s·U[−1,1])", ylabel="F1 test RMSE", title=f"noisy extra features ({n_noisy} trials)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for i, pair in enumerate((("STD+IN", "STD"), ("STD+OUT", "STD"))):
        t = noisy_tables[pair]
        plots.errorbars(ax, t["noise"], t["diff"], t["ci_low"], t["ci_high"], label=f"{pair[0]} − {pair[1]}",
                        color=colors[pair[0]], offset=(i - 0.5) * 0.08)
    ax.axhline(0, color="grey", lw=0.8)
    if np.isfinite(cross):
        ax.axvline(cross, color="grey", ls=":", lw=1)
        ax.annotate(f"crossing s ≈ {cross:.2f}", (cross, 0), textcoords="offset points", xytext=(4, 8), fontsize=7)
    ax.set(xlabel="noise scale s", ylabel="paired difference in F1 test RMSE", title="vs STD (below 0: helps)")
    ax.legend(fontsize=7)
    plots.caption(fig, f"Left: mean F1 test RMSE with 95% t-intervals over trials; right: mean paired difference with 95% "
                       f"paired-bootstrap CI. {cfg.noisy_hidden} hidden units, lr {cfg.noisy_lr}, {cfg.noisy_epochs} epochs; "
                       "EF(A), EF(B) mapped from [−5−s, 5+s] onto [0, 1]; STD does not use them (same value at every s).")
    plots.save(fig, outdir / "noisy_features.png")

    return Findings(
        claims=claims,
        constructions_tried=[
            {"construction": "STD-only pilots (40 trials) to pick lr / epochs for F1: lr 0.5, 2, 8 at 3000 epochs",
             "result": "STD RMSE 0.074 / 0.063 / 0.105; lr 0.5–2 at 10000 epochs 0.051–0.054; the halt error was "
                       "still falling at the cap in every pilot trial"},
            {"construction": "STD-only pilots (20 trials, 256 hidden) for the noisy variant: lr 0.1, 0.5, 2 at 2000 "
                             "epochs; lr 0.5, 1 at 1000", "result": "0.098 / 0.035 / 0.64 (stuck); 0.057 / 0.30 (unstable)"},
            {"construction": "full run as pre-registered above", "version": VERSION},
            {"construction": "follow-up after seeing the full run (not judged; results/io_followup, CLI flags "
                             "--seeds 100 --epochs 10000 --lr 1.0): 100 F1 trials, 4x longer training",
             "result": "STD 0.0424, STD+IN 0.0461, STD+OUT 0.0701 mean test RMSE; STD+OUT − STD +0.028 "
                       "[+0.025, +0.031]; F1 still stopped at the epoch cap in 90 % (STD) / 97 % (STD+OUT) of trials"}],
        tables={"f1_ours_vs_paper": table,
                "f1_comparisons": {k: v.to_dict(orient="records") for k, v in comps.items()},
                "f1_ordering_by_rmse_worst_first": {"ours_all_trials": ordering, "published": "STD > STD+IN > STD+OUT",
                                "ours_relative_gain_std_out": ours_gain[0], "ours_relative_gain_ci": ours_gain[1:],
                                "published_relative_gain": gain},
                "noisy_curves": curves.to_dict(orient="records"),
                "noisy_paired": {f"{a} − {b}": t.to_dict(orient="records") for (a, b), t in noisy_tables.items()},
                "noisy_crossing": {"s": cross, "ci": cross_ci, "frac_bootstrap_no_crossing": float(np.isnan(boot).mean())}},
        figures=["f1_table.png", "noisy_features.png"])


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES,
                        make_units=make_units, analyse=analyse)

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
