"""Representation bias (C97 §3.2.4, C95 §2.5): do tasks prefer hidden representations other tasks
prefer, and avoid the ones other tasks avoid?

Claims (docs/CLAIMS.md): RB1a/RB1b (experiment 1), RB2a/RB2b/RB2c (experiment 2, the "tide"), RB3
(experiment 1 with unlimited data), RB4/RB5 (version 2: two new experiment-2 families with a route
to a tide). The sources give no construction, net, run count or classification rule; everything
below is our operationalisation. Version 2 re-registers version 1 on the fair protocol
(docs/fair_protocol.md); v1's design and numbers are in ``PILOT_V1``.

Construction (``mtlmech/problems/representation_bias.py`` documents each family and its reasoning).
Hidden features are XORs of two input bits, A = a1⊕a2, B = b1⊕b2, C = c1⊕c2 (six ±1 input lines).
T can be fitted through A or B, T' through A or C; A is the only feature that fits both.
- Experiment 1 (``data`` family, q = 0): T labelled on the rows where A = B, T' where A = C; the
  training rows come from the 48 patterns where A = B or A = C. Neither task prefers either of its
  minima (symmetry). 36 training rows per seed drawn without replacement; the other 12 trainable
  patterns are the halt set.
- Experiment 2 (``data`` family, q = 1): T's preference is put on T's path only — every A ≠ B row
  (these are rows where A = C) also labels T, with B — so A no longer fits T's rows while T''s rows,
  labels and inputs are exactly experiment 1's (T' alone stays indifferent: tested by RB2e, STL-T'
  rates). Version 1's experiment 2 scaled B's input lines, which T' also sees (its mixed rate rose
  from .20 to .38), so RB2a failed on T', not on T. Same sample sizes as experiment 1.
- RB3: experiment 1 trained on all 48 trainable patterns (halt set = the training rows: nothing else
  exists to hold out).
- New families (RB4 ``silent``, RB5 ``fixed``), all patterns: every premise of experiment 2 holds —
  B and C on disjoint bits, T' labelled exactly as in experiment 1, T decisive alone (A is independent
  of T's target on T's rows) — plus a concrete route to a tide, *suppression*: A varies on T's rows
  without predicting T, so T's gradient strips A from the shared units T reads, while C is constant
  on T's rows (silent: C's input lines constant, c1 = c2 = 0; fixed: C's value constant, c1 = c2)
  and so invisible to T. T's probe rows stay inside T's rows (T never sees C's lines move there).
- Version 1's only "tide" (overlap family, MTL T' C-rate .62/.69 vs STL .49/.48 at k = 6/8) used
  C = b1⊕c2, which shares input bit b1 with B: the premise that B and C do not overlap is broken and
  T' is drawn to C by what T's units share with it — attraction, not a tide. It is not re-run and
  not counted as one.

Nets and the fair protocol: 6 inputs → 8 sigmoid hidden units → 2 sigmoid outputs (T, T'), squared
error, full-batch SGD with momentum 0.9, U(±1/√fan_in) initial weights. Conditions, all from the same
rows and initial weights per seed (paired): STL-T (loss on T only), STL-T' (loss on T' only), MTL
(both). Each gets the same learning-rate grid 1 × {1/4, 1, 4, 16, 64, 256}, chosen per seed and
condition on halt MSE (MTL: the mean over both tasks); controls STL-untuned / MTL-untuned at
version 1's rate 1. Patience stopping: halt MSE every 10 epochs, a net stops when no trained task has
improved by more than 1e-3 for 100 checks (1000 epochs); 20 000 epochs is a safety cap (claims with
> 5 % of a compared condition's runs at the cap are not judged). Each output is scored at its own
best-halt snapshot. The grid and cap were fixed on pilot seeds (``PILOT_V2``; the halt MSE of these
noise-free tasks keeps falling with the rate until training becomes unstable, hence the wide grid).

Measurement: score = fraction of the task's probe patterns (T: A ≠ B; T': A ≠ C) on which the
thresholded output agrees with A. Label (threshold 0.9): A if score ≥ 0.9, B (C) if ≤ 0.1, else
mixed (a third kind of solution: e.g. A∧B or A∨B fits T's rows and answers half the probes each way).
Rates are reported over all runs (every seed counts) and, for the A-or-other question, as the
conditional share among runs that reached one of the task's two minima, with the mixed rate as its
own bounded quantity.

Tests (α = 0.01; Holm over every p-value of the experiment, one family; 95 % Wilson CIs for rates
and shares, paired-bootstrap CIs for paired differences):
- RB1a = RB1c ∧ RB1d: STL-T share A/(A+B) and STL-T' share A/(A+C) inside [0.35, 0.65] (band).
- RB1m: the larger STL mixed rate (T, T') below 0.25 (threshold on its CI).
- RB1b = RB1e ∧ RB1f ∧ RB1g: per task, among seeds where STL and MTL both reached a minimum, MTL
  lands in A more often (McNemar exact, one-sided, on the paired switches) (RB1e: T, RB1f: T'); the
  smaller MTL A-rate over all runs above 0.5 (RB1g).
- RB2a = RB2d ∧ RB2e: STL-T share B/(A+B) above 0.95; STL-T' share A/(A+C) inside [0.35, 0.65].
- RB2b: MTL-T share B/(A+B) above 0.90. RB2m: the largest experiment-2 mixed rate below 0.25.
- RB2c = RB2f ∧ RB2g: McNemar as RB1e for T' towards C (A→C vs C→A switches); MTL-T' share
  C/(A+C) above 0.5.
- RB3 = RB3a ∧ RB3b ∧ RB3c: RB1b's tests on all-pattern training.
- RB4, RB5 (silent, fixed) = tide tests as RB2c (RB4a/RB4b, RB5a/RB5b); premises reported as their
  own claims: STL-T share B/(A+B) above 0.95 (RB4c, RB5c), STL-T' share A/(A+C) inside [0.35, 0.65]
  (RB4d, RB5d).
Seeds: 1100 per point from the confirmatory stream (every rate's CI half-width ≤ 0.03).

Phase diagram (all patterns, same seeds, not judged): data family q ∈ {0, 0.25, 0.5, 1} at 8 hidden
units (does T' follow as T becomes decisive?), silent and fixed at 4, 8 and 16 hidden units. (Registered
first with all these points; q = 0.25 and the 4-unit points were dropped, not fewer seeds, before any
confirmatory result was seen, because the shared machine then ran at load 15-21 on 2 cores. They were
restored on the quiet machine after the first confirmatory run — the points as first registered, same
seeds and protocol, no claim rests on them.)

Inspecting one run: ``python experiments/representation_bias.py --show-run SEED [--point data:0
--all-patterns --profile full]`` retrains that seed (deterministic) and draws each net's input weights
and output sensitivities with units labelled A/B/C.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtlmech.engine.nets import NetConfig, forward
from mtlmech.engine.seeding import numpy_rng
from mtlmech.engine.training import BACKENDS, TrainSpec
from mtlmech.measures.probes import agreement, classify, hidden_sensitivity, outputs_on, used_units
from mtlmech.pipeline.cli import RunContext
from mtlmech.pipeline.experiment import Command, Experiment, Findings, unit_key
from mtlmech.pipeline.runner import Unit
from mtlmech.problems.representation_bias import FAMILIES, TASKS, RBConstruction
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.report import plots
from mtlmech.stats import ClaimResult, mcnemar_exact, wilson_ci

NAME = "representation_bias"
VERSION = 2  # bump when the construction changes; old cache entries are then not reused

TASK_OTHER = {"T": "B", "T'": "C"}   # each task's alternative to the shared minimum A
BAND = (0.35, 0.65)      # "about equally often": a conditional share inside this band
MIXED_BOUND = 0.25       # "runs reach one of the minima": mixed rate below this
DECISIVE = 0.95          # "T alone always reaches B": B share above this
KEEPS_B = 0.90           # "together, T still reaches B": B share above this
CONDITIONS = (Condition("STL", ("T",)), Condition("STL", ("T'",)), Condition("MTL", TASKS),
              Condition("STL-untuned", ("T",), lr_grid=(1.0,)), Condition("STL-untuned", ("T'",), lr_grid=(1.0,)),
              Condition("MTL-untuned", TASKS, lr_grid=(1.0,)))


def parse_point(spec: str, hidden: int | None = None) -> tuple[str, float, int]:
    """``family:knob[:hidden]`` → (family, knob, hidden units); raises ValueError on a bad entry."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[0] not in FAMILIES:
        raise ValueError(f"points are family:knob[:hidden] with family in {FAMILIES}, got {spec!r}")
    h = int(parts[2]) if len(parts) == 3 else hidden
    if h is None or h < 1:
        raise ValueError(f"{spec!r}: hidden units must be ≥ 1")
    RBConstruction(parts[0], float(parts[1]))   # raises on a bad knob
    return parts[0], float(parts[1]), h


