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

Post-hoc confirmation (added after a first full run's phase diagram, so not pre-registered; own
Holm family): experiment 2 trained on all trainable patterns, 500 fresh seeds (a separate random
stream), at disjoint k = 3, overlap k = 6 and k = 8, data q = 1, 8 hidden units, with RB2a-c's tests
(``tables.confirmation_exp2_all_patterns``, bottom row of ``exp_outcomes.png``).

Tests and thresholds (α = 0.01 after Holm within the experiment; 95 % Wilson CIs):
- RB1a: STL-T A and B rates and STL-T' A and C rates each within [0.35, 0.65] (band on each CI).
- RB1b: for both tasks, MTL A-rate > 0.5 (CI above) and > the STL A-rate (one-sided Fisher exact;
  both p-values must pass; the claim's p is the larger). Effect = the smaller MTL − STL difference.
- RB2a: STL-T B-rate ≥ 0.95 (CI above) and STL-T' A and C rates within [0.35, 0.65].
- RB2b: MTL-T B-rate ≥ 0.90 (CI above).
- RB2c: MTL-T' C-rate > 0.5 (CI above) and > STL-T' C-rate (one-sided Fisher exact).
- RB3: RB1b's test on the all-patterns runs.
Holm runs over the p-values of all six claims of all three families together. Phase diagram (the
evidence for RB2c across families): T's knob from none to strong (k in 1..8, q in 0..1) × hidden
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
from mtlmech.cli import RunContext
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
    scale_grid: tuple[float, ...] = field(default=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0), metadata={
        "help": "phase diagram: B input scales k (disjoint, overlap)"})
    q_grid: tuple[float, ...] = field(default=(0.0, 0.1, 0.25, 0.5, 1.0), metadata={
        "help": "phase diagram: exception fractions q (data)"})
    hidden_grid: tuple[int, ...] = field(default=(2, 4, 8, 16), metadata={"help": "phase diagram: hidden sizes"})
    phase_seeds: int = field(default=100, metadata={"help": "seeds per phase-diagram point (experiment points get all)"})
    confirm: tuple[str, ...] = field(default=("disjoint:3:8", "overlap:6:8", "overlap:8:8", "data:1:8"), metadata={
        "help": "post-hoc confirmation of experiment 2 on all patterns with fresh seeds: family:knob:hidden"})
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
        for spec in self.confirm:
            parts = spec.split(":")
            if len(parts) != 3 or parts[0] not in FAMILIES:
                raise ValueError(f"--confirm entries are family:knob:hidden, got {spec!r}")
            RBConstruction(parts[0], float(parts[1]), self.n_irrelevant)
            if int(parts[2]) < 1:
                raise ValueError(f"--confirm {spec!r}: hidden must be ≥ 1")
        if not 0 < self.train_fraction <= 1:
            raise ValueError("--train-fraction must be in (0, 1]")
        if self.hidden < 1 or min(self.hidden_grid) < 1 or self.epochs < 1 or self.phase_seeds < 1:
            raise ValueError("--hidden, --hidden-grid, --epochs and --phase-seeds must be ≥ 1")
        if not 0.5 < self.threshold <= 1:
            raise ValueError("--threshold must be in (0.5, 1]")


PROFILES = {
    "quick": dict(seeds=40, phase_seeds=40, scale_grid=(1.0, 3.0), q_grid=(0.0, 1.0), hidden_grid=(2, 8),
                  confirm=("overlap:8:8",)),
    "full": dict(seeds=500),
}


def construction(cfg: Config, family: str, pref: float) -> RBConstruction:
    return RBConstruction(family, pref, cfg.n_irrelevant)


