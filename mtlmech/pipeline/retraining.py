"""Re-train one saved run and get its nets back: ``mtlmech.retrain(experiment, unit, seed)``.

    import mtlmech
    runs = mtlmech.load("parity_tasks", out="results/quick")
    row = runs.iloc[0]
    trained = mtlmech.retrain("parity_tasks", row["unit"], row["seed"], out="results/quick")
    trained.members          # [(seed, Condition), ...]: one net per condition, the grid point chosen on the halt set
    trained.choices          # per member: the chosen learning rate, multipliers, grid edge
    trained.result.task_snapshots   # the parameters at each task's best halt epoch

Runs are deterministic and a seed's numbers do not depend on its batch-mates, so training one seed
again gives exactly the nets behind its rows in ``runs.csv``. The unit is found by its hash (the
``unit`` column; a unique prefix will do) in ``units.json``; the config comes from the saved
``summary.json``'s provenance; the seed stream, device type and trainer backend come from the
unit's key. The retrained run is scored and compared with the saved rows: a mismatch (the code or
the machine changed since the results were written) is an error, unless ``check=False``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .cli import RunContext, UsageError, saved_config
from .experiment import Experiment, load_script
from .outputs import OutputsError, checked_folder, read_runs
from .results import experiment_dir, read_json_file
from .runner import Unit


class RetrainError(RuntimeError):
    """A run that cannot be re-trained, or whose re-training does not reproduce the saved rows."""


def config_from_dict(config_cls: type, data: dict) -> Any:
    """``config_cls`` rebuilt from ``dataclasses.asdict`` output read back from JSON."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(config_cls)})
    if unknown:
        raise RetrainError(f"the saved config has fields {unknown} that {config_cls.__qualname__} no longer has")
    try:
        return saved_config(config_cls, data)
    except UsageError as exc:
        raise RetrainError(f"the saved config no longer builds {config_cls.__qualname__}: {exc}") from None


def registered_experiments(root: Path | None = None) -> dict[str, Path]:
    """name → file of every experiment the project registers: the ``experiments/*.py`` files the
    suite discovers (:func:`mtlmech.suite.discover`), listed from the folder, never built from a name."""
    from .paths import project_root
    folder = (project_root() if root is None else Path(root)) / "experiments"
    return {path.stem: path for path in sorted(folder.glob("*.py"))
            if path.is_file() and path.stem.isidentifier() and not path.stem.startswith("_")}


def find_experiment(name: str, root: Path | None = None) -> Experiment:
    """The experiment the project registers under ``name`` (``EXPERIMENT``, or ``TOOL`` for compare).
    ``name`` is looked up in :func:`registered_experiments`; it is never used as a path, so a name
    read from a results file (``"../../elsewhere/code"``) cannot make this import any other file."""
    known = registered_experiments(root)
    if not isinstance(name, str) or name not in known:
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}…"
        raise RetrainError(f"no registered experiment {shown!r} (known: {', '.join(sorted(known))})")
    path = known[name]
    module = load_script(path)
    exp = getattr(module, "EXPERIMENT", None) or getattr(module, "TOOL", None)
    if not isinstance(exp, Experiment):
        raise RetrainError(f"{path} defines no EXPERIMENT")
    if exp.name != name:
        raise RetrainError(f"{path} registers experiment {exp.name!r}, not {name!r}")
    return exp


def _missing(value: Any) -> bool:
    """None, an empty string, NaN or pandas' NA (a missing value in a string column of runs.csv)."""
    if value is None or (isinstance(value, str) and value == ""):
        return True
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def same_value(new: Any, saved: Any) -> bool:
    """A freshly computed row value equals the value read back from runs.csv (exactly, for numbers)."""
    if _missing(new) or _missing(saved):
        return _missing(new) and _missing(saved)
    if isinstance(new, (int, float)) and not isinstance(new, bool):
        try:
            return float(saved) == float(new)
        except (TypeError, ValueError):
            return False
    return str(new) == str(saved)


