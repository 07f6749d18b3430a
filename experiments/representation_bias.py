"""Representation bias (C97 §3.2.4, C95 §2.5): do tasks prefer hidden representations other tasks
prefer, and avoid the ones other tasks avoid?

Claims (CLAIMS.md): RB1a/RB1b (experiment 1), RB2a/RB2b/RB2c (experiment 2, the "tide"), RB3
(experiment 1 with unlimited data). The sources give no construction, net, run count or
classification rule; everything below is our operationalisation (see "Headline" for what pilots chose).

Construction (``mtlmech/problems/representation_bias.py`` documents each family and its reasoning):
hidden features are XORs of two bits, A = a1⊕a2, B = b1⊕b2, C = c1⊕c2, each bit one input line
(±1 times its scale). T is labelled (with A = B) on rows where A = B, T' (with A = C) on rows where
A = C; training rows come only from patterns where A = B or A = C, so only A fits both tasks while
each task alone fits equally well through either of its alternatives. Families: ``disjoint`` (knob
k = input scale of b1, b2: preference by ease), ``overlap`` (C = b1⊕c2 shares B's first bit; knob k
on b2 only, so T' alone stays indifferent: a shared substrate) and ``data`` (unit scales; knob q =
fraction of the A ≠ B rows that label T with B: preference by data).

Nets: bits → 8 sigmoid hidden units → 2 sigmoid outputs (T, T'), squared error, full-batch SGD
(lr 1.0, momentum 0.9) for 1000 epochs from U(±1/√fan_in) weights, no early stopping (the claim is
about which minimum a trained net sits in). Per seed: one training set (75 % of the trainable
patterns, drawn without replacement: 36 of 48 in disjoint/data, 18 of 24 in overlap) and one
initialisation, shared by STL-T (loss on T only), STL-T' (loss on T' only) and MTL (both): a
paired design. Training accuracy on each task's labelled rows is recorded for every run (a net "in
a minimum" should fit its training rows; runs that do not are counted, never dropped).

Measurement: score = fraction of probe patterns (all patterns where A ≠ B for T, A ≠ C for T') on
which the thresholded output agrees with A. Label (threshold 0.9, fixed before any run): A if
score ≥ 0.9, B (or C) if score ≤ 0.1, else mixed. Hidden-layer view: per output, mean |∂out/∂h_j|
over all patterns (``probes.hidden_sensitivity``); a unit is "used" by an output when its
sensitivity is ≥ 10 % of that output's largest (``probes.used_units``); "shared" units are used by
both MTL outputs.

Headline (claims RB1a–RB3), fixed after 100-seed pilots that chose the feature type and sample
(every pilot construction is listed in ``constructions_tried``) and before any full run: the
``disjoint`` family (the simplest natural reading of the sources), 8 hidden units. Experiment 1:
k = 1 (T and T' indifferent by symmetry). Experiment 2: k = 3 (pilot STL-T B-rate 0.84 at 75 %
sampling; the STL rates that justify or refute "T alone always finds B" are RB2a's numbers).
RB3: experiment 1 trained on every trainable pattern once (the largest possible sample). The other
families run at the same points (overlap: k = 1 and 3; data: q = 0 and q = 1, the only q at which
T's labels are B on all its rows) and are reported in ``tables.by_family`` with the same tests.

Tests and thresholds (α = 0.01 after Holm within the experiment; 95 % Wilson CIs):
- RB1a: STL-T A and B rates and STL-T' A and C rates each within [0.35, 0.65] (band on each CI).
- RB1b: for both tasks, MTL A-rate > 0.5 (CI above) and > the STL A-rate (one-sided Fisher exact;
  both p-values must pass; the claim's p is the larger). Effect = the smaller MTL − STL difference.
- RB2a: STL-T B-rate ≥ 0.95 (CI above) and STL-T' A and C rates within [0.35, 0.65].
- RB2b: MTL-T B-rate ≥ 0.90 (CI above).
- RB2c: MTL-T' C-rate > 0.5 (CI above) and > STL-T' C-rate (one-sided Fisher exact).
- RB3: RB1b's test on the all-patterns runs.
Holm runs over the p-values of all six claims of all three families together. Phase diagram (the
evidence for RB2c across families): T's knob from none to strong (k in 1..4, q in 0..1) × hidden
sizes {2, 4, 8, 16} for every family, trained on all trainable patterns (no sampling noise: the
regime where the sources say representation bias still acts), 100 seeds per point (the all-pattern
RB3 points, k = 1 / q = 0 at 8 hidden units, have all seeds), A/B/C/mixed rates of T and T' under
STL and MTL.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlmech import plots
from mtlmech.experiment import Experiment, Findings, unit_key
from mtlmech.nets import NetSpec, forward, init_params
from mtlmech.probes import agreement, classify, hidden_sensitivity, outputs_on, used_units
from mtlmech.problems.representation_bias import FAMILIES, TASKS, RBConstruction
from mtlmech.protocol import Condition
from mtlmech.runner import Unit
from mtlmech.seeding import numpy_rng
from mtlmech.stats import (ClaimResult, combine_verdicts, fisher_exact, holm, newcombe_diff_ci, verdict_band,
                           verdict_directional, verdict_threshold, wilson_ci)
from mtlmech.tasks import as_batch
from mtlmech.training import TrainSpec, evaluate, train

NAME = "representation_bias"
VERSION = 1  # bump when the construction changes; old cache entries are then not reused

CONDITIONS = [Condition("STL", ("T",)), Condition("STL", ("T'",)), Condition("MTL", TASKS)]
OTHER = {"T": "B", "T'": "C"}
BAND = (0.35, 0.65)


@dataclass(frozen=True)
class Config:
    headline: str = field(default="disjoint", metadata={"help": "family of the headline claims", "choices": FAMILIES})
    n_irrelevant: int = 0
    train_fraction: float = field(default=0.75, metadata={
        "help": "finite-sample runs train on this fraction of the trainable patterns (drawn without replacement)"})
    hidden: int = 8
    neutral: tuple[float, ...] = field(default=(1.0, 1.0, 0.0), metadata={
        "help": "experiment-1 knob per family (disjoint, overlap, data)"})
    strong: tuple[float, ...] = field(default=(3.0, 3.0, 1.0), metadata={
        "help": "experiment-2 knob per family (disjoint, overlap, data)"})
    scale_grid: tuple[float, ...] = field(default=(1.0, 1.5, 2.0, 3.0, 4.0), metadata={
        "help": "phase diagram: B input scales k (disjoint, overlap)"})
    q_grid: tuple[float, ...] = field(default=(0.0, 0.1, 0.25, 0.5, 1.0), metadata={
        "help": "phase diagram: exception fractions q (data)"})
    hidden_grid: tuple[int, ...] = field(default=(2, 4, 8, 16), metadata={"help": "phase diagram: hidden sizes"})
    phase_seeds: int = field(default=100, metadata={"help": "seeds per phase-diagram point (experiment points get all)"})
    lr: float = 1.0
    momentum: float = 0.9
    epochs: int = 1000
    threshold: float = field(default=0.9, metadata={"help": "label threshold on the agreement score"})
    used_fraction: float = 0.1
    n_examples: int = 16

    def __post_init__(self) -> None:
        if len(self.neutral) != len(FAMILIES) or len(self.strong) != len(FAMILIES):
            raise ValueError(f"--neutral and --strong need one value per family {FAMILIES}")
        for fam, values in (("disjoint", (*self.neutral[:2], *self.strong[:2], *self.scale_grid)),
                            ("data", (self.neutral[2], self.strong[2], *self.q_grid))):
            for v in values:
                RBConstruction(fam, v, self.n_irrelevant)   # raises on bad knobs
        if not 0 < self.train_fraction <= 1:
            raise ValueError("--train-fraction must be in (0, 1]")
        if self.hidden < 1 or min(self.hidden_grid) < 1 or self.epochs < 1 or self.phase_seeds < 1:
            raise ValueError("--hidden, --hidden-grid, --epochs and --phase-seeds must be ≥ 1")
        if not 0.5 < self.threshold <= 1:
            raise ValueError("--threshold must be in (0.5, 1]")


PROFILES = {
    "quick": dict(seeds=40, phase_seeds=40, scale_grid=(1.0, 3.0), q_grid=(0.0, 1.0), hidden_grid=(2, 8)),
    "full": dict(seeds=500),
}


def construction(cfg: Config, family: str, pref: float) -> RBConstruction:
    return RBConstruction(family, pref, cfg.n_irrelevant)


def run_seeds(seeds: list[int], *, cfg: Config, family: str, pref: float, hidden: int, all_patterns: bool,
              key: tuple, device: str, examples: bool, max_seed: int | None) -> dict:
    """Train STL-T, STL-T' and MTL for every seed in one batch; score each trained output.
    Seeds ≥ ``max_seed`` (phase-diagram-only points) are not trained and return no rows."""
    out: dict[int, dict] = {seed: {"rows": []} for seed in seeds if max_seed is not None and seed >= max_seed}
    seeds = [seed for seed in seeds if seed not in out]
    if not seeds:
        return out
    rb = construction(cfg, family, pref)
    n_trainable = int(rb.trainable(rb.all_patterns()).sum())
    spec = NetSpec(n_inputs=rb.n_inputs, n_outputs=len(TASKS), hidden=(hidden,))
    members = [(seed, c) for seed in seeds for c in CONDITIONS]
    n_train = None if all_patterns else max(1, round(cfg.train_fraction * n_trainable))
    data = {seed: rb.training_set(numpy_rng(*key, seed, "data"), n_train)
            for seed in seeds}
    batch = as_batch([data[seed] for seed, _ in members], device=device)
    params = init_params(spec, [(*key, seed) for seed, _ in members], device=device)
    weights = torch.tensor([[1.0 if t in c.tasks else 0.0 for t in TASKS] for _, c in members])
    result = train(spec, params, batch, task_weights=weights,
                   train_spec=TrainSpec(epochs=cfg.epochs, lr=cfg.lr, momentum=cfg.momentum, eval_every=cfg.epochs))
    final = result.final
    train_acc = 1 - evaluate(spec, final, batch)["error"].cpu().numpy()                  # (M, 2)
    scores = np.stack([agreement(outputs_on(spec, final, torch.as_tensor(p.x, device=device)), p.features["A"])
                       [:, k].cpu().numpy() for k, p in enumerate(rb.probe(t) for t in TASKS)], axis=1)
    everything = rb.rows(rb.all_patterns())
    x_all = torch.as_tensor(everything.x, device=device)
    sens = hidden_sensitivity(spec, final, x_all)                                         # (M, 2, H)
    used = used_units(sens, cfg.used_fraction).cpu().numpy()
    hid = forward(spec, final, x_all)[1].cpu().numpy()                                  # (M, n, H)
    signs = 2 * np.stack([everything.features[f] for f in "ABC"], axis=1) - 1
    for i, (seed, c) in enumerate(members):
        rec = out.setdefault(seed, {"rows": [], "extra": {}})
        shared = int((used[i, 0] & used[i, 1]).sum()) if c.name == "MTL" else -1
        for t in c.tasks:
            k = TASKS.index(t)
            label = str(classify(scores[i, k], first="A", second=OTHER[t], threshold=cfg.threshold))
            rec["rows"].append({"family": family, "pref": pref, "hidden": hidden, "all_patterns": all_patterns,
                                "n_train": len(data[seed]),
                                "condition": c.name, "task": t, "score_A": float(scores[i, k]), "label": label,
                                "train_acc": float(train_acc[i, k]), "fits": bool(train_acc[i, k] == 1.0),
                                "diverged": bool(result.diverged[i]), "n_used": int(used[i, k].sum()),
                                "n_shared": shared})
        if examples and c.name == "MTL" and seed < cfg.n_examples:
            h = hid[i] - hid[i].mean(axis=0)
            corr = (h.T @ signs) / np.maximum(np.linalg.norm(h, axis=0)[:, None] * np.sqrt(len(signs)), 1e-9)
            rec["extra"] = {"sensitivity": np.round(sens[i].cpu().numpy(), 4).tolist(),
                            "unit_feature_corr": np.round(corr, 3).tolist(),
                            "labels": [r["label"] for r in rec["rows"] if r["condition"] == "MTL"]}
    return out


def points(cfg: Config) -> list[dict]:
    """Every sweep point: experiments 1 and 2 (finite samples) and RB3 (all patterns) per family with
    every seed, then the phase-diagram grid (all patterns, ``phase_seeds`` seeds)."""
    pts = []
    for f, fam in enumerate(FAMILIES):
        pts.append(dict(family=fam, pref=cfg.neutral[f], hidden=cfg.hidden, all_patterns=False, examples=True, full=True))
        pts.append(dict(family=fam, pref=cfg.strong[f], hidden=cfg.hidden, all_patterns=False, examples=True, full=True))
        pts.append(dict(family=fam, pref=cfg.neutral[f], hidden=cfg.hidden, all_patterns=True, examples=False, full=True))
        for pref in (cfg.q_grid if fam == "data" else cfg.scale_grid):
            for hidden in cfg.hidden_grid:
                pts.append(dict(family=fam, pref=pref, hidden=hidden, all_patterns=True, examples=False, full=False))
    unique = {}
    for p in pts:   # a grid point equal to an experiment point is the same unit (keeps all its seeds)
        k = (p["family"], p["pref"], p["hidden"], p["all_patterns"])
        unique[k] = {**p, "full": unique[k]["full"] or p["full"]} if k in unique else p
    return list(unique.values())


def make_units(cfg: Config, device: str) -> list[Unit]:
    units = []
    exclude = ("headline", "neutral", "strong", "scale_grid", "q_grid", "hidden_grid", "hidden", "n_examples",
               "phase_seeds")
    for p in points(cfg):
        max_seed = None if p.pop("full") else cfg.phase_seeds
        key = unit_key(NAME, VERSION, cfg, device, exclude=exclude, max_seed=max_seed, **p)
        units.append(Unit(key=key, label=f"{p['family']} pref={p['pref']:g} H={p['hidden']}"
                                         f"{' all' if p['all_patterns'] else ''}",
                          compute=partial(run_seeds, cfg=cfg, key=(NAME, VERSION, p["family"], p["pref"], p["hidden"],
                                                                   p["all_patterns"]), device=device,
                                          max_seed=max_seed,
                                          **p)))
    return units


# -- analysis ---------------------------------------------------------------------------------
def rates(runs: pd.DataFrame, **where) -> dict:
    """Counts and Wilson CIs of each label (and fit / divergence counts) among the selected runs."""
    sel = runs
    for k, v in where.items():
        sel = sel[sel[k] == v]
    n = len(sel)
    out = {"n": n, "n_not_fit": int((~sel["fits"]).sum()), "n_diverged": int(sel["diverged"].sum()),
           "mean_train_acc": float(sel["train_acc"].mean()) if n else float("nan"),
           "mean_score_A": float(sel["score_A"].mean()) if n else float("nan")}
    for label in ("A", "B", "C", "mixed"):
        k = int((sel["label"] == label).sum())
        out[label] = {"k": k, "rate": k / n if n else float("nan"), "ci": list(wilson_ci(k, n))}
    return out


def outcome_table(runs: pd.DataFrame, family: str, pref: float, hidden: int, all_patterns: bool) -> dict:
    sel = runs[(runs["family"] == family) & (runs["pref"] == pref) & (runs["hidden"] == hidden)
               & (runs["all_patterns"] == all_patterns)]
    return {f"{cond} {task}": rates(sel, condition=cond, task=task) for cond in ("STL", "MTL") for task in TASKS}


def fisher_more(table: dict, label: str, task: str) -> tuple[float, float, tuple[float, float], float]:
    """MTL vs STL rate of ``label`` on ``task``: difference, one-sided p (MTL greater), Newcombe CI,
    and the opposite-direction p."""
    m, s = table[f"MTL {task}"], table[f"STL {task}"]
    args = (m[label]["k"], m["n"], s[label]["k"], s["n"])
    return (m[label]["rate"] - s[label]["rate"], fisher_exact(*args, "greater"), newcombe_diff_ci(*args),
            fisher_exact(*args, "less"))


def judge_family(exp1: dict, exp2: dict, rb3: dict) -> list[dict]:
    """Raw test parts for every claim on one family's outcome tables (verdicts after Holm)."""
    def band(table, key, label):
        return verdict_band(tuple(table[key][label]["ci"]), *BAND)

    def mtl_beats(table, label, tasks):
        parts = [fisher_more(table, label, t) for t in tasks]
        worst = min(range(len(parts)), key=lambda j: parts[j][0])
        above = [verdict_threshold(tuple(table[f"MTL {t}"][label]["ci"]), 0.5) for t in tasks]
        return dict(effect=parts[worst][0], ci=parts[worst][2], p=max(p[1] for p in parts),
                    p_opposite=min(p[3] for p in parts), extra=above,
                    details={f"{t}": {"mtl_rate": table[f"MTL {t}"][label]["rate"],
                                      "stl_rate": table[f"STL {t}"][label]["rate"], "p_fisher": p[1],
                                      "diff_ci": list(p[2]), "mtl_above_half": a}
                             for t, p, a in zip(tasks, parts, above)})

    stl_bands = lambda table: [band(table, "STL T", "A"), band(table, "STL T", "B"),
                               band(table, "STL T'", "A"), band(table, "STL T'", "C")]
    out = []
    b = stl_bands(exp1)
    out.append(dict(id="RB1a", verdict=combine_verdicts(b), effect=exp1["STL T"]["A"]["rate"] - 0.5,
                    ci=(exp1["STL T"]["A"]["ci"][0] - 0.5, exp1["STL T"]["A"]["ci"][1] - 0.5), p=None,
                    details={"bands [T:A, T:B, T':A, T':C]": b}))
    out.append(dict(id="RB1b", **mtl_beats(exp1, "A", TASKS)))
    stl_t_b = verdict_threshold(tuple(exp2["STL T"]["B"]["ci"]), 0.95)
    b2 = stl_bands(exp2)[2:]
    out.append(dict(id="RB2a", verdict=combine_verdicts([stl_t_b, *b2]), effect=exp2["STL T"]["B"]["rate"],
                    ci=tuple(exp2["STL T"]["B"]["ci"]), p=None,
                    details={"STL T B-rate >= 0.95": stl_t_b, "bands [T':A, T':C]": b2}))
    out.append(dict(id="RB2b", verdict=verdict_threshold(tuple(exp2["MTL T"]["B"]["ci"]), 0.90),
                    effect=exp2["MTL T"]["B"]["rate"], ci=tuple(exp2["MTL T"]["B"]["ci"]), p=None, details={}))
    out.append(dict(id="RB2c", **mtl_beats(exp2, "C", ("T'",))))
    out.append(dict(id="RB3", **mtl_beats(rb3, "A", TASKS)))
    return out


