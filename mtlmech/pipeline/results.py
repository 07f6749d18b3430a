"""Saved results as pandas DataFrames: ``mtlmech.load`` (runs with their configuration) and
``mtlmech.load_claims`` (a summary's claims).

    import mtlmech
    runs = mtlmech.load("parity_tasks")                 # figures/parity_tasks/runs.csv + units.json
    runs.groupby(["point.n_train", "condition"])["test_error"].mean()
    mtlmech.load_claims("parity_tasks")[["id", "verdict", "effect", "ci_low", "ci_high"]]

``out`` is an output root as given to ``--out`` (default: ``figures/`` of the project for the full
profile, ``results/quick/`` for ``profile="quick"``); the experiment's files are in
``<out>/<experiment>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .experiment import default_out
from .outputs import read_runs


def experiment_dir(experiment: str, out: Path | str | None = None, *, profile: str = "full") -> Path:
    """``<out>/<experiment>``; a FileNotFoundError names the folder when it does not exist."""
    if profile not in ("quick", "full"):
        raise ValueError(f"profile must be quick or full, got {profile!r}")
    root = Path(out) if out is not None else default_out(profile)
    folder = root / experiment
    if not folder.is_dir():
        known = sorted(p.parent.name for p in root.glob("*/summary.json")) if root.is_dir() else []
        raise FileNotFoundError(f"no results for {experiment!r} in {root}"
                                + (f" (found: {', '.join(known)})" if known else " (run the experiment first)"))
    return folder


def flatten(key: dict, prefix: str = "") -> dict[str, Any]:
    """A nested unit key as flat columns: ``{"config": {"lr": 0.5}}`` → ``{"config.lr": 0.5}``.
    Lists become tuples, so the columns can be grouped by."""
    flat: dict[str, Any] = {}
    for name, value in key.items():
        column = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, column + "."))
        else:
            flat[column] = tuple(value) if isinstance(value, list) else value
    return flat


def units_table(units: dict[str, dict]) -> pd.DataFrame:
    """One row per unit hash (the index), one column per flattened key field."""
    table = pd.DataFrame.from_dict({h: flatten(k) for h, k in units.items()}, orient="index")
    table.index.name = "unit"
    # top-level fields (experiment, version, device) first, then the sweep point, then the config
    return table[sorted(table.columns, key=lambda c: ("." in c, not c.startswith("point."), c))]


def load(experiment: str, out: Path | str | None = None, *, profile: str = "full") -> pd.DataFrame:
    """The tidy runs of ``experiment`` (one row per seed × condition × task, as in ``runs.csv``) with
    the configuration of each row's unit joined in as columns: ``experiment``, ``version``,
    ``device``, ``config.<field>`` (the config the unit was computed with) and ``point.<name>`` (its
    sweep point). A unit-key column whose name ``runs.csv`` already uses is prefixed ``unit.``.
    """
    folder = experiment_dir(experiment, out, profile=profile)
    runs_path, units_path = folder / "runs.csv", folder / "units.json"
    if not runs_path.exists():
        raise FileNotFoundError(f"{runs_path} does not exist (run the experiment first)")
    if not units_path.exists():
        raise FileNotFoundError(f"{units_path} does not exist: results written before units.json was recorded; "
                                f"rerun the experiment (cached seeds are reused) to write it")
    runs = read_runs(runs_path)
    units = units_table(json.loads(units_path.read_text(encoding="utf-8")))
    missing = sorted(set(runs["unit"]) - set(units.index))
    if missing:
        raise ValueError(f"{runs_path} has rows of units missing from {units_path.name}: {', '.join(missing[:5])}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    units = units.rename(columns={c: f"unit.{c}" for c in units.columns if c in runs.columns})
    return runs.join(units, on="unit", validate="many_to_one")


CLAIM_COLUMNS = ("experiment", "id", "verdict", "effect", "ci_low", "ci_high", "p_value", "p_holm", "n",
                 "direction", "statement", "source", "test", "figure", "details")


def load_claims(experiment: str, out: Path | str | None = None, *, profile: str = "full") -> pd.DataFrame:
    """The claims of ``experiment``'s ``summary.json``, one row each: id, verdict, effect with its 95 %
    CI (``ci_low``, ``ci_high``), raw and Holm-adjusted p-values, n, direction, statement, source,
    test, figure and the remaining ``details`` (a dict)."""
    path = experiment_dir(experiment, out, profile=profile) / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (run the experiment first)")
    summary = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for claim in summary["claims"]:
        details = dict(claim.get("details", {}))
        ci = claim.get("ci") or [None, None]
        rows.append({**{k: claim.get(k) for k in CLAIM_COLUMNS}, "experiment": summary["experiment"],
                     "ci_low": ci[0], "ci_high": ci[1], "p_holm": details.pop("p_holm", None), "details": details})
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