@dataclass(frozen=True)
class Config:
    exp1: str = field(default="data:0", metadata={"help": "experiment 1 (and RB3): family:knob"})
    exp2: str = field(default="data:1", metadata={"help": "experiment 2 (RB2a-c): family:knob"})
    tide: tuple[str, ...] = field(default=("silent", "fixed"), metadata={
        "help": "new experiment-2 families with a route to a tide (RB4, RB5), trained on all patterns"})
    n_train: int = field(default=36, metadata={
        "help": "experiments 1 and 2: training rows drawn from the trainable patterns; the rest are the halt set"})
    phase: tuple[str, ...] = field(default=("data:0.25:8", "data:0.5:8", "data:1:8", "silent:1:4", "silent:1:16",
                                            "fixed:1:4", "fixed:1:16"), metadata={
        "help": "phase diagram (all patterns) beyond the claim points: family:knob:hidden"})
    net: NetConfig = NetConfig(hidden=(8,))
    train: TrainSpec = TrainSpec(lr=1.0, momentum=0.9, epochs=20_000, eval_every=10, patience=100, min_delta=1e-3,
                                 lr_grid=(0.25, 1.0, 4.0, 16.0, 64.0, 256.0))
    threshold: float = field(default=0.9, metadata={"help": "label threshold on the agreement score"})
    used_fraction: float = field(default=0.1, metadata={"help": "a unit is used by an output at ≥ this share of its "
                                                                 "largest sensitivity"})
    n_examples: int = field(default=8, metadata={"help": "seeds per point whose hidden layer is saved in extras.json"})

    def __post_init__(self) -> None:
        for spec in (self.exp1, self.exp2, *(f"{f}:1" for f in self.tide), *self.phase):
            parse_point(spec, self.net.hidden[0])
        if len(self.net.hidden) != 1:
            raise ValueError("--net.hidden: one hidden layer")
        if self.train.patience is None:
            raise ValueError("--train.patience: the fair protocol trains to a stopping point")
        if not 0.5 < self.threshold <= 1:
            raise ValueError("--threshold must be in (0.5, 1]")
        if self.n_examples < 0:
            raise ValueError("--n-examples must be ≥ 0")


PROFILES = {
    "quick": dict(seeds=96, phase=(), tide=("silent",), n_examples=2,
                  train=dict(patience=30, lr_grid=(0.5, 1.0, 4.0))),
    "full": dict(seeds=1100),
}


def construction(family: str, pref: float) -> RBConstruction:
    return RBConstruction(family, pref)


def train_point(seeds: list[int], *, cfg: Config, family: str, pref: float, hidden: int, all_patterns: bool,
                key: tuple, device: str, backend: str = "auto"):
    """Train every condition on every grid point for every seed in one batch (same rows and initial
    weights per seed) and keep each condition's rate chosen on the halt set: (construction, Trained)."""
    rb = construction(family, pref)
    trained = train_conditions(rb, CONDITIONS, seeds, key=key, n_train=0, n_halt=0, n_test=0,
                               net=replace(cfg.net, hidden=(hidden,)), train_spec=cfg.train, device=device,
                               backend=backend, splits_for=lambda seed: rb.splits(numpy_rng(*key, seed, "data"),
                                                                 None if all_patterns else cfg.n_train))
    return rb, trained


def run_seeds(seeds: list[int], *, cfg: Config, family: str, pref: float, hidden: int, all_patterns: bool,
              key: tuple, device: str, backend: str = "auto") -> dict:
    """Train one point (``train_point``) and label each trained output by the minimum it reached, at
    its own best-halt snapshot; the first ``n_examples`` seeds' MTL hidden layers go to extras."""
    rb, trained = train_point(seeds, cfg=cfg, family=family, pref=pref, hidden=hidden, all_patterns=all_patterns,
                              key=key, device=device, backend=backend)
    return label_rows(rb, trained, cfg, device, family=family, pref=pref, hidden=hidden, all_patterns=all_patterns)


def label_rows(rb: RBConstruction, trained, cfg: Config, device: str, **labels) -> dict:
    """score_rows' records plus, per (condition, task): the agreement score with A on the task's probe
    rows, the label (A, B/C or mixed), whether the training rows are fitted, units used and shared."""
    out = score_rows(trained, **labels)
    r, spec = trained.result, trained.result.spec
    x_all = torch.as_tensor(rb.rows(rb.all_patterns()).x, device=device)
    scores, sens = [], []
    for k, task in enumerate(TASKS):
        params = r.task_params(k)
        probe = rb.probe(task)
        scores.append(agreement(outputs_on(spec, params, torch.as_tensor(probe.x, device=device)),
                                probe.features["A"])[:, k].cpu().numpy())
        sens.append(hidden_sensitivity(spec, params, x_all)[:, k])
    scores = np.stack(scores, axis=1)                                              # (M, 2)
    used = used_units(torch.stack(sens, dim=1), cfg.used_fraction).cpu().numpy()   # (M, 2, H)
    shared_used = used_units(hidden_sensitivity(spec, r.shared_snapshot, x_all), cfg.used_fraction).cpu().numpy()
    rows = {(seed, row["condition"], row["trained_tasks"], row["task"]): row for seed, rec in out.items()
            for row in rec["rows"]}
    for i, (seed, c) in enumerate(trained.members):
        for task in c.report or c.tasks:
            k = TASKS.index(task)
            row = rows[(seed, c.name, "+".join(c.tasks), task)]
            row.update(score_A=float(scores[i, k]),
                       label=str(classify(scores[i, k], first="A", second=TASK_OTHER[task], threshold=cfg.threshold)),
                       fits=bool(row["train_error"] == 0.0), n_used=int(used[i, k].sum()),
                       n_shared=int((shared_used[i, 0] & shared_used[i, 1]).sum()) if len(c.tasks) == 2 else -1)
        if c.name == "MTL" and seed < cfg.n_examples:
            out[seed]["extra"] = unit_picture(spec, [p[i:i + 1] for p in r.shared_snapshot], rb, device) | {
                "labels": [rows[(seed, "MTL", "T+T'", t)]["label"] for t in TASKS], "lr": trained.choices[i]["lr"]}
    return out


def unit_picture(spec, params: list[torch.Tensor], rb: RBConstruction, device: str) -> dict:
    """One net's hidden layer: input weights (inputs × H), each output's sensitivity to each unit
    (2 × H, mean |∂out/∂h| over all patterns) and each unit's correlation with ±A, ±B, ±C (H × 3)."""
    everything = rb.rows(rb.all_patterns())
    x = torch.as_tensor(everything.x, device=device)
    hid = forward(spec, params, x)[1][0].cpu().numpy()                              # (n, H)
    signs = 2 * np.stack([everything.features[f] for f in "ABC"], axis=1) - 1
    h = hid - hid.mean(axis=0)
    corr = (h.T @ signs) / np.maximum(np.linalg.norm(h, axis=0)[:, None] * np.sqrt(len(signs)), 1e-9)
    w = params[0][0].cpu().numpy()                                                # (inputs, H)
    mass = np.stack([np.abs(w[list(rb.bits[f])]).sum(axis=0) for f in "ABC"], axis=1)   # (H, 3)
    share = mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)
    unit_feature = [("ABC"[int(j)] if share[u, j] >= UNIT_SHARE else "·") for u, j in enumerate(share.argmax(axis=1))]
    return {"input_weights": np.round(w, 3).tolist(), "unit_feature": unit_feature,
            "output_weights": np.round(params[2][0].cpu().numpy(), 3).tolist(),
            "sensitivity": np.round(hidden_sensitivity(spec, params, x)[0].cpu().numpy(), 4).tolist(),
            "unit_feature_corr": np.round(corr, 3).tolist(), "bits": rb.bit_names()}