def run_seeds(seeds: list[int], *, cfg: Config, family: str, pref: float, hidden: int, all_patterns: bool,
              replicate: int, key: tuple, device: str, examples: bool, max_seed: int | None) -> dict:
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
                                "replicate": replicate,
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
    every seed, then the phase-diagram grid (all patterns, ``phase_seeds`` seeds), then the
    confirmation points (replicate 1: all patterns, every seed, fresh data/initial-weight streams)."""
    pts = []
    for f, fam in enumerate(FAMILIES):
        pts.append(dict(family=fam, pref=cfg.neutral[f], hidden=cfg.hidden, all_patterns=False, examples=True, full=True))
        pts.append(dict(family=fam, pref=cfg.strong[f], hidden=cfg.hidden, all_patterns=False, examples=True, full=True))
        pts.append(dict(family=fam, pref=cfg.neutral[f], hidden=cfg.hidden, all_patterns=True, examples=False, full=True))
        for pref in (cfg.q_grid if fam == "data" else cfg.scale_grid):
            for hidden in cfg.hidden_grid:
                pts.append(dict(family=fam, pref=pref, hidden=hidden, all_patterns=True, examples=False, full=False))
    pts = [{**p, "replicate": 0} for p in pts]
    for spec in cfg.confirm:
        fam, pref, hidden = spec.split(":")
        pts.append(dict(family=fam, pref=float(pref), hidden=int(hidden), all_patterns=True, examples=False, full=True,
                        replicate=1))
    unique = {}
    for p in pts:   # a grid point equal to an experiment point is the same unit (keeps all its seeds)
        k = (p["family"], p["pref"], p["hidden"], p["all_patterns"], p["replicate"])
        unique[k] = {**p, "full": unique[k]["full"] or p["full"]} if k in unique else p
    return list(unique.values())


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    device = run.device  # version-1 cache keys and streams (re-registration adds run.stream)
    units = []
    exclude = ("headline", "neutral", "strong", "scale_grid", "q_grid", "hidden_grid", "hidden", "n_examples",
               "phase_seeds", "confirm")
    for p in points(cfg):
        max_seed = None if p.pop("full") else cfg.phase_seeds
        key = unit_key(NAME, VERSION, cfg, device, exclude=exclude, max_seed=max_seed, **p)
        units.append(Unit(key=key, label=f"{p['family']} pref={p['pref']:g} H={p['hidden']}"
                                         f"{' all' if p['all_patterns'] else ''}{' confirm' if p['replicate'] else ''}",
                          compute=partial(run_seeds, cfg=cfg, key=(NAME, VERSION, p["family"], p["pref"], p["hidden"],
                                                                   p["all_patterns"], p["replicate"]), device=device,
                                          max_seed=max_seed,
                                          **p)))
    return units


# Pilots run before the full profile (100 seeds each, 8 hidden units unless stated; rates are label
# fractions). They chose the feature type and the sample and are recorded here because the rules ask
# for every construction tried with its numbers; no verdict uses them.
PILOTS = [
    {"construction": "v0 single-bit features on ±1 input lines (A, B, C one bit each, 3 irrelevant bits, 64 rows "
                     "with replacement, 1500 epochs); 'shared' variant: A and B also share one line with opposite "
                     "signs (overlap 0.5), D mirrors B for C",
     "result": "STL almost always 'mixed' (disjoint k=1: STL T mixed 0.99, STL T' mixed 0.99; shared k=1: STL T "
               "mixed 0.88, T' 1.00): with redundant single-bit features GD weights A and B equally and the probe "
               "answer is set by bias and irrelevant inputs. MTL k=1: A 0.85/0.85 (disjoint), 0.90/0.90 (shared). "
               "k=4: STL T B 1.00 both; MTL T' A 0.08, C 0.03, mixed 0.89 (disjoint), A 0.08 C 0.00 (shared). "
               "data q=0.25: STL T B 0.84, MTL T' A 0.35 C 0.00. Abandoned: no A-or-B choice to measure."},
    {"construction": "v1 XOR features, 6 bits, trained on all 48 trainable patterns, 1000 epochs (scratch script)",
     "result": "disjoint k=1: STL T A 0.47 B 0.45, STL T' A 0.46 C 0.48; MTL A 0.87 (T), 0.82 (T'). k=1.5: STL T "
               "B 0.97; MTL T' A 0.69 C 0.29. k=2: STL T B 1.00; MTL T' A 0.58 C 0.33. k=3: MTL T' A 0.40 C 0.34 "
               "mixed 0.26 (STL T' C 0.50). overlap (C=b1⊕c2) k=1: STL 0.50/0.43, MTL A 0.81/0.82; k=2: MTL T' "
               "A 0.64 C 0.29; k=4: MTL T' A 0.39 C 0.57 vs STL T' C 0.47. data q=0.1/0.3: STL T B only 0.52/0.59 "
               "(rest mixed), MTL T' A 0.84/0.86; q=1: STL T B 1.00, MTL T' A 0.46 C 0.47."},
    {"construction": "v1 with 2 irrelevant bits, 64 rows drawn with replacement",
     "result": "fit rate 0.89-0.92; disjoint k=1 STL T A 0.23 B 0.22 mixed 0.55; MTL A 0.63/0.62. Too many "
               "unseen probe patterns: mostly mixed. Abandoned."},
    {"construction": "v1 with 1 irrelevant bit, 64 rows with replacement; and 0 irrelevant bits, 32 rows with "
                     "replacement",
     "result": "fit 0.73-0.88; disjoint k=1 STL T A 0.11-0.31, B 0.09-0.29, mixed 0.40-0.80. Abandoned."},
    {"construction": "v1, 0 irrelevant bits, 36 of 48 trainable patterns without replacement (the adopted sample)",
     "result": "disjoint k=1: fit 0.95, STL T A 0.45 B 0.33 mixed 0.22, STL T' A 0.35 C 0.36; MTL A 0.82/0.84."},
    {"construction": "overlap family on all trainable patterns, k in {2,4,6,8} x H in {4,8,16} (exploring where a "
                     "C-shift appears; these points are re-run in the committed phase diagram)",
     "result": "H=8: MTL T' C 0.34/0.54/0.56/0.66 at k=2/4/6/8 vs STL T' C 0.47/0.49/0.37/0.42; H=16: MTL T' C "
               "0.30 (k=4), 0.48 (k=6); H=4: 0.51 (k=4), 0.54 (k=6)."},
    {"construction": "first full-profile run of this file's constructions (same design, earlier random streams, "
                     "before the confirmation points existed)",
     "result": "headline verdicts as in the committed run (RB1a inconclusive, RB1b replicated, RB2a/RB2b/RB2c not "
               "replicated, RB3 replicated); phase diagram: MTL T' C-rate above STL only in the overlap family at "
               "H=8, k=6 (0.62 vs 0.49) and k=8 (0.69 vs 0.48), 100 seeds, not significant after Holm over the grid. "
               "This is what the post-hoc confirmation points (--confirm) test with fresh seeds."},
]


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


def outcome_table(runs: pd.DataFrame, family: str, pref: float, hidden: int, all_patterns: bool,
                  replicate: int = 0) -> dict:
    sel = runs[(runs["family"] == family) & (runs["pref"] == pref) & (runs["hidden"] == hidden)
               & (runs["all_patterns"] == all_patterns) & (runs["replicate"] == replicate)]
    return {f"{cond} {task}": rates(sel, condition=cond, task=task) for cond in ("STL", "MTL") for task in TASKS}


def fisher_more(table: dict, label: str, task: str) -> tuple[float, float, tuple[float, float], float]:
    """MTL vs STL rate of ``label`` on ``task``: difference, one-sided p (MTL greater), Newcombe CI,
    and the opposite-direction p."""
    m, s = table[f"MTL {task}"], table[f"STL {task}"]
    args = (m[label]["k"], m["n"], s[label]["k"], s["n"])
    return (m[label]["rate"] - s[label]["rate"], fisher_exact(*args, "greater"), newcombe_diff_ci(*args),
            fisher_exact(*args, "less"))


def band(table: dict, cell: str, label: str) -> str:
    return verdict_band(tuple(table[cell][label]["ci"]), *BAND)


def stl_bands(table: dict) -> list[str]:
    """Band verdicts of STL T's A and B rates and STL T''s A and C rates."""
    return [band(table, "STL T", "A"), band(table, "STL T", "B"), band(table, "STL T'", "A"), band(table, "STL T'", "C")]