STATEMENTS = {
    "RB1a": ("exp. 1: alone, T finds A or B equally often; T' finds A or C equally often", "C97 §3.2.4",
             "STL label rates (T: A, B; T': A, C) each with 95% Wilson CI inside [0.35, 0.65]"),
    "RB1b": ("exp. 1: trained together both tasks usually find A", "C97 §3.2.4",
             "per task: MTL A-rate CI above 0.5 and one-sided Fisher exact MTL > STL A-rate; p = max over tasks, Holm"),
    "RB2a": ("exp. 2: alone, T always finds B; T' still has no preference", "C97 §3.2.4",
             "STL T B-rate Wilson CI above 0.95; STL T' A and C rates inside [0.35, 0.65]"),
    "RB2b": ("exp. 2: together, T still finds B", "C97 §3.2.4", "MTL T B-rate Wilson CI above 0.90"),
    "RB2c": ("exp. 2: together, T' usually finds C (the tide)", "C97 §3.2.4",
             "MTL T' C-rate CI above 0.5 and one-sided Fisher exact MTL > STL T' C-rate, Holm"),
    "RB3": ("representation bias persists with unlimited data (exp. 1 trained on all 96 trainable patterns)",
            "C95 §2.5", "RB1b's test on all-pattern training runs"),
}