UNIT_SHARE = 0.6   # a unit is "an A (B, C) unit" when that feature's two input lines carry ≥ 60 % of its |weights|


def points(cfg: Config) -> list[dict]:
    """Every sweep point (experiments 1 and 2 on finite samples, RB3 and the tide families on all
    patterns, then the phase diagram), without duplicates."""
    h = cfg.net.hidden[0]
    specs = [(cfg.exp1, False), (cfg.exp2, False), (cfg.exp1, True), *((f"{f}:1", True) for f in cfg.tide),
             *((s, True) for s in cfg.phase)]
    out = {}
    for spec, all_patterns in specs:
        family, pref, hidden = parse_point(spec, h)
        out.setdefault((family, pref, hidden, all_patterns),
                       dict(family=family, pref=pref, hidden=hidden, all_patterns=all_patterns))
    return list(out.values())


def make_units(cfg: Config, run: RunContext) -> list[Unit]:
    exclude = ("exp1", "exp2", "tide", "phase")   # sweep lists: each unit's own point is in its key
    units = []
    for p in points(cfg):
        rb = construction(p["family"], p["pref"])
        units.append(Unit(key=unit_key(NAME, VERSION, cfg, run, exclude=exclude, problem=rb, **p),
                          label=f"{p['family']} knob={p['pref']:g} H={p['hidden']}"
                                f"{' all patterns' if p['all_patterns'] else f' n={cfg.n_train}'}",
                          compute=partial(run_seeds, cfg=cfg, key=(NAME, VERSION, run.stream, *p.values()),
                                          device=run.device, backend=run.backend, **p)))
    return units


# Every construction tried before the committed runs (listed in summary.json's constructions_tried).
# Version 1 (fixed lr 1.0, 1000 epochs, no stopping rule; 100-seed pilots, 8 hidden units):
PILOT_V1 = [
    {"construction": "v0 single-bit features on ±1 input lines (A, B, C one bit each, 3 irrelevant bits, 64 rows "
                     "with replacement, 1500 epochs); 'shared' variant: A and B also share one line with opposite "
                     "signs, D mirrors B for C",
     "result": "STL almost always 'mixed' (disjoint k=1: STL T mixed 0.99, STL T' mixed 0.99; shared k=1: STL T "
               "mixed 0.88, T' 1.00). MTL k=1: A 0.85/0.85 (disjoint), 0.90/0.90 (shared). k=4: STL T B 1.00 both; "
               "MTL T' A 0.08, C 0.03, mixed 0.89. data q=0.25: STL T B 0.84, MTL T' A 0.35 C 0.00. Abandoned."},
    {"construction": "v1 XOR features, 6 bits, trained on all 48 trainable patterns, 1000 epochs",
     "result": "disjoint k=1: STL T A 0.47 B 0.45, STL T' A 0.46 C 0.48; MTL A 0.87 (T), 0.82 (T'). k=1.5: STL T "
               "B 0.97; MTL T' A 0.69 C 0.29. k=2: STL T B 1.00; MTL T' A 0.58 C 0.33. k=3: MTL T' A 0.40 C 0.34 "
               "mixed 0.26 (STL T' C 0.50). overlap (C=b1⊕c2) k=1: STL 0.50/0.43, MTL A 0.81/0.82; k=2: MTL T' "
               "A 0.64 C 0.29; k=4: MTL T' A 0.39 C 0.57 vs STL T' C 0.47. data q=0.1/0.3: STL T B only 0.52/0.59 "
               "(rest mixed), MTL T' A 0.84/0.86; q=1: STL T B 1.00, MTL T' A 0.46 C 0.47."},
    {"construction": "v1 with 2 irrelevant bits, 64 rows drawn with replacement",
     "result": "fit rate 0.89-0.92; disjoint k=1 STL T A 0.23 B 0.22 mixed 0.55; MTL A 0.63/0.62. Abandoned."},
    {"construction": "v1 with 1 irrelevant bit, 64 rows with replacement; and 0 irrelevant bits, 32 rows with "
                     "replacement",
     "result": "fit 0.73-0.88; disjoint k=1 STL T A 0.11-0.31, B 0.09-0.29, mixed 0.40-0.80. Abandoned."},
    {"construction": "v1, 0 irrelevant bits, 36 of 48 trainable patterns without replacement (adopted)",
     "result": "disjoint k=1: fit 0.95, STL T A 0.45 B 0.33 mixed 0.22, STL T' A 0.35 C 0.36; MTL A 0.82/0.84."},
    {"construction": "overlap family on all trainable patterns, k in {2,4,6,8} x H in {4,8,16}",
     "result": "H=8: MTL T' C 0.34/0.54/0.56/0.66 at k=2/4/6/8 vs STL T' C 0.47/0.49/0.37/0.42; H=16: MTL T' C "
               "0.30 (k=4), 0.48 (k=6); H=4: 0.51 (k=4), 0.54 (k=6)."},
    {"construction": "v1 committed full run (500 seeds; phase diagram 100 seeds/point; post-hoc confirmation 500 "
                     "fresh seeds at overlap k=6, k=8)",
     "result": "RB1a inconclusive (STL T A .37 B .41 mixed .22; A/(A+B) .479 [.43, .53]), RB1b replicated "
               "(+0.378), RB2a not replicated (disjoint k=3 scales B's bits, which T' also sees: STL T' mixed "
               ".20 -> .38), RB2b not replicated (MTL T B .66, B/(A+B) .988, mixed .18-.33), RB2c not replicated "
               "(MTL T' C .19 vs STL .32), RB3 replicated. The only C-shift: overlap family (C = b1⊕c2 shares "
               "an input bit with B) at H=8, k=6/8: MTL T' C .62/.69 vs STL .49/.48 — attraction through the "
               "shared bit, not a tide."},
]
# Version 2 design pilots (pilot seed stream, 8 hidden units, the fair protocol; rates are label shares:
# A / the task's other minimum / mixed). They fixed the learning-rate grid, the cap and the probe rows
# of the new families; the claims, thresholds and tests were written before them.
PILOT_V2 = [
    {"pilot": "grid 1×{1/4,1,4,16,64}, patience 100 checks of 10 epochs, min_delta 1e-3, cap 20 000, 16 seeds, "
              "data q=0 (36 rows) and silent",
     "result": "data q=0: top edge (64) chosen by 19 % of STL seeds (T and T'); silent STL T top edge 94 %: the "
               "noise-free halt MSE keeps falling with the rate (MSE at the stop ∝ lr^-1/2) — grid extended. "
               "silent's T probe first spanned all A≠B patterns: T 100 % mixed, because T never sees C's lines "
               "move and its answer there is arbitrary; T's probe now stays inside T's rows."},
    {"pilot": "grid 1×{1,4,16,64,256,1024}, 16 seeds", "result": "optimum inside (median chosen 16); edges ≤ 6 % "
              "high, 12.5 % low at data q=0 (36 rows) — lower edge moved to 1/4."},
    {"pilot": "grid 1×{1/4,1,4,16,64,256} (adopted), 64 seeds, fused trainer",
     "result": "edges ≤ 9.4 % (MTL low edge at data q=1, 36 rows); cap fractions ≤ 3.1 % (MTL, data q=1, 36 "
               "rows), 0 on all patterns; median stop 1040-2400 epochs. Rates (tuned / lr 1): data q=0 36 rows: "
               "STL T .30/.34/.36 vs lr-1 .36/.42/.22; MTL T .81/.08/.11, T' .73/.09/.17. data q=1: STL T "
               "B 1.00; STL T' .38/.30/.33; MTL T' .45/.31/.23. silent: STL T' .23/.39/.38, MTL T' .27/.50/.23. "
               "fixed: STL T' .39/.33/.28, MTL T' .23/.45/.31. ~3 s per 64 seeds per point (21 nets per seed)."},
]
# A first launch of the full profile (confirmatory stream) ran with the Config's old default grid
# 1×{1/4, 1/2, 1, 2, 4, 8} instead of the pre-registered one: the Config default had not been updated.
# Stopped after 4 of 12 points when the top edge was seen chosen by 40-100 % of seeds; its numbers are
# kept here, and the full profile was rerun with the pre-registered grid (fresh cache keys).
ABORTED_LAUNCH = {
    "grid": "1×{1/4,1/2,1,2,4,8} (not the pre-registered grid)", "seeds": 1100,
    "top-edge share": "STL .75-1.00, MTL .40-.99", "cap fraction": "≤ .026",
    "exp1 (data q=0, 36 rows)": "STL T A/B/mixed .39/.40/.21, STL T' .38/.38/.25; MTL T .81/.08/.11, T' .80/.08/.12; "
                                "switches towards A: T 288 vs 6, T' 263 vs 6",
    "exp2 (data q=1, 36 rows)": "STL T B .996; STL T' A/C/mixed .40/.40/.21; MTL T B .985; MTL T' .41/.40/.20; "
                                "T' switches A→C 79 vs C→A 86",
    "rb3 (all patterns)": "STL T .47/.42/.12, T' .47/.44/.10; MTL T .80/.14/.06, T' .81/.15/.04",
    "silent (all patterns)": "STL T B 1.00; STL T' A/C/mixed .44/.45/.12; MTL T' .41/.47/.12; switches A→C 37 vs "
                             "C→A 22 (one-sided p .034)",
}
SUPERSEDED = {   # claim ID -> why its v1 verdict changed
    "RB1a": "v1's band on unconditional rates counted the ~22 % mixed runs against both minima; v2 judges the share "
            "among runs that reached a minimum (A/(A+B) .50, A/(A+C) .50, both inside the band); the mixed rate is "
            "its own claim RB1m, which fails (.36 with tuned rates)",
    "RB2a": "v1 set T's preference by scaling B's input lines, which T' also sees (T''s mixed rate rose .20 → .38); "
            "v2 puts it on T's labels only (data q = 1): STL-T B share 1.00, STL-T' A share .48, inside the band",
    "RB2b": "v1 (disjoint k = 3) counted mixed runs against B; v2 (data q = 1) judges the share among runs that "
            "reached a minimum: MTL-T B share 1.00 [.997, 1] (1.4 % mixed)",
    "RB2c": "v1's experiment 2 changed T''s inputs, so T' was not indifferent alone; with T's preference on T's labels "
            "only, T''s C share is .48 [.45, .51] with T and .52 alone (A→C 60 vs C→A 76 switches): no tide, but "
            "neither interval clears its pre-registered line, so inconclusive rather than not replicated",
}