def mtl_beats(table: dict, label: str, tasks: tuple[str, ...]) -> dict:
    """Per task: MTL rate of ``label`` above 0.5 (CI) and above STL (one-sided Fisher); the claim's
    p is the largest, its effect the smallest difference (intersection-union test)."""
    parts = [fisher_more(table, label, t) for t in tasks]
    worst = min(range(len(parts)), key=lambda j: parts[j][0])
    above = [verdict_threshold(tuple(table[f"MTL {t}"][label]["ci"]), 0.5) for t in tasks]
    return dict(effect=parts[worst][0], ci=parts[worst][2], p=max(p[1] for p in parts),
                p_opposite=min(p[3] for p in parts), extra=above,
                details={f"{t}": {"mtl_rate": table[f"MTL {t}"][label]["rate"],
                                  "stl_rate": table[f"STL {t}"][label]["rate"], "p_fisher": p[1],
                                  "diff_ci": list(p[2]), "mtl_above_half": a}
                         for t, p, a in zip(tasks, parts, above)})


def exp1_parts(exp1: dict) -> list[dict]:
    b = stl_bands(exp1)
    return [dict(id="RB1a", verdict=combine_verdicts(b), effect=exp1["STL T"]["A"]["rate"] - 0.5,
                 ci=(exp1["STL T"]["A"]["ci"][0] - 0.5, exp1["STL T"]["A"]["ci"][1] - 0.5), p=None,
                 details={"bands [T:A, T:B, T':A, T':C]": b}),
            dict(id="RB1b", **mtl_beats(exp1, "A", TASKS))]