def finish_verdicts(parts: list[dict]) -> None:
    """Holm over every p-value of the list, then each claim's verdict (directional part combined
    with its threshold parts)."""
    idx = [i for i, p in enumerate(parts) if p["p"] is not None]
    for i, adj in zip(idx, holm([parts[i]["p"] for i in idx])):
        p = parts[i]
        p["p_holm"] = adj
        directional = verdict_directional(adj, p["effect"], p["ci"], "greater", p["p_opposite"])
        p["verdict"] = combine_verdicts([directional, *p["extra"]])


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    neutral = dict(zip(FAMILIES, cfg.neutral))
    strong = dict(zip(FAMILIES, cfg.strong))
    tables, parts = {}, {}
    for fam in FAMILIES:
        exp1 = outcome_table(runs, fam, neutral[fam], cfg.hidden, False)
        exp2 = outcome_table(runs, fam, strong[fam], cfg.hidden, False)
        rb3 = outcome_table(runs, fam, neutral[fam], cfg.hidden, True)
        tables[fam] = {"construction_exp1": construction(cfg, fam, neutral[fam]).describe(),
                       "construction_exp2": construction(cfg, fam, strong[fam]).describe(),
                       "exp1": exp1, "exp2": exp2, "rb3_all_patterns": rb3}
        parts[fam] = judge_family(exp1, exp2, rb3)
    # Holm over the headline family's p-values together with every other family's (stricter)
    flat = [p for fam in FAMILIES for p in parts[fam]]
    finish_verdicts(flat)
    by_family = {fam: {p["id"]: {"verdict": p["verdict"], "effect": p["effect"], "ci": list(p["ci"]),
                                 "p": p["p"], "p_holm": p.get("p_holm"), "details": p.get("details", {})}
                       for p in parts[fam]} for fam in FAMILIES}
    claims = []
    for p in parts[cfg.headline]:
        statement, source, test = STATEMENTS[p["id"]]
        fig = "exp_outcomes.png"
        claims.append(ClaimResult(
            id=p["id"], statement=statement, source=source,
            test=f"{test}; family {construction(cfg, cfg.headline, strong[cfg.headline] if p['id'].startswith('RB2') else neutral[cfg.headline]).describe()}, "
                 f"{cfg.hidden} hidden units, label threshold {cfg.threshold}",
            effect=float(p["effect"]), ci=(float(p["ci"][0]), float(p["ci"][1])), p_value=p["p"],
            n=int(tables[cfg.headline]["exp1"]["STL T"]["n"]), verdict=p["verdict"], figure=f"{NAME}/{fig}",
            details={**p.get("details", {}), "holm_family": "all claims of all three families",
                     "p_holm_all_families": p.get("p_holm"),
                     "p_opposite": p.get("p_opposite")}))
    phase = phase_table(runs)
    figures = [plot_outcomes(tables, cfg, outdir), plot_phase(phase, cfg, outdir), plot_units(extras, runs, cfg, outdir)]
    tried = [{"family": fam, "exp1": tables[fam]["construction_exp1"], "exp2": tables[fam]["construction_exp2"],
              "verdicts": {k: v["verdict"] for k, v in by_family[fam].items()},
              "rates": {exp: {cell: {lab: tables[fam][exp][cell][lab]["rate"] for lab in ("A", "B", "C", "mixed")}
                              for cell in tables[fam][exp]} for exp in ("exp1", "exp2", "rb3_all_patterns")}}
             for fam in FAMILIES]
    return Findings(claims=claims, constructions_tried=tried,
                    tables={"by_family": by_family, "outcomes": tables, "phase": phase.to_dict(orient="records")},
                    figures=figures)