# Across arithmetics (another trainer or kernel version: docs/reproducibility.md) numbers agree to
# rounding, amplified by training; what a run *chose* must still be the same.
RTOL, ATOL = 1e-3, 1e-6
CHOICE_COLUMNS = frozenset({"lr", "lr_mult", "hidden_lr_mult", "weight_decay", "grid_size"})


def close_value(column: str, new: Any, saved: Any) -> bool:
    """Equal within the documented tolerance (:data:`RTOL`, :data:`ATOL`) for measured floats; exactly
    for everything a run chose or counted (learning rate, grid point, epochs, stop reason, flags)."""
    if column in CHOICE_COLUMNS or not isinstance(new, float) or _missing(new) or _missing(saved):
        return same_value(new, saved)
    try:
        return math.isclose(float(saved), new, rel_tol=RTOL, abs_tol=ATOL)
    except (TypeError, ValueError):
        return False


def compare_rows(new_rows: list[dict], saved: pd.DataFrame, *, exact: bool = True) -> list[str]:
    """Differences between the rows a re-trained seed scores and its saved rows, as short texts:
    every value exactly (``exact``: the same arithmetic), or with :func:`close_value` (another one).
    A column the saved runs.csv does not have at all (a measure added to ``score_rows`` after the
    runs were written, e.g. ``saturated``) is not compared: it was never saved."""
    if len(new_rows) != len(saved):
        return [f"{len(new_rows)} rows now, {len(saved)} saved"]
    problems = []
    for i, (new, (_, old)) in enumerate(zip(new_rows, saved.iterrows())):
        for column, value in new.items():
            if column not in old.index:
                continue
            if not (same_value(value, old[column]) if exact else close_value(column, value, old[column])):
                problems.append(f"row {i} ({new.get('condition', '?')}, {new.get('task', '?')}): "
                                f"{column} = {value!r} now, {old[column]!r} saved")
    return problems


def _without_backend(key: dict) -> dict:
    return {k: v for k, v in key.items() if k != "backend"}


def _unit_hash(unit: str, units: dict[str, dict], path: Path) -> str:
    matches = [h for h in units if h.startswith(str(unit))] if unit else []
    if len(matches) != 1:
        what = "no unit" if not matches else f"{len(matches)} units"
        raise RetrainError(f"{what} in {path} match {unit!r} (units: {', '.join(sorted(units))})")
    return matches[0]


def _context(key: dict, saved_device: str | None) -> RunContext:
    """The RunContext a unit was computed with, from its key (device type, stream, backend)."""
    if "stream" not in key or "backend" not in key:
        raise RetrainError("this unit's key predates the fair protocol (no seed stream or backend recorded): "
                           "rerun the experiment to re-train its runs")
    device = key.get("device", "cpu")
    if saved_device and saved_device.split(":")[0] == device:
        device = saved_device
    backend = "fused" if str(key["backend"]).startswith("fused") else "torch"
    return RunContext(device=device, stream=key["stream"], backend=backend)


@dataclasses.dataclass
class Located:
    """A saved run found again: its experiment, rebuilt unit, seed and saved rows."""

    experiment: Experiment
    unit: Unit
    seed: int
    rows: pd.DataFrame
    exact: bool = True   # the same arithmetic as when it was saved (else compared within tolerance)


