"""Saved results as pandas DataFrames: ``mtlmech.load`` (runs with their configuration) and
``mtlmech.load_claims`` (a summary's claims).

    import mtlmech
    runs = mtlmech.load("parity_tasks")                 # figures/parity_tasks/runs.csv + units.json
    runs.groupby(["point.n_train", "condition"])["test_error"].mean()
    mtlmech.load_claims("parity_tasks")[["id", "verdict", "effect", "ci_low", "ci_high"]]

``out`` is an output root as given to ``--out`` (default: ``figures/`` of the project for the full
profile, ``results/quick/`` for ``profile="quick"``); the experiment's files are in
``<out>/<experiment>/``.

Every read is checked first (:func:`mtlmech.pipeline.outputs.checked_folder`): a file that differs
from what the folder's manifest records, a folder a killed run left half-committed, or a file that
does not parse as what it should be is an :class:`~mtlmech.pipeline.outputs.OutputsError` (a
ValueError) naming the file, never wrong data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .experiment import default_out
from .outputs import OutputsError, checked_folder, read_runs


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_runs_file(path: Path) -> pd.DataFrame:
    """``runs.csv`` read, or an :class:`OutputsError` naming it (empty, binary, not a table)."""
    try:
        return read_runs(path, dtype={"unit": str})
    except (ValueError, OSError, pd.errors.ParserError) as exc:   # EmptyDataError and UnicodeDecodeError are ValueErrors
        raise OutputsError(f"{path} is unreadable ({_first_line(exc)})") from None


def read_json_file(path: Path) -> Any:
    """A JSON file read, or an :class:`OutputsError` naming it (truncated, garbage, a folder)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise OutputsError(f"{path} is unreadable ({_first_line(exc)})") from None


def read_summary(path: Path) -> dict:
    """A ``summary.json`` checked against its folder's manifest and read: an :class:`OutputsError`
    naming it when it was changed, does not parse, or has no list of claims."""
    path = Path(path)
    checked_folder(path.parent, [path.name])
    summary = read_json_file(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("claims"), list) \
            or not all(isinstance(c, dict) for c in summary["claims"]):
        raise OutputsError(f"{path} is not an experiment summary (no list of claims)")
    return summary


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
    checked_folder(folder, ["runs.csv", "units.json"])
    runs = read_runs_file(runs_path)
    if "unit" not in runs.columns:
        raise OutputsError(f"{runs_path} has no unit column (columns: {', '.join(map(str, runs.columns[:8]))})")
    units_doc = read_json_file(units_path)
    if not isinstance(units_doc, dict) or not all(isinstance(k, dict) for k in units_doc.values()):
        raise OutputsError(f"{units_path} is not a table of unit keys (a JSON object of objects)")
    units = units_table(units_doc) if units_doc else pd.DataFrame(index=pd.Index([], name="unit"))
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
    summary = read_summary(path)
    rows = []
    for claim in summary["claims"]:
        details = claim.get("details", {})
        details = dict(details) if isinstance(details, dict) else {}
        ci = claim.get("ci") if isinstance(claim.get("ci"), (list, tuple)) and len(claim.get("ci")) == 2 \
            else [None, None]
        rows.append({**{k: claim.get(k) for k in CLAIM_COLUMNS}, "experiment": summary.get("experiment", experiment),
                     "ci_low": ci[0], "ci_high": ci[1], "p_holm": details.pop("p_holm", None), "details": details})
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