# -- analysis ---------------------------------------------------------------------------------
CELLS = (("STL-untuned", "lr 1"), ("STL", "tuned"), ("MTL", "tuned"), ("MTL-untuned", "lr 1"))


def at_point(runs: pd.DataFrame, family: str, pref: float, hidden: int, all_patterns: bool) -> pd.DataFrame:
    return runs[(runs["family"] == family) & np.isclose(runs["pref"], pref) & (runs["hidden"] == hidden)
                & (runs["all_patterns"] == all_patterns)]


def label_rates(labels: pd.Series, other: str) -> dict:
    """Counts, rates and Wilson CIs of A, the other minimum and mixed, and the conditional share of
    A among runs that reached a minimum (A or the other)."""
    n = len(labels)
    k = {lab: int((labels == lab).sum()) for lab in ("A", other, "mixed")}
    out = {"n": n, "other": other}
    for lab, count in k.items():
        out[lab] = {"k": count, "rate": count / n if n else float("nan"), "ci": list(wilson_ci(count, n))}
    reached = k["A"] + k[other]
    out["reached"] = reached
    out["share_A"] = {"k": k["A"], "n": reached, "rate": k["A"] / reached if reached else float("nan"),
                      "ci": list(wilson_ci(k["A"], reached))}
    out[f"share_{other}"] = {"k": k[other], "n": reached, "rate": k[other] / reached if reached else float("nan"),
                             "ci": list(wilson_ci(k[other], reached))}
    return out


def outcome_table(sel: pd.DataFrame) -> dict:
    """Label rates per (condition, task) at one point."""
    return {f"{cond} {task}": label_rates(sel[(sel["condition"] == cond) & (sel["task"] == task)]["label"],
                                          TASK_OTHER[task])
            for cond, _ in CELLS for task in TASKS if ((sel["condition"] == cond) & (sel["task"] == task)).any()}


def switch_test(sel: pd.DataFrame, task: str, towards: str) -> dict:
    """Paired MTL vs STL (same seed, rows, initial weights): among seeds where both runs of ``task``
    reached one of its two minima, McNemar's exact test that MTL lands in ``towards`` more often
    (discordant pairs: STL other → MTL ``towards`` vs the reverse). Also the unconditional McNemar
    on "reached ``towards``" over every seed."""
    wide = sel[sel["task"] == task].pivot_table(index="seed", columns="condition", values="label", aggfunc="first")
    mtl, stl = wide["MTL"], wide["STL"]
    minima = ("A", TASK_OTHER[task])
    both = mtl.isin(minima) & stl.isin(minima)
    cond = mcnemar_exact(mtl[both] == towards, stl[both] == towards, alternative="greater")
    opposite = mcnemar_exact(mtl[both] == towards, stl[both] == towards, alternative="less")["p"]
    uncond = mcnemar_exact(mtl == towards, stl == towards, alternative="greater")
    return {"n_both_reached": int(both.sum()), "n_seeds": int(len(wide)), "to_" + towards: cond["only_treatment"],
            "away_from_" + towards: cond["only_control"], "mtl_share": cond["rate_treatment"],
            "stl_share": cond["rate_control"], "diff": cond["diff"], "ci": list(cond["ci"]), "p": cond["p"],
            "p_opposite": opposite, "unconditional": {k: (list(v) if isinstance(v, tuple) else v)
                                                      for k, v in uncond.items()}}


def where_of(point: dict, task: str | None = None) -> dict:
    w = {"family": point["family"], "pref": point["pref"], "hidden": point["hidden"],
         "all_patterns": point["all_patterns"]}
    return w | ({"task": task} if task else {})


def describe_point(point: dict, cfg: Config) -> str:
    rows = "all trainable patterns" if point["all_patterns"] else f"{cfg.n_train} training rows"
    return f"{construction(point['family'], point['pref']).describe()}; {point['hidden']} hidden units; {rows}"


def share_claim(id: str, table: dict, cell: str, label: str, point: dict, cfg: Config, *, statement: str,
                rule: str, band: tuple | None = None, threshold: float | None = None, direction: str | None = None,
                source: str = "C97 §3.2.4") -> ClaimResult:
    """A band or threshold claim on the conditional share of ``label`` in ``cell`` (runs that
    reached a minimum; Wilson CI)."""
    s = table[cell][f"share_{label}"]
    test = (f"{label}/(A+{table[cell]['other']}) of {cell} (runs that reached a minimum), 95% Wilson CI "
            + (f"inside [{band[0]}, {band[1]}]" if rule == "band" else f"{'above' if direction == 'greater' else 'below'} {threshold}"))
    cond, task = cell.split(" ")
    return ClaimResult(id=id, statement=statement, source=source, test=f"{test}; {describe_point(point, cfg)}",
                       effect=float(s["rate"]), ci=tuple(s["ci"]), p_value=None, n=int(s["n"]), rule=rule, band=band,
                       threshold=threshold, direction=direction, compared=(cond,), where=where_of(point, task),
                       details={"k": s["k"], "n_runs": table[cell]["n"], "mixed_rate": table[cell]["mixed"]["rate"]})


def mixed_claim(id: str, table: dict, cells: tuple[str, ...], point: dict, cfg: Config, statement: str) -> ClaimResult:
    """Threshold claim: the largest mixed rate among ``cells`` stays below MIXED_BOUND (its Wilson CI)."""
    worst = max(cells, key=lambda c: table[c]["mixed"]["rate"])
    m = table[worst]["mixed"]
    return ClaimResult(id=id, statement=statement, source="C97 §3.2.4 (implied: runs reach one of the minima)",
                       test=f"largest mixed rate among {', '.join(cells)} with its 95% Wilson CI below {MIXED_BOUND}; "
                            f"{describe_point(point, cfg)}",
                       effect=float(m["rate"]), ci=tuple(m["ci"]), p_value=None, n=int(table[worst]["n"]),
                       rule="threshold", threshold=MIXED_BOUND, direction="less",
                       compared=tuple(dict.fromkeys(c.split(" ")[0] for c in cells)), where=where_of(point),
                       details={"largest": worst, **{c: table[c]["mixed"]["rate"] for c in cells}})


