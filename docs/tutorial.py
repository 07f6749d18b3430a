# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why does multitask learning help? One mechanism in a few minutes
#
# This notebook walks through one of Caruana's mechanism experiments end to end: the **C93 parity
# tasks**. Eight random bits B1..B8; P is the parity of B2..B6, and four tasks combine B1 with P:
#
# | task | target |
# |---|---|
# | Task1 | B1 ∨ P |
# | Task2 | ¬B1 ∨ P |
# | Task3 | B1 ∧ P |
# | Task4 | ¬B1 ∧ P |
#
# On half the rows B1 *blocks* P from Task1 (where B1 = 1, Task1 is 1 whatever P is), so a net trained
# on Task1 alone sees P only on the other half. Tasks 2-4 need P on the rows where Task1 does not:
# trained together (multitask learning, MTL), the four tasks give the shared hidden layer more
# evidence about P than Task1 alone (single-task learning, STL) does. The claim (DA4 in
# [CLAIMS.md](CLAIMS.md)): an MTL net generalises better on Task1 than an STL net.
#
# We will build the problem, train a few hundred seeds of STL and MTL in one batch with the fair
# protocol (the same learning-rate grid for both, chosen per seed on a halt set; patience stopping),
# see what each net learned, look at its hidden units, and finally load the committed results and
# redraw the paper's figure.
#
# Run it as a notebook (`jupyter lab docs/tutorial.ipynb`) or as a script
# (`python docs/tutorial.py`). `MTLMECH_TUTORIAL_SMALL=1` shrinks every size so that the test suite
# runs it in seconds (`tests/test_tutorial.py`); the numbers are then only a smoke test.

# %%
import mtlmech  # noqa: I001  (first: it sets the OpenMP wait policy before torch loads)
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mtlmech.measures import probes
from mtlmech.stats.paired import group_means, paired
from mtlmech.engine.nets import NetConfig
from mtlmech.protocol import score_rows, stl_mtl_conditions, train_conditions
from mtlmech.problems.tasks import make_problem
from mtlmech.engine.training import TrainSpec
from mtlmech.pipeline.retraining import RetrainError

SMALL = os.environ.get("MTLMECH_TUTORIAL_SMALL") == "1"
SEEDS = 12 if SMALL else 200          # seeds per condition (a few minutes on a laptop)
N_TRAIN = 128                         # training rows per seed (with replacement from the 256 patterns)
N_HALT = 64 if SMALL else 128         # halt rows: early stopping and the learning-rate choice
N_TEST = 200 if SMALL else 1000       # clean test rows
NET = NetConfig(hidden=(8,) if SMALL else (16,))
SPEC = TrainSpec(lr=0.5, momentum=0.9, eval_every=10, min_delta=1e-3,
                 epochs=1500 if SMALL else 20_000, patience=20 if SMALL else 100,
                 lr_grid=(1.0, 4.0) if SMALL else (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0))
pd.set_option("display.precision", 4)
try:
    from IPython.display import display  # a table in the notebook, printed when run as a script
except ImportError:
    display = print
print(f"{'small' if SMALL else 'full'} sizes: {SEEDS} seeds, net 8-{NET.hidden[0]}-4, "
      f"learning rates {[SPEC.lr * m for m in SPEC.lr_grid]}")

# %% [markdown]
# ## 1. Build the problem
#
# Problems are registered by name (`python run_all.py --list` lists them). A problem knows its
# input space, its named features (here B1 and P) and its tasks; it draws rows, with the features'
# values kept per row.

# %%
problem = make_problem("c93_parity")
print(problem.description)
patterns = problem.all_patterns()                       # all 256 bit patterns, clean targets
table = pd.DataFrame(patterns.x[:, :6].astype(int), columns=[f"B{i}" for i in range(1, 7)])
table["P"] = patterns.features["P"].astype(int)
for k, name in enumerate(problem.task_names):
    table[name] = patterns.y_clean[:, k].astype(int)
display(table.sample(8, random_state=0))

# %% [markdown]
# ## 2. Train STL and MTL, paired by seed, in one batch
#
# `stl_mtl_conditions` gives two conditions: STL (loss on Task1 only) and MTL (loss on all four
# tasks, Task1 reported). `train_conditions` draws each seed's training, halt and test rows once;
# both conditions train on the same rows from the same initial weights, at every learning rate of
# the grid, all in one batch. Per seed and condition it keeps the rate with the lowest Task1 halt
# error (the test rows never enter that choice). `score_rows` turns the result into one row per
# seed and condition.