def phase_table(runs: pd.DataFrame) -> pd.DataFrame:
    grid = runs[runs["all_patterns"]]
    rows = []
    for (fam, pref, hidden, cond, task), g in grid.groupby(["family", "pref", "hidden", "condition", "task"]):
        row = dict(family=fam, pref=pref, hidden=hidden, condition=cond, task=task, n=len(g),
                   fit_rate=float(g["fits"].mean()), mean_shared=float(g["n_shared"].mean()))
        for label in ("A", "B", "C", "mixed"):
            row[label] = float((g["label"] == label).mean())
        rows.append(row)
    return pd.DataFrame(rows)


# -- figures ----------------------------------------------------------------------------------
LABEL_COLORS = {"A": "#2ca02c", "B": "#ff7f0e", "C": "#9467bd", "mixed": "#bbbbbb"}


def plot_outcomes(tables: dict, cfg: Config, outdir: Path) -> str:
    fig, axes = plots.new_figure(ncols=3, nrows=2, width=4.0, height=3.2)
    cells = ["STL T", "STL T'", "MTL T", "MTL T'"]
    for col, fam in enumerate(FAMILIES):
        for row, exp in enumerate(("exp1", "exp2")):
            ax = axes[row, col]
            bottom = np.zeros(len(cells))
            for label in ("A", "B", "C", "mixed"):
                r = np.array([tables[fam][exp][c][label]["rate"] for c in cells])
                ci = np.array([tables[fam][exp][c][label]["ci"] for c in cells])
                ax.bar(range(len(cells)), r, bottom=bottom, color=LABEL_COLORS[label], label=label, width=0.7)
                centre = bottom + r
                ax.errorbar(np.arange(len(cells)) + 0.22, centre, yerr=[r - ci[:, 0], ci[:, 1] - r], fmt="none",
                            ecolor="k", capsize=2, lw=0.8) if r.any() else None
                bottom += r
            n = tables[fam][exp]["STL T"]["n"]
            ax.set_xticks(range(len(cells)), cells, fontsize=8)
            ax.set(ylim=(0, 1.02), ylabel="fraction of runs", title=f"{'exp. 1' if exp == 'exp1' else 'exp. 2'}: "
                   f"{construction(cfg, fam, (cfg.neutral if exp == 'exp1' else cfg.strong)[FAMILIES.index(fam)]).describe()}"[:60])
            ax.title.set_fontsize(8)
            ax.text(0.99, 0.01, f"n={n}/bar", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left", title="minimum", title_fontsize=7)
    plots.caption(fig, f"Outcome (label) rates per condition and task; error bars: 95% Wilson CI of each label's rate, "
                       f"drawn at the top of its segment. Label threshold {cfg.threshold} on agreement with A over "
                       f"probe patterns. {cfg.hidden} hidden units, training on {cfg.train_fraction:.0%} of the trainable patterns. "
                       f"Headline family: {cfg.headline}.")
    return plots.save(fig, outdir / "exp_outcomes.png")


def plot_phase(phase: pd.DataFrame, cfg: Config, outdir: Path) -> str:
    panels = [("STL", "T"), ("MTL", "T"), ("STL", "T'"), ("MTL", "T'")]
    hiddens = sorted(phase["hidden"].unique())
    fig, axes = plots.new_figure(ncols=len(panels), nrows=len(FAMILIES), width=3.3, height=2.6)
    styles = dict(zip(hiddens, ["-", "--", ":", "-."] * 4))
    for r, fam in enumerate(FAMILIES):
        for c, (cond, task) in enumerate(panels):
            ax = axes[r, c]
            sel = phase[(phase["family"] == fam) & (phase["condition"] == cond) & (phase["task"] == task)]
            for h in hiddens:
                s = sel[sel["hidden"] == h].sort_values("pref")
                for label in ("A", OTHER[task], "mixed"):
                    ax.plot(s["pref"], s[label], styles[h], color=LABEL_COLORS[label], marker="o", ms=2.5, lw=1.2,
                            label=f"{label}, H={h}" if (r, c) == (0, 0) or (label == "C" and (r, c) == (0, 2)) else None)
            ax.set(ylim=(-0.02, 1.02), xlabel="q (fraction of A≠B rows labelled B)" if fam == "data"
                   else "k (input scale of B)", ylabel=f"{fam}: rate", title=f"{cond} {task}")
            if fam != "data":
                ax.set_xscale("log", base=2)
    axes[0, 0].legend(fontsize=5.5, ncol=2)
    axes[0, 2].legend(fontsize=5.5, ncol=2)
    n = int(phase["n"].min())
    plots.caption(fig, f"Rates of the A, B/C and mixed minima vs T's preference knob (line style: hidden units H), "
                       f"training on all trainable patterns. "
                       f"n={n} seeds per point; 95% Wilson half-width ≤ {1.96 * 0.5 / np.sqrt(n):.3f}. "
                       "The alternatives of T' (A, C) are never scaled, so T' alone is indifferent.")
    return plots.save(fig, outdir / "phase_diagram.png")


def plot_units(extras: dict, runs: pd.DataFrame, cfg: Config, outdir: Path) -> str:
    """Hidden-unit usage of one MTL run where both tasks use A and one where they split."""
    fam = cfg.headline
    examples = []
    for unit, seeds in extras.items():
        meta = runs[runs["unit"] == unit].iloc[0]
        if meta["family"] != fam:
            continue
        for seed, ex in sorted(seeds.items(), key=lambda kv: int(kv[0])):
            examples.append((float(meta["pref"]), int(seed), ex))
    picks = []
    for want, title in ((lambda l: l == ["A", "A"], "both tasks in A"),
                        (lambda l: l[0] != "A" and l[1] != "A" or "C" in l or "B" in l, "split")):
        hit = next(((p, s, e) for p, s, e in sorted(examples, key=lambda t: (t[0], t[1])) if want(e["labels"])), None)
        picks.append((hit, title))
    fig, axes = plots.new_figure(ncols=2, width=4.6, height=3.6)
    for ax, (hit, title) in zip(axes[0], picks):
        if hit is None:
            ax.text(0.5, 0.5, f"no example run labelled '{title}'", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        pref, seed, ex = hit
        sens = np.array(ex["sensitivity"])
        sens = sens / np.maximum(sens.max(axis=1, keepdims=True), 1e-12)
        mat = np.concatenate([sens.T, np.array(ex["unit_feature_corr"])], axis=1)
        im = ax.imshow(mat, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(5), ["sens T", "sens T'", "corr A", "corr B", "corr C"], fontsize=8, rotation=30)
        ax.set_yticks(range(mat.shape[0]))
        ax.set(ylabel="hidden unit", title=f"{title}: k/q={pref:g}, seed {seed}, labels T={ex['labels'][0]}, "
                                           f"T'={ex['labels'][1]}")
        ax.title.set_fontsize(8)
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8)
    plots.caption(fig, f"MTL runs ({fam} family, {cfg.hidden} hidden units). sens: mean |∂out/∂h| over all patterns, "
                       f"scaled to the output's largest (units ≥ {cfg.used_fraction} count as used); corr: correlation "
                       f"of the unit's activation with ±A, ±B, ±C over all patterns.")
    return plots.save(fig, outdir / "hidden_units.png")


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES,
                        make_units=make_units, analyse=analyse)

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