def switch_claim(id: str, sel: pd.DataFrame, task: str, towards: str, point: dict, cfg: Config, statement: str,
                 source: str = "C97 §3.2.4") -> tuple[ClaimResult, dict]:
    t = switch_test(sel, task, towards)
    other = "A" if towards != "A" else TASK_OTHER[task]
    return ClaimResult(
        id=id, statement=statement, source=source,
        test=f"paired (same seed) McNemar exact, one-sided: among seeds where STL and MTL {task} both reached A or "
             f"{TASK_OTHER[task]}, MTL lands in {towards} more often than STL ({other}→{towards} vs "
             f"{towards}→{other} switches); effect = MTL − STL share of {towards}, paired bootstrap CI; "
             f"{describe_point(point, cfg)}",
        effect=float(t["diff"]), ci=tuple(t["ci"]), p_value=float(t["p"]), p_opposite=float(t["p_opposite"]),
        n=t["n_both_reached"], direction="greater", compared=("MTL", "STL"), where=where_of(point, task),
        details={k: v for k, v in t.items() if k not in ("diff", "ci", "p", "p_opposite")}), t


def rate_claim(id: str, table: dict, cells: tuple[str, ...], label: str, point: dict, cfg: Config,
               statement: str) -> ClaimResult:
    """Threshold claim: the smallest unconditional rate of ``label`` among ``cells`` is above 0.5."""
    worst = min(cells, key=lambda c: table[c][label]["rate"])
    r = table[worst][label]
    return ClaimResult(id=id, statement=statement, source="C97 §3.2.4",
                       test=f"smallest {label}-rate (every run counted) among {', '.join(cells)}, 95% Wilson CI above "
                            f"0.5; {describe_point(point, cfg)}",
                       effect=float(r["rate"]), ci=tuple(r["ci"]), p_value=None, n=int(table[worst]["n"]),
                       rule="threshold", threshold=0.5, direction="greater", compared=("MTL",),
                       where=where_of(point), details={"smallest": worst, **{c: table[c][label]["rate"] for c in cells}})


def composite(id: str, parts: tuple[str, ...], statement: str, test: str, n: int,
              source: str = "C97 §3.2.4") -> ClaimResult:
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=float("nan"),
                       ci=(float("nan"), float("nan")), p_value=None, n=n, rule="composite", parts=parts)


def experiment_points(cfg: Config) -> dict[str, dict]:
    h = cfg.net.hidden[0]
    pts = {"exp1": (cfg.exp1, False), "exp2": (cfg.exp2, False), "rb3": (cfg.exp1, True),
           **{f"tide:{f}": (f"{f}:1", True) for f in cfg.tide}}
    out = {}
    for name, (spec, all_patterns) in pts.items():
        family, pref, hidden = parse_point(spec, h)
        out[name] = dict(family=family, pref=pref, hidden=hidden, all_patterns=all_patterns)
    return out


TIDE_IDS = ("RB4", "RB5", "RB6", "RB7")   # claim-ID prefixes of the new tide families, in --tide order


def claims_for(runs: pd.DataFrame, cfg: Config) -> tuple[list[ClaimResult], dict]:
    pts = experiment_points(cfg)
    sel = {name: at_point(runs, **p) for name, p in pts.items()}
    tables = {name: outcome_table(s) for name, s in sel.items()}
    switches = {}
    e1, e2, r3 = pts["exp1"], pts["exp2"], pts["rb3"]
    t1, t2, t3 = tables["exp1"], tables["exp2"], tables["rb3"]
    n1 = t1["STL T"]["n"]
    claims = [
        share_claim("RB1c", t1, "STL T", "A", e1, cfg, rule="band", band=BAND,
                    statement="exp. 1: trained alone, T reaches A about as often as B (among runs that reach one)"),
        share_claim("RB1d", t1, "STL T'", "A", e1, cfg, rule="band", band=BAND,
                    statement="exp. 1: trained alone, T' reaches A about as often as C (among runs that reach one)"),
        composite("RB1a", ("RB1c", "RB1d"), "exp. 1: alone, T finds A or B equally often; T' finds A or C "
                  "equally often", "both conditional shares inside [0.35, 0.65] (RB1c, RB1d); the mixed rate is "
                  "RB1m", n1),
        mixed_claim("RB1m", t1, ("STL T", "STL T'"), e1, cfg,
                    "exp. 1: trained alone, most runs reach one of the task's two minima (mixed rate < 0.25)"),
    ]
    for cid, task in (("RB1e", "T"), ("RB1f", "T'")):
        c, switches[f"exp1 {task}"] = switch_claim(cid, sel["exp1"], task, "A", e1, cfg,
                                                   f"exp. 1: trained together, {task} switches towards A")
        claims.append(c)
    claims += [
        rate_claim("RB1g", t1, ("MTL T", "MTL T'"), "A", e1, cfg, "exp. 1: trained together, both tasks usually find A"),
        composite("RB1b", ("RB1e", "RB1f", "RB1g"), "exp. 1: trained together both tasks usually find A",
                  "MTL A-rate > 0.5 for both tasks (RB1g) and MTL moves each task towards A (RB1e, RB1f; McNemar, "
                  "Holm)", n1),
        share_claim("RB2d", t2, "STL T", "B", e2, cfg, rule="threshold", threshold=DECISIVE, direction="greater",
                    statement="exp. 2: trained alone, T always reaches B (among runs that reach a minimum)"),
        share_claim("RB2e", t2, "STL T'", "A", e2, cfg, rule="band", band=BAND,
                    statement="exp. 2: trained alone, T' still reaches A about as often as C"),
        composite("RB2a", ("RB2d", "RB2e"), "exp. 2: alone, T always finds B; T' still has no preference",
                  "RB2d (B-share of STL T above 0.95) and RB2e (A-share of STL T' inside [0.35, 0.65])", t2["STL T"]["n"]),
        share_claim("RB2b", t2, "MTL T", "B", e2, cfg, rule="threshold", threshold=KEEPS_B, direction="greater",
                    statement="exp. 2: together, T still finds B (among runs that reach a minimum)"),
        mixed_claim("RB2m", t2, ("STL T", "STL T'", "MTL T", "MTL T'"), e2, cfg,
                    "exp. 2: most runs reach one of the task's two minima (mixed rate < 0.25)"),
    ]
    c, switches["exp2 T'"] = switch_claim("RB2f", sel["exp2"], "T'", "C", e2, cfg,
                                          "exp. 2: together, T' switches from A towards C")
    claims += [c, share_claim("RB2g", t2, "MTL T'", "C", e2, cfg, rule="threshold", threshold=0.5, direction="greater",
                              statement="exp. 2: together, T' usually finds C (among runs that reach a minimum)"),
               composite("RB2c", ("RB2f", "RB2g"), "exp. 2: together, T' usually finds C (the tide)",
                         "RB2f (McNemar: MTL moves T' from A to C) and RB2g (MTL C-share of T' above 0.5)",
                         t2["MTL T'"]["n"])]
    for cid, task in (("RB3a", "T"), ("RB3b", "T'")):
        c, switches[f"rb3 {task}"] = switch_claim(cid, sel["rb3"], task, "A", r3, cfg,
                                                  f"all patterns: trained together, {task} switches towards A",
                                                  source="C95 §2.5")
        claims.append(c)
    claims += [rate_claim("RB3c", t3, ("MTL T", "MTL T'"), "A", r3, cfg, "all patterns: both tasks usually find A"),
               composite("RB3", ("RB3a", "RB3b", "RB3c"), "representation bias persists with unlimited data",
                         "RB1b's test on nets trained on every trainable pattern (RB3a-c)", t3["STL T"]["n"],
                         source="C95 §2.5")]
    for prefix, family in zip(TIDE_IDS, cfg.tide):
        p, t, s = pts[f"tide:{family}"], tables[f"tide:{family}"], sel[f"tide:{family}"]
        c, switches[f"{family} T'"] = switch_claim(f"{prefix}a", s, "T'", "C", p, cfg,
                                                   f"{family} family: together, T' switches from A towards C")
        claims += [c, share_claim(f"{prefix}b", t, "MTL T'", "C", p, cfg, rule="threshold", threshold=0.5,
                                  direction="greater",
                                  statement=f"{family} family: together, T' usually finds C"),
                   composite(prefix, (f"{prefix}a", f"{prefix}b"),
                             f"{family} family (B ∩ C = ∅, T' indifferent and T decisive alone, T suppresses A): the tide",
                             f"{prefix}a (McNemar A→C) and {prefix}b (MTL C-share of T' above 0.5)", t["MTL T'"]["n"]),
                   share_claim(f"{prefix}c", t, "STL T", "B", p, cfg, rule="threshold", threshold=DECISIVE,
                               direction="greater", statement=f"{family} family premise: alone, T always reaches B"),
                   share_claim(f"{prefix}d", t, "STL T'", "A", p, cfg, rule="band", band=BAND,
                               statement=f"{family} family premise: alone, T' reaches A about as often as C")]
    return claims, {"outcomes": tables, "switch_tests": switches,
                    "points": {name: describe_point(p, cfg) for name, p in pts.items()}}