def locate(experiment: str, unit: str, seed: int, out: Path | str | None = None, *, profile: str = "full",
           root: Path | None = None) -> Located:
    """Find the saved run (``experiment`` names the results folder under ``out``, e.g. ``parity_tasks``
    or ``compare_<problem>-<hash>``) and rebuild its unit from the current code."""
    folder = experiment_dir(experiment, out, profile=profile)
    paths = {name: folder / name for name in ("runs.csv", "units.json", "summary.json")}
    for name, path in paths.items():
        if not path.exists():
            hint = " (results written before units.json was recorded: rerun the experiment)" if name == "units.json" else ""
            raise RetrainError(f"{path} does not exist{hint}")
    try:
        checked_folder(folder, ["runs.csv", "units.json", "summary.json"])
        units = read_json_file(paths["units.json"])
        summary = read_json_file(paths["summary.json"])
    except OutputsError as exc:
        raise RetrainError(str(exc)) from None
    if not isinstance(units, dict) or not all(isinstance(k, dict) for k in units.values()):
        raise RetrainError(f"{paths['units.json']} is not a table of unit keys")
    if not isinstance(summary, dict) or not isinstance(summary.get("provenance"), dict):
        raise RetrainError(f"{paths['summary.json']} is not an experiment summary with provenance")
    unit_hash = _unit_hash(unit, units, paths["units.json"])
    exp = find_experiment(summary.get("experiment"), root)
    if exp.version != units[unit_hash].get("version"):
        raise RetrainError(f"unit {unit_hash} was computed by {exp.name} version {units[unit_hash].get('version')}, "
                           f"the code is now version {exp.version}: rerun the experiment")
    try:
        cfg = config_from_dict(exp.config_cls, summary["provenance"]["config"])
    except (TypeError, ValueError) as exc:
        raise RetrainError(f"the config saved in {paths['summary.json']} no longer builds: {exc}") from None
    if not isinstance(summary["provenance"].get("config"), dict):
        raise RetrainError(f"{paths['summary.json']} records no config")
    context = _context(units[unit_hash], summary["provenance"].get("device"))
    rebuilt = {u.hash: u for u in exp.make_units(cfg, context)}
    exact = unit_hash in rebuilt
    if not exact:   # the trainer's arithmetic differs here (another kernel version, no kernel): same key otherwise
        same = [u for u in rebuilt.values() if _without_backend(u.key) == _without_backend(units[unit_hash])]
        if len(same) == 1:
            rebuilt = {unit_hash: same[0]}
        raise RetrainError(f"the current code no longer produces unit {unit_hash} from the saved config "
                           f"(the construction, problem or trainer changed since): rerun {exp.name}")
    runs = read_runs(paths["runs.csv"], dtype={"unit": str})
    rows = runs[(runs["unit"] == unit_hash) & (runs["seed"] == int(seed))]
    if rows.empty:
        seeds = sorted(runs.loc[runs["unit"] == unit_hash, "seed"].unique())
        raise RetrainError(f"runs.csv has no rows for unit {unit_hash}, seed {seed} "
                           f"(its seeds: {seeds[0]}..{seeds[-1]})" if seeds else f"runs.csv has no rows for unit {unit_hash}")
    return Located(exp, rebuilt[unit_hash], int(seed), rows, exact)


def retrain(experiment: str, unit: str, seed: int, out: Path | str | None = None, *, profile: str = "full",
            check: bool = True, root: Path | None = None) -> Any:
    """The trained nets of one saved run (one seed of one unit), e.g. a
    :class:`~mtlmech.protocol.Trained` with one member per condition (the grid point chosen on the
    halt set). ``experiment`` names the results folder in ``out`` (default as for
    :func:`mtlmech.load`), ``unit`` the unit hash (a unique prefix will do). With ``check`` the
    retrained run is scored and must reproduce its saved rows: exactly where the trainer's arithmetic
    is the one the run was saved with (its unit key names it, e.g. ``fused-v4``), else every choice
    (learning rate, epochs, stop reason) exactly and every measured number within :data:`RTOL`
    (a :class:`RetrainError` names the first differences otherwise)."""
    found = locate(experiment, unit, seed, out, profile=profile, root=root)
    if found.unit.train is None:
        raise RetrainError(f"experiment {found.experiment.name} does not offer re-training yet: its units have no "
                           f"train function (see runner.Unit)")
    trained = found.unit.train([found.seed])
    if check:
        records = found.unit.score(trained)
        problems = compare_rows(records[found.seed]["rows"], found.rows, exact=found.exact)
        if problems:
            raise RetrainError(f"re-training {found.experiment.name} unit {found.unit.hash} seed {found.seed} does not "
                               f"reproduce runs.csv: {'; '.join(problems[:3])}"
                               + (f" and {len(problems) - 3} more" if len(problems) > 3 else ""))
    return trained