# %%
conditions = stl_mtl_conditions(problem, ["Task1"])
start = time.perf_counter()
trained = train_conditions(problem, conditions, list(range(SEEDS)), key=("tutorial", N_TRAIN), n_train=N_TRAIN,
                           n_halt=N_HALT, n_test=N_TEST, net=NET, train_spec=SPEC)
print(f"trained {len(trained.members)} chosen nets (of {len(trained.members) * len(SPEC.lr_grid)}) "
      f"in {time.perf_counter() - start:.1f} s with the {trained.result.backend} trainer")
runs = pd.DataFrame([{**row, "seed": seed} for seed, record in score_rows(trained, n_train=N_TRAIN).items()
                     for row in record["rows"]])
display(runs.groupby("condition")[["test_error", "train_error", "lr", "stop_epoch"]].mean())

# %% [markdown]
# Did every net train to a real stopping point, and which rates were chosen? A comparison is only
# fair if neither condition was cut off by the epoch cap (the project's rule: at most 5 % of runs),
# and the grid is wide enough if few seeds chose an edge (a pilot of 40 seeds with the grid ending
# at 0.5 × 8 had 40 % of the MTL nets choose its top rate, hence the grid up to 0.5 × 32).

# %%
print(pd.crosstab(runs["condition"], runs["stopped_by"]))
print(pd.crosstab(runs["condition"], runs["lr"]))
print("share at a grid edge:", runs.assign(edge=runs["lr_edge"] != "").groupby("condition")["edge"].mean().round(3).to_dict())

# %% [markdown]
# The paired comparison: per seed, MTL − STL Task1 test error; its mean with a 95 % paired
# bootstrap CI and one-sided Wilcoxon p-values (`p_less`: MTL better).

# %%
comparison = paired(runs, metric="test_error", treatment="MTL", control="STL")
display(comparison[["n", "mean_control", "mean_treatment", "diff", "ci_low", "ci_high", "p_less", "frac_treatment_better"]])

# %% [markdown]
# ## 3. What did each net learn?
#
# Where B1 = 0, Task1 *is* P. So on those 128 patterns, the share of a net's Task1 decisions that
# agree with P says whether it found the parity feature (1.0) or not (about 0.5, guessing).
# `probes.agreement` scores every member at once; `probes.classify` labels a net "P" when it agrees
# on at least 90 % of those rows.

# %%
spec, task1 = trained.result.spec, problem.task_index("Task1")
params = trained.result.task_params(task1)              # each net at its Task1 early-stopping snapshot
unblocked = patterns.features["B1"] == 0
x = torch.as_tensor(patterns.x[unblocked], dtype=params[0].dtype)
outputs = probes.outputs_on(spec, params, x)            # (nets, rows, outputs)
agree_p = probes.agreement(outputs, patterns.features["P"][unblocked])[:, task1].numpy()
learned = pd.DataFrame({"condition": [c.name for _, c in trained.members], "agreement_with_P": agree_p,
                        "found": probes.classify(agree_p, first="P", second="not P")})
print(learned.groupby("condition")["agreement_with_P"].describe()[["mean", "25%", "50%", "75%"]])
found = pd.crosstab(learned["condition"], learned["found"], normalize="index")
display(found)
print(f"found P: MTL {found.loc['MTL'].get('P', 0.0):.1%} of nets, STL {found.loc['STL'].get('P', 0.0):.1%}")

# %% [markdown]
# ## 4. Hidden units
#
# `probes.hidden_sensitivity` measures how much each output relies on each hidden unit (mean
# |∂output/∂hidden unit| over the patterns). `probes.used_units` marks the units an output relies on
# (at least 10 % of its strongest unit). In MTL nets, `probes.rank_correlation` says how similarly
# Task1 and the other tasks use the hidden layer: the sharing that lets their evidence about P reach
# Task1.

# %%
x_all = torch.as_tensor(patterns.x, dtype=params[0].dtype)
sens = probes.hidden_sensitivity(spec, params, x_all)   # (nets, outputs, hidden units)
used = probes.used_units(sens)[:, task1].sum(dim=1).numpy()
is_mtl = np.array([c.name == "MTL" for _, c in trained.members])
sharing = probes.rank_correlation(sens[torch.as_tensor(is_mtl)])[:, task1, :].numpy()
print(f"hidden units Task1 relies on: STL {used[~is_mtl].mean():.1f}, MTL {used[is_mtl].mean():.1f} "
      f"(of {NET.hidden[0]})")