def exp2_parts(exp2: dict) -> list[dict]:
    stl_t_b = verdict_threshold(tuple(exp2["STL T"]["B"]["ci"]), 0.95)
    b2 = stl_bands(exp2)[2:]
    return [dict(id="RB2a", verdict=combine_verdicts([stl_t_b, *b2]), effect=exp2["STL T"]["B"]["rate"],
                 ci=tuple(exp2["STL T"]["B"]["ci"]), p=None,
                 details={"STL T B-rate >= 0.95": stl_t_b, "bands [T':A, T':C]": b2}),
            dict(id="RB2b", verdict=verdict_threshold(tuple(exp2["MTL T"]["B"]["ci"]), 0.90),
                 effect=exp2["MTL T"]["B"]["rate"], ci=tuple(exp2["MTL T"]["B"]["ci"]), p=None, details={}),
            dict(id="RB2c", **mtl_beats(exp2, "C", ("T'",)))]


def judge_family(exp1: dict, exp2: dict, rb3: dict) -> list[dict]:
    """Raw test parts for every claim on one family's outcome tables (verdicts after Holm)."""
    return [*exp1_parts(exp1), *exp2_parts(exp2), dict(id="RB3", **mtl_beats(rb3, "A", TASKS))]


def summarise(parts: list[dict]) -> dict:
    return {p["id"]: {"verdict": p["verdict"], "effect": p["effect"], "ci": list(p["ci"]), "p": p["p"],
                      "p_holm": p.get("p_holm"), "details": p.get("details", {})} for p in parts}


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
    by_family = {fam: summarise(parts[fam]) for fam in FAMILIES}
    confirmation = {}   # post-hoc: experiment 2 on all patterns with fresh seeds (own Holm family)
    for spec in cfg.confirm:
        fam, pref, hidden = spec.split(":")
        table = outcome_table(runs, fam, float(pref), int(hidden), True, replicate=1)
        confirmation[spec] = {"construction": construction(cfg, fam, float(pref)).describe() + f", {hidden} hidden, "
                                                                                             "all patterns, fresh seeds",
                              "outcomes": table, "parts": exp2_parts(table)}
    finish_verdicts([p for c in confirmation.values() for p in c["parts"]])
    confirmation = {spec: {**{k: v for k, v in c.items() if k != "parts"}, "claims": summarise(c["parts"])}
                    for spec, c in confirmation.items()}
    for fam in FAMILIES:   # supplementary: experiment 1's STL indifference when trained on all patterns
        table = tables[fam]["rb3_all_patterns"]
        bands = [verdict_band(tuple(table[cell][lab]["ci"]), *BAND)
                 for cell, lab in (("STL T", "A"), ("STL T", "B"), ("STL T'", "A"), ("STL T'", "C"))]
        by_family[fam]["RB1a on all patterns (supplementary)"] = {"verdict": combine_verdicts(bands),
                                                                  "bands [T:A, T:B, T':A, T':C]": bands}
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
    tide = tide_scan(runs)
    figures = [plot_outcomes(tables, confirmation, cfg, outdir), plot_phase(phase, cfg, outdir), plot_units(extras, runs, cfg, outdir)]
    tried = PILOTS + [{"family": fam, "exp1": tables[fam]["construction_exp1"], "exp2": tables[fam]["construction_exp2"],
              "verdicts": {k: v["verdict"] for k, v in by_family[fam].items()},
              "rates": {exp: {cell: {lab: tables[fam][exp][cell][lab]["rate"] for lab in ("A", "B", "C", "mixed")}
                              for cell in tables[fam][exp]} for exp in ("exp1", "exp2", "rb3_all_patterns")}}
             for fam in FAMILIES] + [
        {"confirmation": spec, "construction": c["construction"],
         "verdicts": {k: v["verdict"] for k, v in c["claims"].items()},
         "rates": {cell: {lab: c["outcomes"][cell][lab]["rate"] for lab in ("A", "B", "C", "mixed")}
                   for cell in c["outcomes"]}} for spec, c in confirmation.items()]
    return Findings(claims=claims, constructions_tried=tried,
                    tables={"by_family": by_family, "outcomes": tables, "confirmation_exp2_all_patterns": confirmation, "tide_scan": tide.to_dict(orient="records"),
                            "hidden_sharing": sharing_table(runs, cfg), "phase": phase.to_dict(orient="records")},
                    figures=figures)