def phase_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every point trained on all patterns: per condition and task, n, label rates, conditional
    shares (Wilson CIs), cap fraction and median chosen rate."""
    rows = []
    grid = runs[runs["all_patterns"]]
    for (fam, pref, hidden, cond, task), g in grid.groupby(["family", "pref", "hidden", "condition", "task"]):
        r = label_rates(g["label"], TASK_OTHER[task])
        other = TASK_OTHER[task]
        rows.append(dict(family=fam, pref=pref, hidden=hidden, condition=cond, task=task, n=r["n"],
                         A=r["A"]["rate"], other=r[other]["rate"], mixed=r["mixed"]["rate"],
                         share_other=r[f"share_{other}"]["rate"], share_other_ci=r[f"share_{other}"]["ci"],
                         mixed_ci=r["mixed"]["ci"], other_ci=r[other]["ci"], other_label=other,
                         cap_fraction=float((g["stopped_by"] == "cap").mean()), median_lr=float(g["lr"].median()),
                         fit_rate=float(g["fits"].mean())))
    return pd.DataFrame(rows)


def training_summary(runs: pd.DataFrame) -> list[dict]:
    """Per point and tuned condition: cap fraction, chosen rates and grid-edge shares."""
    rows = []
    nets = runs.drop_duplicates(["unit", "seed", "condition", "trained_tasks"])
    for (fam, pref, hidden, allp, cond, tasks), g in nets.groupby(
            ["family", "pref", "hidden", "all_patterns", "condition", "trained_tasks"]):
        rows.append(dict(family=fam, pref=pref, hidden=hidden, all_patterns=bool(allp), condition=cond,
                         trained=tasks, n=len(g), cap_fraction=float((g["stopped_by"] == "cap").mean()),
                         edge_low=float((g["lr_edge"] == "low").mean()), edge_high=float((g["lr_edge"] == "high").mean()),
                         median_stop_epoch=float(g["stop_epoch"].median()),
                         lr_chosen={f"{lr:g}": int(k) for lr, k in g["lr"].round(10).value_counts().sort_index().items()}))
    return rows


def analyse(runs, extras, cfg: Config, outdir: Path) -> Findings:
    claims, tables = claims_for(runs, cfg)
    phase = phase_table(runs)
    figures = [plot_outcomes(tables, cfg, outdir), plot_tide(runs, tables, cfg, outdir), plot_phase(phase, cfg, outdir),
               plot_examples(extras, runs, cfg, outdir)]
    tried = [{"stage": "v1 pilot", **p} for p in PILOT_V1] + [{"stage": "v2 pilot", **p} for p in PILOT_V2] + [
        {"stage": "v2 aborted full launch (wrong grid)", **ABORTED_LAUNCH}] + [
        {"stage": "v2 committed", "points": tables["points"],
         "grid": [cfg.train.lr * m for m in cfg.train.lr_grid], "patience": cfg.train.patience,
         "eval_every": cfg.train.eval_every, "min_delta": cfg.train.min_delta, "cap": cfg.train.epochs,
         "rates": {name: {cell: {lab: round(v[lab]["rate"], 3) for lab in ("A", v["other"], "mixed")}
                          for cell, v in t.items()} for name, t in tables["outcomes"].items()}}]
    halfwidth = {col: float(max((ci[1] - ci[0]) / 2 for ci in phase[col])) if len(phase) else float("nan")
                 for col in ("other_ci", "mixed_ci", "share_other_ci")}
    return Findings(claims=claims, constructions_tried=tried, figures=figures, superseded=SUPERSEDED,
                    tables={**tables, "phase": phase.to_dict(orient="records"), "training_by_point": training_summary(runs),
                            "phase_largest_ci_halfwidth": {"rate of the other minimum": halfwidth["other_ci"],
                                                           "mixed rate": halfwidth["mixed_ci"],
                                                           "conditional share": halfwidth["share_other_ci"]},
                            "v1_overlap_family": V1_OVERLAP_NOTE})


V1_OVERLAP_NOTE = ("Version 1's only 'tide' (overlap family, MTL T' C-rate .62/.69 vs STL .49/.48 at k = 6/8, 8 hidden "
                   "units) used C = b1⊕c2, which shares input bit b1 with B = b1⊕b2. That breaks the premise that B and "
                   "C do not overlap: units T builds for B carry half of C, so T' is drawn to C by what it shares with "
                   "T. It is attraction, not a tide (T' avoiding what T avoids), and is not counted as one here.")


# -- figures ----------------------------------------------------------------------------------
LABEL_COLORS = {"A": "#2ca02c", "B": "#ff7f0e", "C": "#9467bd", "mixed": "#c7c7c7"}
CELL_NAMES = {"STL-untuned": "STL\nlr 1", "STL": "STL\ntuned", "MTL": "MTL\ntuned", "MTL-untuned": "MTL\nlr 1"}
CONDITION_NOTE = ("STL: a net trained on one task (loss on that output only); MTL: one net trained on T and T' "
                  "together; tuned: learning rate chosen per seed on the halt set from the same grid for both; lr 1: "
                  "version 1's fixed rate.")


def err(value, ci) -> np.ndarray:
    """Error-bar lengths (2, n) from values and their (n, 2) intervals (never negative)."""
    value, ci = np.asarray(value, dtype=float), np.asarray(ci, dtype=float).reshape(-1, 2)
    return np.maximum(np.stack([value - ci[:, 0], ci[:, 1] - value]), 0)


def outcome_bars(ax, table: dict, title: str) -> None:
    """Stacked label rates (A, the task's other minimum, mixed) for each condition, T then T'."""
    xs, names = [], []
    for j, task in enumerate(TASKS):
        for i, (cond, _) in enumerate(CELLS):
            cell = table.get(f"{cond} {task}")
            if cell is None:
                continue
            x = j * (len(CELLS) + 1) + i
            bottom = 0.0
            for lab in ("A", cell["other"], "mixed"):
                r = cell[lab]["rate"]
                ax.bar(x, r, bottom=bottom, color=LABEL_COLORS[lab], width=0.8, edgecolor="white", lw=0.5)
                bottom += r
            lo, hi = cell["A"]["ci"]
            ax.errorbar(x, cell["A"]["rate"], yerr=err([cell["A"]["rate"]], [[lo, hi]]), fmt="none",
                        ecolor="k", capsize=2, lw=0.8)
            xs.append(x)
            names.append(CELL_NAMES[cond])
        ax.text(j * (len(CELLS) + 1) + 1.5, 1.04, f"task {task}", ha="center", fontsize=9, fontweight="bold")
    ax.set_xticks(xs, names, fontsize=7)
    ax.set(ylim=(0, 1.1), ylabel="share of runs", title=title)
    ax.title.set_fontsize(9)
    ax.grid(False, axis="x")


def label_legend(ax) -> None:
    """The label colours, above ``ax``'s title (attached to the axes so the layout keeps room for it)."""
    from matplotlib.patches import Patch
    handles = [Patch(color=LABEL_COLORS[k], label=v) for k, v in
               (("A", "A (shared minimum)"), ("B", "B (T's own)"), ("C", "C (T''s own)"), ("mixed", "mixed"))]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.1), ncol=4, fontsize=8, frameon=False)