print("MTL nets, rank correlation of Task1's hidden-unit reliance with "
      + ", ".join(f"{name}: {sharing[:, k].mean():+.2f}" for k, name in enumerate(problem.task_names) if k != task1))

# %%
seed = int(runs.loc[runs["condition"] == "MTL", "seed"].iloc[0])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, layout="constrained")
for ax, name in zip(axes, ["STL", "MTL"]):
    i = trained.member_index(seed, name)[0]
    image = ax.imshow(sens[i].numpy(), aspect="auto", cmap="viridis")
    ax.set(title=f"{name}, seed {seed}", xlabel="hidden unit", yticks=range(problem.n_tasks),
           yticklabels=problem.task_names)
fig.colorbar(image, ax=axes, label="|∂output/∂hidden|")
_ = fig.suptitle("Which hidden units each output relies on\n(STL trains Task1 only: its other rows are untrained)",
                 fontsize=10)

# %% [markdown]
# ## 5. The committed results
#
# `mtlmech.load_claims` reads an experiment's `summary.json`: one row per claim with its verdict,
# effect, CI and p-values. `mtlmech.load` reads its `runs.csv` with each run's configuration joined
# in (`config.*`, `point.*` columns); it needs the `units.json` that experiments write next to
# `runs.csv`. The committed `figures/parity_tasks/` are the version-2 (fair protocol) results and
# have it; results written before `units.json` existed cannot be joined, and the cell then says so
# and falls back to reading `runs.csv` as it is.

# %%
claims = mtlmech.load_claims("parity_tasks")
print(claims[["id", "verdict", "effect", "ci_low", "ci_high", "p_value", "n"]].to_string(index=False))
try:
    committed = mtlmech.load("parity_tasks")
except FileNotFoundError as exc:
    print(f"mtlmech.load: {exc}")
    from mtlmech.pipeline.results import experiment_dir
    committed = pd.read_csv(experiment_dir("parity_tasks") / "runs.csv")
print(f"{len(committed)} committed rows, {committed['seed'].nunique()} seeds, sizes {sorted(committed['n_train'].unique().tolist())}")

# %% [markdown]
# Redraw the paper's figure: Task1 test error against training-set size, STL vs MTL (C93's result,
# the left panel of our `figures/parity_tasks/error_vs_n.png`), with 95 % t-intervals over seeds. Our
# own run from section 2 is the star at n = 128.

# %%
task1_rows = committed[(committed["task"] == "Task1") & committed["condition"].isin(["STL", "MTL"])]
means = group_means(task1_rows, metric="test_error", by=["condition", "n_train"])
fig, ax = plt.subplots(figsize=(5, 3.6))
colors = {"STL": "#1f77b4", "MTL": "#d62728"}
for name, g in means.groupby("condition"):
    ax.errorbar(g["n_train"], g["mean"], yerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]], marker="o",
                capsize=3, color=colors[name], label=f"{name} (committed)")
    ours = runs.loc[runs["condition"] == name, "test_error"]
    ax.plot([N_TRAIN + 4], [ours.mean()], marker="*", ms=10, color=colors[name], ls="none",
            label=f"{name} (this notebook, {len(ours)} seeds)")
ax.set(xlabel="training-set size (patterns)", ylabel="Task1 test error rate", title="C93 parity tasks")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 6. Re-train one committed run
#
# Runs are deterministic, so `mtlmech.retrain(experiment, unit, seed)` trains one committed run
# again and returns its nets (a `Trained`: one net per condition, the learning rate chosen on the
# halt set), after checking that they reproduce the committed row exactly. That is how to inspect
# what any single committed run learned, with the probes above. It needs `units.json`.

# %%
if "unit" in committed and "config.train.lr" in committed:
    row = committed[committed["condition"] == "MTL"].iloc[0]
    try:
        again = mtlmech.retrain("parity_tasks", row["unit"], int(row["seed"]))
    except RetrainError as exc:   # e.g. results made on a CPU whose floating-point arithmetic differs
        print(f"does not reproduce here: {exc}")
    else:
        print(f"re-trained unit {row['unit']} seed {row['seed']}: {[c.name for _, c in again.members]}, "
              f"chosen rates {[ch['lr'] for ch in again.choices]}; its rows match runs.csv")
else:
    print("the committed parity_tasks results predate units.json: they cannot be re-trained")