def phase_table(runs: pd.DataFrame) -> pd.DataFrame:
    grid = runs[runs["all_patterns"] & (runs["replicate"] == 0)]
    rows = []
    for (fam, pref, hidden, cond, task), g in grid.groupby(["family", "pref", "hidden", "condition", "task"]):
        row = dict(family=fam, pref=pref, hidden=hidden, condition=cond, task=task, n=len(g),
                   fit_rate=float(g["fits"].mean()), mean_shared=float(g["n_shared"].mean()))
        for label in ("A", "B", "C", "mixed"):
            row[label] = float((g["label"] == label).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def tide_scan(runs: pd.DataFrame) -> pd.DataFrame:
    """RB2c's test at every phase-diagram point: MTL vs STL C-rate of T' (one-sided Fisher, Holm over
    the whole grid) and whether the MTL C-rate's Wilson CI lies above 0.5."""
    grid = runs[runs["all_patterns"] & (runs["replicate"] == 0) & (runs["task"] == "T'")]
    rows = []
    for (fam, pref, hidden), g in grid.groupby(["family", "pref", "hidden"]):
        m, s = g[g["condition"] == "MTL"], g[g["condition"] == "STL"]
        km, ks = int((m["label"] == "C").sum()), int((s["label"] == "C").sum())
        rows.append(dict(family=fam, pref=pref, hidden=hidden, n=len(m), mtl_C=km / len(m), stl_C=ks / len(s),
                         mtl_A=float((m["label"] == "A").mean()), stl_A=float((s["label"] == "A").mean()),
                         diff=km / len(m) - ks / len(s), diff_ci=list(newcombe_diff_ci(km, len(m), ks, len(s))),
                         mtl_C_ci=list(wilson_ci(km, len(m))), p_fisher=fisher_exact(km, len(m), ks, len(s), "greater"),
                         p_fisher_less=fisher_exact(km, len(m), ks, len(s), "less")))
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p_fisher"].tolist())
    out["tide"] = (out["p_holm"] < 0.01) & (out["mtl_C_ci"].map(lambda ci: ci[0] > 0.5))
    return out


def sharing_table(runs: pd.DataFrame, cfg: Config) -> list[dict]:
    """MTL runs at the experiment points grouped by their pair of labels: how many hidden units each
    output uses and how many both use."""
    exp = runs[~runs["all_patterns"] & (runs["condition"] == "MTL")]
    wide = exp.pivot_table(index=["family", "pref", "seed"], columns="task",
                           values=["label", "n_used", "n_shared"], aggfunc="first")
    rows = []
    for (fam, pref, lt, ltp), g in wide.groupby([wide.index.get_level_values(0), wide.index.get_level_values(1),
                                                 wide[("label", "T")], wide[("label", "T'")]]):
        rows.append(dict(family=fam, pref=pref, label_T=lt, label_Tp=ltp, n=len(g),
                         mean_used_T=float(g[("n_used", "T")].mean()), mean_used_Tp=float(g[("n_used", "T'")].mean()),
                         mean_shared=float(g[("n_shared", "T")].mean()), hidden=cfg.hidden))
    return rows


# -- figures ----------------------------------------------------------------------------------
LABEL_COLORS = {"A": "#2ca02c", "B": "#ff7f0e", "C": "#9467bd", "mixed": "#bbbbbb"}


CELLS = ("STL T", "STL T'", "MTL T", "MTL T'")


def stacked_bars(ax, table: dict, title: str) -> None:
    """Label rates of the four (condition, task) cells as stacked bars, each label's 95% Wilson CI
    drawn at the top of its segment."""
    bottom = np.zeros(len(CELLS))
    for label in ("A", "B", "C", "mixed"):
        r = np.array([table[c][label]["rate"] for c in CELLS])
        ci = np.array([table[c][label]["ci"] for c in CELLS])
        ax.bar(range(len(CELLS)), r, bottom=bottom, color=LABEL_COLORS[label], label=label, width=0.7)
        if r.any():
            ax.errorbar(np.arange(len(CELLS)) + 0.22, bottom + r, yerr=np.maximum([r - ci[:, 0], ci[:, 1] - r], 0),
                        fmt="none", ecolor="k", capsize=2, lw=0.8)
        bottom += r
    ax.set_xticks(range(len(CELLS)), CELLS, fontsize=8)
    ax.set(ylim=(0, 1.02), ylabel="fraction of runs", title=title)
    ax.title.set_fontsize(8)
    ax.text(0.99, 0.01, f"n={table['STL T']['n']}/bar", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)


def plot_outcomes(tables: dict, confirmation: dict, cfg: Config, outdir: Path) -> str:
    ncols = max(len(FAMILIES), len(confirmation))
    fig, axes = plots.new_figure(ncols=ncols, nrows=3 if confirmation else 2, width=4.0, height=3.2)
    for col, fam in enumerate(FAMILIES):
        for row, exp in enumerate(("exp1", "exp2")):
            knob = (cfg.neutral if exp == "exp1" else cfg.strong)[FAMILIES.index(fam)]
            stacked_bars(axes[row, col], tables[fam][exp],
                         f"exp. {row + 1}: {construction(cfg, fam, knob).describe()}"[:70])
    for col in range(len(FAMILIES), ncols):
        axes[0, col].set_axis_off()
        axes[1, col].set_axis_off()
    for col in range(len(confirmation), ncols if confirmation else 0):
        axes[2, col].set_axis_off()
    for col, (spec, c) in enumerate(confirmation.items()):
        stacked_bars(axes[2, col], c["outcomes"], f"exp. 2 confirm (all patterns): {spec}")
    axes[0, 0].legend(fontsize=7, loc="upper left", title="minimum", title_fontsize=7)
    plots.caption(fig, f"Outcome (label) rates per condition and task; error bars: 95% Wilson CI of each label's rate, "
                       f"drawn at the top of its segment. Label threshold {cfg.threshold} on agreement with A over "
                       f"probe patterns. Rows 1-2: {cfg.hidden} hidden units, training on {cfg.train_fraction:.0%} of "
                       f"the trainable patterns (headline family: {cfg.headline}). Row 3: post-hoc confirmation of "
                       f"experiment 2 on all trainable patterns with fresh seeds (family:knob:hidden units).")
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
                        (lambda l: "mixed" not in l and l != ["A", "A"], "split")):
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