def plot_outcomes(tables: dict, cfg: Config, outdir: Path) -> str:
    panels = [("exp1", "Exp. 1: neither task has a preference"),
              ("exp2", "Exp. 2: T prefers B"), ("rb3", "Exp. 1 on all patterns (RB3)")]
    fig, axes = plots.new_figure(ncols=3, width=4.4, height=3.6)
    for ax, (name, title) in zip(axes[0], panels):
        outcome_bars(ax, tables["outcomes"][name], title)
    label_legend(axes[0, 1])
    n = tables["outcomes"]["exp1"]["STL T"]["n"]
    plots.caption(fig, f"Which minimum each run reached (share of runs, every seed counted; n = {n} seeds per bar; "
                       f"error bars: 95% Wilson CI of the A share). Exp. 1/2: {tables['points']['exp1']} / "
                       f"{tables['points']['exp2']}. {CONDITION_NOTE}")
    return plots.save(fig, outdir / "outcomes.png")


def tide_points(cfg: Config) -> list[tuple[str, dict]]:
    pts = experiment_points(cfg)
    out = [(f"data q={pts['exp2']['pref']:g}\n{cfg.n_train} rows", pts["exp2"])]
    out += [(f"{f}\nall patterns", pts[f"tide:{f}"]) for f in cfg.tide]
    return out


def plot_tide(runs: pd.DataFrame, tables: dict, cfg: Config, outdir: Path) -> str:
    """Panel 1: C share of T' (among runs that reached A or C), STL vs MTL; panel 2: A→C vs C→A
    switches between a seed's STL and MTL run (the McNemar test's data); panel 3: mixed rate of T'."""
    fig, axes = plots.new_figure(ncols=3, width=4.2, height=3.5)
    pts = tide_points(cfg)
    x = np.arange(len(pts))
    styles = (("STL-untuned", "STL, lr 1", plots.PALETTE["STL"], "s", "--", -0.2),
              ("STL", "STL, tuned", plots.PALETTE["STL"], "o", "-", -0.07),
              ("MTL", "MTL, tuned", plots.PALETTE["MTL"], "o", "-", 0.07),
              ("MTL-untuned", "MTL, lr 1", plots.PALETTE["MTL"], "s", "--", 0.2))
    for cond, label, color, marker, ls, dx in styles:
        rates = []
        for _, p in pts:
            sel = at_point(runs, **p)
            rates.append(label_rates(sel[(sel["condition"] == cond) & (sel["task"] == "T'")]["label"], "C"))
        share = np.array([r["share_C"]["rate"] for r in rates])
        ci = np.array([r["share_C"]["ci"] for r in rates])
        axes[0, 0].errorbar(x + dx, share, yerr=err(share, ci), fmt=marker, color=color,
                            mfc="white" if ls == "--" else color, capsize=2, label=label)
        m = np.array([r["mixed"]["rate"] for r in rates])
        mci = np.array([r["mixed"]["ci"] for r in rates])
        axes[0, 2].errorbar(x + dx, m, yerr=err(m, mci), fmt=marker, color=color,
                            mfc="white" if ls == "--" else color, capsize=2, label=label)
    axes[0, 0].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0, 0].set(ylim=(0, 1), ylabel="C / (A + C) of T'", title="T' choice among its minima")
    axes[0, 2].axhline(MIXED_BOUND, color="grey", lw=0.8, ls=":")
    axes[0, 2].set(ylim=(0, 1), ylabel="share of T' runs that are mixed", title="T' runs in neither minimum")
    width = 0.35
    to_c, from_c = [], []
    for _, p in pts:
        t = switch_test(at_point(runs, **p), "T'", "C")
        to_c.append(t["to_C"])
        from_c.append(t["away_from_C"])
    ax = axes[0, 1]
    ax.bar(x - width / 2, to_c, width, color=LABEL_COLORS["C"], label="STL A → MTL C")
    ax.bar(x + width / 2, from_c, width, color=LABEL_COLORS["A"], label="STL C → MTL A")
    ax.set(ylabel="seeds", title="T' switches, tuned STL → tuned MTL")
    ax.legend(fontsize=7)
    for a in axes[0]:
        a.set_xticks(x, [name for name, _ in pts], fontsize=7)
        a.title.set_fontsize(9)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    n = int(runs.groupby("unit")["seed"].nunique().min())
    plots.caption(fig, f"Experiment 2 and the new tide families (H = {cfg.net.hidden[0]} hidden units; n = {n} seeds "
                       f"per point; error bars: 95% Wilson CIs). A tide is T' choosing C more often with T than alone "
                       f"(left: above the STL marker; middle: purple bar taller). {CONDITION_NOTE}")
    return plots.save(fig, outdir / "tide.png")


def plot_phase(phase: pd.DataFrame, cfg: Config, outdir: Path) -> str:
    """One message per panel: (a) T's knob makes T decisive (data family); (b) does T' follow (data
    family, C share)? (c, d) the new families across hidden-layer sizes."""
    fig, axes = plots.new_figure(ncols=4, width=3.4, height=3.1)
    styles = (("STL-untuned", "STL, lr 1", plots.PALETTE["STL"], "--"), ("STL", "STL, tuned", plots.PALETTE["STL"], "-"),
              ("MTL", "MTL, tuned", plots.PALETTE["MTL"], "-"), ("MTL-untuned", "MTL, lr 1", plots.PALETTE["MTL"], "--"))
    h = cfg.net.hidden[0]
    panels = [("data", "T", "pref", "share_other", "(a) data family: T's B share", "q (share of A≠B rows labelled B)"),
              ("data", "T'", "pref", "share_other", "(b) data family: T' C share", "q (share of A≠B rows labelled B)")]
    panels += [(f, "T'", "hidden", "share_other", f"({'cd'[i]}) {f} family: T' C share", "hidden units")
               for i, f in enumerate(cfg.tide[:2])]
    for ax, (fam, task, xcol, ycol, title, xlabel) in zip(axes[0], panels):
        sel = phase[(phase["family"] == fam) & (phase["task"] == task)]
        if xcol == "pref":
            sel = sel[sel["hidden"] == h]
        for cond, label, color, ls in styles:
            s = sel[sel["condition"] == cond].sort_values(xcol)
            if s.empty:
                continue
            ci = np.array(s[f"{ycol}_ci"].tolist())
            ax.errorbar(s[xcol], s[ycol], yerr=err(s[ycol], ci), color=color, ls=ls,
                        marker="o", ms=3, capsize=2, label=label)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(ylim=(0, 1.02), xlabel=xlabel, ylabel=f"{'B / (A + B)' if task == 'T' else 'C / (A + C)'}",
               title=title)
        if xcol == "hidden":
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(sel["hidden"].unique()), [str(v) for v in sorted(sel["hidden"].unique())])
        ax.title.set_fontsize(9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 2].legend(handles, labels, loc="lower center", ncol=2, fontsize=7)   # an empty region of the panel
    n = int(phase["n"].min()) if len(phase) else 0
    plots.caption(fig, f"Training on every trainable pattern; share among runs that reached one of the task's two "
                       f"minima (mixed runs are in summary.json). n = {n} seeds per point; error bars: 95% Wilson CIs "
                       f"(half-width ≤ {1.96 * 0.5 / np.sqrt(max(n, 1)):.3f} of all runs). (a, b) {h} hidden units. "
                       + CONDITION_NOTE)
    return plots.save(fig, outdir / "phase_diagram.png")


PICTURE_NOTE = (f"Top: input→hidden weights (red +, blue −); a unit is marked A/B/C when that feature's two input "
                f"lines carry ≥ {UNIT_SHARE:.0%} of its |weights|. Bottom: each output's sensitivity to each unit "
                f"(mean |∂out/∂h|, ÷ the output's largest).")


def draw_picture(ax_w, ax_s, pic: dict, title: str, outputs: tuple[str, ...] = TASKS) -> None:
    """Top: input→hidden weights (rows: input lines a1..c2; columns: hidden units, each marked A/B/C
    by the feature whose two input lines carry ≥ 60 % of its |weights|); bottom: each output's
    sensitivity to each unit (mean |∂out/∂h| over all patterns, divided by that output's largest;
    dotted: the 10 % "used" line)."""
    w = np.array(pic["input_weights"])
    lim = max(float(np.abs(w).max()), 1e-6)
    im = ax_w.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax_w.figure.colorbar(im, ax=ax_w, shrink=0.8, label="weight")
    units = [f"{u + 1}\n{f}" for u, f in enumerate(pic["unit_feature"])]
    ax_w.set_xticks(range(w.shape[1]), units, fontsize=7)
    ax_w.set_yticks(range(w.shape[0]), pic["bits"], fontsize=7)
    ax_w.set_title(title, fontsize=8)
    ax_w.grid(False)
    sens = np.array(pic["sensitivity"])
    sens = sens / np.maximum(sens.max(axis=1, keepdims=True), 1e-12)
    x = np.arange(sens.shape[1])
    width = 0.8 / len(outputs)
    for j, task in enumerate(outputs):
        ax_s.bar(x + (j - (len(outputs) - 1) / 2) * width, sens[TASKS.index(task)], width,
                 color={"T": "#444444", "T'": "#9467bd"}[task], label=f"output {task}")
    ax_s.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax_s.set_xticks(x, [str(u + 1) for u in x], fontsize=7)
    ax_s.set(xlabel="hidden unit", ylabel="sensitivity\n(÷ output's largest)", xlim=(-0.6, len(x) - 0.4), ylim=(0, 1.05))
    ax_s.legend(fontsize=6)


def plot_examples(extras: dict, runs: pd.DataFrame, cfg: Config, outdir: Path) -> str:
    """Two saved MTL runs: one of experiment 1 where both tasks reached A, and the first saved run of
    a tide family (else experiment 2) where the tasks split (T in B, T' in C)."""
    pts = experiment_points(cfg)

    def saved(point: dict) -> list[tuple[int, dict]]:
        units = set(at_point(runs, **point)["unit"])
        return sorted(((int(seed), pic) for unit, seeds in extras.items() if unit in units
                       for seed, pic in seeds.items()), key=lambda t: t[0])

    split = next(((point, (s, p)) for point in [*(pts[f"tide:{f}"] for f in cfg.tide), pts["exp2"]]
                  for s, p in saved(point) if p["labels"] == ["B", "C"]), (pts["exp2"], None))
    picks = [(pts["exp1"], next(((s, p) for s, p in saved(pts["exp1"]) if p["labels"] == ["A", "A"]), None),
              "both tasks in A"), (*split, "tasks split")]
    fig, axes = plots.new_figure(ncols=2, nrows=2, width=4.4, height=3.4)
    for col, (point, hit, what) in enumerate(picks):
        if hit is None:
            for r in range(2):
                axes[r, col].set_axis_off()
            axes[0, col].text(0.5, 0.5, f"no saved run with {what}", ha="center", transform=axes[0, col].transAxes)
            continue
        seed, pic = hit
        where = f"{point['family']} {'q' if point['family'] == 'data' else 'knob'}={point['pref']:g}"
        draw_picture(axes[0, col], axes[1, col], pic, f"MTL, {where}, seed {seed} ({what}):\n"
                                                      f"T → {pic['labels'][0]}, T' → {pic['labels'][1]}, lr {pic['lr']:g}")
    plots.caption(fig, f"{PICTURE_NOTE} Any run: python experiments/representation_bias.py --show-run SEED "
                       f"[--point family:knob --all-patterns].")
    return plots.save(fig, outdir / "hidden_units.png")


# -- one run, inspected -----------------------------------------------------------------------
def show_run(argv: list[str]) -> int:
    """``--show-run SEED``: retrain one seed of one point (runs are deterministic: same stream, key,
    rows and initial weights as in the experiment) and draw the hidden layer of its tuned STL-T,
    STL-T' and MTL nets, units labelled A/B/C."""
    from mtlmech.pipeline.cli import Parser
    ap = Parser(prog="experiments/representation_bias.py --show-run SEED", description=show_run.__doc__)
    ap.add_argument("--show-run", type=int, required=True, metavar="SEED")
    ap.add_argument("--point", help="family:knob[:hidden] (default: experiment 1's point)")
    ap.add_argument("--all-patterns", action="store_true", help="the point trained on every trainable pattern")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full", help="training settings of this profile")
    ap.add_argument("--stream", choices=("confirm", "pilot", "quick"), help="seed stream (default: the profile's)")
    ap.add_argument("--backend", choices=BACKENDS, default="auto", help="trainer (as the run's)")
    ap.add_argument("--out", type=Path, help="PNG to write (default: results/show_run/<point>_seed<SEED>.png)")
    ns = ap.parse_args(argv)
    profile = {k: v for k, v in PROFILES[ns.profile].items() if k != "seeds"}
    cfg = Config(**{k: v for k, v in profile.items() if k != "train"})
    cfg = replace(cfg, train=replace(cfg.train, **profile.get("train", {})))
    stream = ns.stream or ("quick" if ns.profile == "quick" else "confirm")
    family, pref, hidden = parse_point(ns.point or cfg.exp1, cfg.net.hidden[0])
    point = dict(family=family, pref=pref, hidden=hidden, all_patterns=ns.all_patterns)
    rb, trained = train_point([ns.show_run], cfg=cfg, key=(NAME, VERSION, stream, *point.values()), device="cpu",
                              backend=ns.backend, **point)
    rows = label_rows(rb, trained, replace(cfg, n_examples=0), "cpu", **point)[ns.show_run]["rows"]
    r = trained.result
    fig, axes = plots.new_figure(ncols=3, nrows=2, width=4.0, height=2.6)
    tuned = [(i, c) for i, (_, c) in enumerate(trained.members) if c.name in ("STL", "MTL")]
    for col, (i, c) in enumerate(tuned):
        snapshot = r.shared_snapshot if c.name == "MTL" else r.task_params(TASKS.index(c.tasks[0]))
        pic = unit_picture(r.spec, [p[i:i + 1] for p in snapshot], rb, "cpu")
        got = {row["task"]: row for row in rows if row["condition"] == c.name and row["trained_tasks"] == "+".join(c.tasks)}
        what = ", ".join(f"{t} → {got[t]['label']} ({got[t]['score_A']:.2f} agree with A)" for t in c.tasks)
        draw_picture(axes[0, col], axes[1, col], pic, f"{c.name} on {' + '.join(c.tasks)}: {what}\n"
                                                      f"lr {trained.choices[i]['lr']:g}, stopped at epoch "
                                                      f"{int(r.stop_epoch[i])} ({r.stopped_by[i]})", outputs=c.tasks)
    plots.caption(fig, f"Seed {ns.show_run} ({stream} stream, {ns.profile} profile), {describe_point(point, cfg)}. "
                       f"{PICTURE_NOTE} STL: trained on one task; MTL: on both; learning rates chosen on the halt set.")
    out = ns.out or Path("results/show_run") / (f"{family}_{pref:g}_H{hidden}{'_all' if ns.all_patterns else ''}"
                                                f"_seed{ns.show_run}.png")
    plots.save(fig, out)
    for row in rows:
        print(f"{row['condition']:12s} {row['task']:3s} label {row['label']:5s} score_A {row['score_A']:.3f} "
              f"lr {row['lr']:g} stop {row['stop_epoch']} ({row['stopped_by']})")
    committed = Path(__file__).resolve().parent.parent / "figures" / NAME / "runs.csv"
    if stream == "confirm" and ns.profile == "full" and committed.exists():
        done = pd.read_csv(committed)
        if "score_A" in done and "trained_tasks" in done:
            done = at_point(done, **point)
            done = done[done["seed"] == ns.show_run]
            if len(done):
                same = all(done[(done["condition"] == row["condition"]) & (done["trained_tasks"] == row["trained_tasks"])
                                & (done["task"] == row["task"])]["label"].tolist() == [row["label"]] for row in rows)
                print(f"committed runs.csv: {'same labels' if same else 'DIFFERENT labels'} as this retrained seed")
    print(f"wrote {out}")
    return 0


EXPERIMENT = Experiment(name=NAME, doc=__doc__, config_cls=Config, profiles=PROFILES, version=VERSION,
                        make_units=make_units, analyse=analyse,
                        commands={"--show-run": Command(
                            "retrain one seed of one point and draw its hidden units, then exit "
                            "(its own options: --show-run SEED --help)", show_run, metavar="SEED")})

if __name__ == "__main__":
    sys.exit(EXPERIMENT.main())
