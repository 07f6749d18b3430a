"""The driver every experiment script shares: parse → run units (cached) → save → analyse → summary.

An experiment file defines its config dataclass, profiles, ``make_units(cfg, device)`` and
``analyse(runs, extras, cfg, outdir) -> Findings``; ``main`` is ``Experiment(...).main``. Analysis
and figures always read the saved ``runs.csv``/``extras.json``, never in-memory results, so
``--replot`` regenerates them from disk alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ..engine.seeding import canonical_json
from ..engine.training import resolve_backend
from ..stats import ALPHA, MAX_CAP_FRACTION, MAX_FIT_FRACTION, ClaimResult, judge, tally
from . import cli
from .checks import DISK_BYTES, check_memory, check_out, check_run_size, dask_spec, dask_timeout
from .outputs import (
    DATA_FILES,
    FolderLock,
    OutputSet,
    digest,
    read_manifest,
    read_runs,
    recover,
    summary_digests,
    verify,
)
from .paths import project_root
from .provenance import provenance, relative_args
from .runner import Unit, run_units
from .store import atomic_write_json, atomic_write_text, clean_stale_tmp


def __getattr__(name: str) -> Any:
    """``REPO_ROOT``: the project root (:mod:`mtlmech.pipeline.paths`), never where the package is installed."""
    if name == "REPO_ROOT":
        return project_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Findings:
    """What ``analyse`` returns: claims (declared; verdicts are set afterwards by the driver's one
    :func:`mtlmech.stats.judge` pass), every construction tried, side-by-side tables, the figure
    files written and, per claim whose verdict differs from version 1, one line on why."""

    claims: list[ClaimResult]
    constructions_tried: list[Any] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    superseded: dict[str, str] = field(default_factory=dict)   # claim ID -> one line on why v1's verdict changed


def unit_key(experiment: str, version: int, cfg: Any, run: cli.RunContext, *, exclude: tuple[str, ...] = (),
             problem: Any = None, **point: Any) -> dict:
    """The cache key of one unit: experiment, construction version, the config minus sweep lists
    and analysis-only fields (``exclude``), the sweep point, and what the computation receives
    besides: the device type, the seed stream and trainer backend (given a
    :class:`~mtlmech.pipeline.cli.RunContext`) and the fingerprint of each problem it trains on
    (``problem``: a Problem or a list of them), so that changing what a feature computes changes
    the key."""
    config = key_config(cfg, exclude)
    key = {"experiment": experiment, "version": version, "config": config, "point": point}
    key.update(device=run.device.split(":")[0], stream=run.stream,
               backend=resolve_backend(run.backend, getattr(cfg, "net", None), getattr(cfg, "train", None), run.device))
    if problem is not None:
        problems = problem if isinstance(problem, (list, tuple)) else [problem]
        key["problems"] = [p.fingerprint() for p in problems]
    return key


def load_script(path: Path) -> ModuleType:
    """Execute the experiment script ``path`` as module ``experiments.<stem>`` (registered in
    ``sys.modules``, so Dask workers and pickling find it) and return it. The one loader the suite's
    discovery and :func:`mtlmech.retrain` use; the caller decides what an error in the file means."""
    spec = importlib.util.spec_from_file_location(f"experiments.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


def key_config(cfg: Any, exclude: tuple[str, ...] = ()) -> dict:
    """The config as a cache key records it: ``dataclasses.asdict`` minus ``exclude``, with every
    training spec's ``stopping`` (``train``, and nested ones such as ``da3_train``) left out while it
    is the version-2 default (``all_tasks``), so that adding the option moved no existing cache key."""
    def drop_default(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_default(v) for k, v in value.items()
                    if not (k == "stopping" and v == "all_tasks" and "lr_grid" in value)}
        return value
    return drop_default({k: v for k, v in dataclasses.asdict(cfg).items() if k not in exclude})


@dataclass(frozen=True)
class FitGuard:
    """The pre-registered fit guard of an experiment: which nets count as *not fitted*.

    A net did not fit when, on the reported rows a claim reads, its hidden layer is saturated
    (``saturated``: dead units or a constant output), its best halt epoch is among the first
    ``first_checks`` evaluations (``best_epoch`` ≤ ``first_checks`` × the config's ``eval_every``:
    it never improved on what it had at the start), or — only where the experiment declares it, on
    noise-free tasks — its training error at the snapshot exceeds ``max_train_error`` (on the
    ``tasks`` named, default every task). The default (version-2 experiments) is conservative:
    saturation and best epoch at the first check only. A claim whose compared conditions have more
    than ``MAX_FIT_FRACTION`` (5 %) of nets not fitted is inconclusive ("under-trained")."""

    max_train_error: float | None = None
    tasks: tuple[str, ...] | None = None
    first_checks: int = 1
    saturation: bool = True

    def __post_init__(self) -> None:
        if self.max_train_error is not None and not 0 <= self.max_train_error < 1:
            raise ValueError("max_train_error is an error rate in [0, 1)")
        if self.first_checks < 0:
            raise ValueError("first_checks must be ≥ 0")


def _member_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trained net (rows are per reported task; a net's stopping is shared)."""
    keys = [c for c in ("unit", "seed", "condition", "trained_tasks") if c in runs.columns]
    return runs.drop_duplicates(keys) if keys else runs


def training_record(runs: pd.DataFrame, fit: FitGuard | None = None, eval_every: int | None = None) -> dict[str, Any]:
    """How a set of runs trained: count, share stopped by the epoch cap (None when the runs predate
    patience stopping), share of nets that did not fit (``fit_fraction`` by the :class:`FitGuard`
    ``fit``, with ``fit_detail`` naming the reasons; the default guard when not given), median stop
    epoch, chosen learning rates and the share chosen at a grid edge."""
    nets = _member_rows(runs)
    out: dict[str, Any] = {"n": int(len(nets))}
    out["cap_fraction"] = float((nets["stopped_by"] == "cap").mean()) if "stopped_by" in nets and len(nets) else None
    keys = [c for c in ("unit", "seed", "condition", "trained_tasks") if c in runs.columns]
    for flag in ("diverged", "saturated"):   # nets with the flag on any reported task (saturated: missing in old caches)
        if flag in runs and len(runs):
            flags = runs[flag].astype("boolean").fillna(False).astype(bool)
            out[f"n_{flag}"] = int(flags.groupby([runs[k] for k in keys]).any().sum() if keys else flags.sum())
    out.update(fit_record(runs, fit or FitGuard(), eval_every, keys))
    if "stop_epoch" in nets and len(nets):
        out["median_stop_epoch"] = float(nets["stop_epoch"].median())
    if "task_stop_epoch" in runs and len(runs):
        out["median_task_stop_epoch"] = float(runs["task_stop_epoch"].median())
    if "lr" in nets and len(nets):
        out["lr_chosen"] = {f"{lr:g}": int(k) for lr, k in nets["lr"].round(10).value_counts().sort_index().items()}
        out["lr_edge_fraction"] = (float((nets["lr_edge"].astype("string").fillna("") != "").mean())
                                   if "lr_edge" in nets else 0.0)
    return out


def fit_record(runs: pd.DataFrame, fit: FitGuard, eval_every: int | None, keys: list[str]) -> dict[str, Any]:
    """``fit_fraction`` (share of nets that did not fit by ``fit``) and ``fit_detail``; nothing when
    the runs record none of the columns the guard reads."""
    if not len(runs):
        return {}
    reasons: dict[str, pd.Series] = {}
    if fit.saturation and "saturated" in runs:
        reasons["saturated"] = runs["saturated"].astype("boolean").fillna(False).astype(bool)
    if fit.first_checks and "best_epoch" in runs:
        first = fit.first_checks * (eval_every or 1)
        reasons["best epoch at the first check" if fit.first_checks == 1 else
                f"best epoch in the first {fit.first_checks} checks"] = runs["best_epoch"] <= first
    if fit.max_train_error is not None and "train_error" in runs:
        on = runs["task"].isin(fit.tasks) if fit.tasks is not None and "task" in runs else True
        reasons[f"train error > {fit.max_train_error:g}"] = (runs["train_error"] > fit.max_train_error) & on
    if not reasons:
        return {}
    groups = [runs[k] for k in keys] if keys else None
    per_net = {name: (flag.groupby(groups).any() if groups else flag) for name, flag in reasons.items()}
    unfit = pd.concat(per_net, axis=1).any(axis=1)
    detail = ", ".join(f"{name}: {int(v.sum())}" for name, v in per_net.items() if v.any())
    return {"fit_fraction": float(unfit.mean()), "fit_detail": detail}


def attach_training(claims: list[ClaimResult], runs: pd.DataFrame, fit: FitGuard | None = None,
                    eval_every: int | None = None) -> None:
    """Fill each claim's ``training`` with the record of every condition it compares (on the runs
    its ``where`` selects), which the verdict pass uses for the under-trained guards (epoch cap, fit)."""
    for c in claims:
        if not c.compared:
            continue
        sel = runs
        for column, value in c.where.items():
            if column not in sel.columns:
                raise ValueError(f"claim {c.id}: runs have no column {column!r} to select on")
            sel = sel[sel[column].isin(value if isinstance(value, (list, tuple)) else [value])]
        missing = [name for name in c.compared if not (sel["condition"] == name).any()]
        if missing:
            raise ValueError(f"claim {c.id}: no runs of compared condition(s) {missing} where {c.where}")
        c.training = {name: training_record(sel[sel["condition"] == name], fit, eval_every) for name in c.compared}


def training_table(runs: pd.DataFrame, fit: FitGuard | None = None, eval_every: int | None = None) -> list[dict]:
    """Per condition: the training record (for REPORT.md's chosen-rate, cap- and fit-fraction table)."""
    if "condition" not in runs.columns:
        return []
    return [{"condition": name, **training_record(g, fit, eval_every)} for name, g in runs.groupby("condition", sort=True)]


def eval_every_of(cfg: Any) -> int | None:
    """The evaluation interval of the config's ``train`` (a TrainSpec), for the fit guard's first check."""
    return getattr(getattr(cfg, "train", None), "eval_every", None)


REPLICATE_STREAM = cli.REPLICATE_STREAM
COMMITTED_STREAMS = ("confirm", REPLICATE_STREAM)


def merge_replication(claims: list[ClaimResult], replicate: list[ClaimResult]) -> None:
    """Give each confirmatory claim the replication sample's verdict of the same ID (``replication``),
    mark it ``fragile`` when the two verdicts differ, and pool the two samples' effects (inverse-
    variance weights, where both have a standard error)."""
    from ..stats.power import claim_se
    by_id = {c.id: c for c in replicate}
    for c in claims:
        r = by_id.get(c.id)
        if r is None:
            continue
        c.replication = {"verdict": r.verdict, "verdict_reason": r.verdict_reason, "effect": float(r.effect),
                         "ci": [float(x) for x in r.ci], "p_value": r.p_value, "n": int(r.n),
                         "p_holm": r.details.get("p_holm"), "training": r.training}
        c.fragile = r.verdict != c.verdict
        s1, s2 = claim_se(c), claim_se(r)
        if s1 and s2 and c.rule != "composite":
            w1, w2 = 1 / s1 ** 2, 1 / s2 ** 2
            effect = (w1 * c.effect + w2 * r.effect) / (w1 + w2)
            se = (w1 + w2) ** -0.5
            c.pooled = {"effect": float(effect), "ci": [float(effect - 1.959964 * se), float(effect + 1.959964 * se)],
                        "se": float(se)}


def registry_entry(experiment: Experiment, cfg: Any, seeds: Any) -> dict[str, str]:
    """What a committed stream's results were made with, as two hashes: ``construction`` (version,
    the config as cache keys record it, the seeds: their number, or the list given by --seed-ids) and ``thresholds`` (the pre-registered claim
    thresholds — ``registration`` — the fit guard, α and the cap limit)."""
    def digest(obj: Any) -> str:
        return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]
    return {"construction": digest({"version": experiment.version, "config": key_config(cfg), "seeds": seeds}),
            "thresholds": digest({"registration": experiment.registration or {},
                                  "fit_guard": dataclasses.asdict(experiment.fit_guard), "alpha": ALPHA,
                                  "max_cap_fraction": MAX_CAP_FRACTION, "max_fit_fraction": MAX_FIT_FRACTION})}


def full_profile_entries(experiment: Experiment) -> dict[str, dict[str, str]]:
    """The registry entries (per committed stream) a full-profile run with the default settings
    makes: what ``experiments/registry/<name>.json`` must hold for the experiment's VERSION."""
    profile = dict(experiment.profiles["full"])
    seeds = profile.pop("seeds")
    cfg = cli.build_config(experiment.config_cls, profile, {})
    entry = registry_entry(experiment, cfg, seeds)
    return {"confirm": entry, **({REPLICATE_STREAM: entry} if experiment.replicate else {})}


def grid_edge_report(outdir: Path | str, max_fraction: float = 0.10) -> dict[str, dict]:
    """The grid-edge rule, applied to a (pilot) run before a confirmatory one: per claim of
    ``outdir``'s summary.json, per compared condition, the share of nets (on the runs its ``where``
    selects in runs.csv) whose chosen learning rate is at an edge of the grid, and ``flagged``:
    conditions above ``max_fraction`` (10 %), whose grid must be widened before the confirmatory run."""
    outdir = Path(outdir)
    summary = json.loads((outdir / "summary.json").read_text(encoding="utf-8"))
    runs = read_runs(outdir / "runs.csv")
    out = {}
    for c in summary["claims"]:
        if not c.get("compared") or "lr_edge" not in runs:
            continue
        sel = runs
        for column, value in (c.get("where") or {}).items():
            sel = sel[sel[column].isin(value if isinstance(value, (list, tuple)) else [value])]
        shares = {}
        for name in c["compared"]:
            nets = _member_rows(sel[sel["condition"] == name])
            shares[name] = float((nets["lr_edge"].astype("string").fillna("") != "").mean()) if len(nets) else None
        out[c["id"]] = {"edge_fraction": shares,
                        "flagged": sorted(k for k, v in shares.items() if v is not None and v > max_fraction)}
    return out


def v1_comparison(claims: list[ClaimResult], reasons: dict[str, str]) -> dict[str, dict]:
    """For each claim ID that version 1 judged: its v1 verdict and effect, whether the verdict
    changed, and the experiment's one line on why (``reasons``)."""
    v1 = json.loads(resources.files("mtlmech").joinpath("v1_verdicts.json").read_text())
    out = {}
    for c in claims:
        if c.id in v1:
            old = v1[c.id]
            out[c.id] = {"verdict": old["verdict"], "effect": old["effect"], "ci": old["ci"], "n": old["n"],
                         "changed": old["verdict"] != c.verdict, "why": reasons.get(c.id, "")}
    return out


def default_out(profile: str, root: Path | None = None) -> Path:
    """figures/ for the full profile (committed), results/quick/ for the quick one (never committed),
    under ``root`` (default: the project root, see :mod:`mtlmech.pipeline.paths`)."""
    return (root or project_root()) / ("figures" if profile == "full" else "results/quick")


def make_client(spec: str | None):
    """A dask.distributed Client for ``local[:N]`` (a LocalCluster on 127.0.0.1 without a dashboard)
    or a scheduler address; a scheduler that does not answer within ``$MTLMECH_DASK_TIMEOUT``
    seconds (10) is a one-line UsageError."""
    if spec is None:
        return None
    spec = dask_spec(spec)
    import logging

    from dask.distributed import Client, LocalCluster
    if spec.startswith("local"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else None
        # dashboard_address=None alone still serves the scheduler's HTTP pages on 127.0.0.1:8787: no dashboard,
        # only the health check, on a free loopback port (the scheduler always opens an HTTP server)
        import dask
        with dask.config.set({"distributed.scheduler.http.routes": ["distributed.http.health"]}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                   processes=True, scheduler_kwargs={"dashboard": False}, worker_dashboard_address=None)
        return Client(cluster)
    timeout = dask_timeout()
    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.client", "distributed.comm.core")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    # distributed's own ``timeout`` covers the TCP connect, not a listener that accepts and never answers
    # (the handshake then waits for ever) nor one that answers with junk (read as a frame length: a
    # multi-EiB allocation); so the connection is made in a thread with a hard deadline, and any
    # failure is one line
    import threading
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = Client(spec, timeout=timeout)
        except BaseException as exc:   # noqa: BLE001 - reported below as one line
            box["error"] = exc
    thread = threading.Thread(target=connect, daemon=True, name="mtlmech-dask-connect")
    try:
        thread.start()
        thread.join(timeout + 1)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    if "client" in box:
        return box["client"]
    if thread.is_alive():
        why = "no answer"
    else:
        exc = box["error"]
        why = type(exc).__name__ if isinstance(exc, (OSError, TimeoutError)) else \
            f"it did not answer as a Dask scheduler: {type(exc).__name__}"
    raise cli.UsageError(f"--dask {spec}: no Dask scheduler answered within {timeout:g} s ({why}); "
                         f"is the address right and the scheduler running? ($MTLMECH_DASK_TIMEOUT sets the wait)")


def runs_table(records: dict[str, dict[int, dict]]) -> pd.DataFrame:
    rows = [row for unit in records.values() for seed in sorted(unit) for row in unit[seed]["rows"]]
    df = pd.DataFrame(rows)
    front = [c for c in ("unit", "seed") if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def extras_table(records: dict[str, dict[int, dict]]) -> dict[str, dict[str, Any]]:
    return {unit: {str(s): r["extra"] for s, r in sorted(recs.items()) if r.get("extra")}
            for unit, recs in records.items() if any(r.get("extra") for r in recs.values())}


@dataclass(frozen=True)
class Command:
    """Another mode of an experiment script (``--show-run SEED``, ``--list``): listed by ``--help``
    with the run options; when its flag is on the command line, ``run(argv)`` gets the whole
    command line (it parses its own options) and returns the exit code."""

    help: str
    run: Callable[[list[str]], int]
    metavar: str | None = None   # None: a flag without a value


@dataclass
class Experiment:
    name: str
    doc: str
    config_cls: type
    profiles: dict[str, dict]
    make_units: Callable[[Any, str], list[Unit]]
    analyse: Callable[[pd.DataFrame, dict, Any, Path], Findings]
    version: int = 1                              # the construction version (recorded in summary.json)
    shard_size: int = 512
    folder: Callable[[Any], str] | None = None   # output folder name from the config (default: name)
    default_root: Path | Callable[[], Path] | None = None   # output root without --out (default: by profile);
    # a callable is asked only when needed, so that importing an experiment never looks for the project
    commands: dict[str, Command] = field(default_factory=dict)   # other modes of the script, e.g. --show-run SEED
    fit_guard: FitGuard = field(default_factory=FitGuard)   # which nets did not fit (docs/fair_protocol.md)
    registration: dict[str, dict] | None = None   # v3: claim ID -> pre-registered thresholds (sesoi, ...)
    replicate: bool = False                       # v3: the full profile also runs a replication sample
    registry: Path | None = None                  # the seed registry file (default experiments/registry/<name>.json)

    def registry_path(self) -> Path:
        return self.registry if self.registry is not None else (
            project_root(near=self.make_units) / "experiments" / "registry" / f"{self.name}.json")

    def _registry_enforced(self, opts: cli.RunOptions) -> bool:
        """Whether this run's results are the committed ones (the committed root, or a registry
        named explicitly): only then does a changed construction refuse to run and a new one register."""
        return self.registry is not None or (opts.out is None and self.default_root is None)

    def _registered_streams(self, opts: cli.RunOptions) -> list[str]:
        if opts.profile != "full" or opts.stream not in COMMITTED_STREAMS:
            return []
        return [opts.stream] + ([REPLICATE_STREAM] if self.replicate and opts.stream == "confirm" else [])

    def check_registry(self, cfg: Any, opts: cli.RunOptions, *, thresholds_only: bool = False) -> dict[str, dict]:
        """Seed discipline: a committed stream's results were made with one construction and one set
        of thresholds (:func:`registry_entry`); a run that would change either on that stream and
        VERSION is refused (one line, exit 2) — bump VERSION or draw from a new stream. Returns the
        entries this run adds (streams not registered yet)."""
        streams = self._registered_streams(opts)
        if not streams:
            return {}
        path = self.registry_path()
        registry = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        current = registry_entry(self, cfg, opts.seeds if opts.seed_ids is None else list(opts.seed_ids))
        new = {}
        for stream in streams:
            old = registry.get(str(self.version), {}).get(stream)
            if old is None:
                new[stream] = current
                continue
            changed = [k for k in (("thresholds",) if thresholds_only else ("construction", "thresholds"))
                       if old.get(k) != current[k]]
            if changed:
                message = (f"{self.name} VERSION {self.version}, stream {stream!r}: the {' and '.join(changed)} "
                           f"differ from those registered in {path.name} ({', '.join(f'{k} {old.get(k)}' for k in changed)}); "
                           f"results on a committed stream cannot change construction: bump VERSION or draw from a new stream")
                if self._registry_enforced(opts):
                    raise cli.UsageError(message)
                print(f"warning: {message} (not the committed output folder: running anyway)", file=sys.stderr)
        return new if self._registry_enforced(opts) and not thresholds_only else {}

    def write_registry(self, entries: dict[str, dict]) -> None:
        if not entries:
            return
        path = self.registry_path()
        registry = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        registry.setdefault(str(self.version), {}).update(entries)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, registry)

    def outdir(self, cfg: Any, opts: cli.RunOptions) -> Path:
        """``--out`` (or the default root) / the experiment's folder, which must be one plain name:
        a folder named from user input (``--problem ../x``) never leads outside the root."""
        if opts.out is not None:
            root = opts.out
        elif self.default_root is not None:
            root = self.default_root() if callable(self.default_root) else self.default_root
        else:
            root = default_out(opts.profile, project_root(near=self.make_units))
        name = self.folder(cfg) if self.folder else self.name
        if not name or name in (".", "..") or any(c in name for c in "/\\\0") or len(name.encode()) > 255:
            flags = " ".join("--" + d.replace("_", "-") for d in opts.given) or "the config"
            raise cli.UsageError(f"{flags}: the output folder name {name[:60]!r} must be one plain name "
                                 f"(no /, \\ or .., at most 255 bytes)")
        return root / name

    def _units(self, cfg: Any, opts: cli.RunOptions) -> list[Unit]:
        """``make_units``, with an error on bad input led by the flag that causes it."""
        errors = (ValueError, KeyError, FileNotFoundError)
        try:
            return self.make_units(cfg, opts.context)
        except errors as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            profile = {k: v for k, v in self.profiles[opts.profile].items() if k != "seeds"}

            def fails(one: dict) -> bool:
                try:
                    self.make_units(cli.build_config(self.config_cls, profile, one), opts.context)
                except (cli.UsageError, *errors):
                    return True
                return False
            raise cli.UsageError(cli.with_flag(message, opts.given, fails)) from None

    def prepare(self, argv: list[str] | None = None) -> tuple[Any, cli.RunOptions, Path, list[Unit]]:
        """Everything checked before anything is written or trained: flags, config, units (the
        problems they build), that the results fit in memory and the output folder is writable
        with room on its disk. Bad input raises a one-line :class:`~mtlmech.pipeline.cli.UsageError`."""
        cfg, opts = cli.parse(f"experiments/{self.name}.py", self.doc, self.config_cls, self.profiles, argv,
                              commands={flag: (c.help, c.metavar) for flag, c in self.commands.items()})
        outdir = self.outdir(cfg, opts)
        n_seeds = opts.seeds if opts.seed_ids is None else len(opts.seed_ids)
        if opts.replot:
            if not (outdir / "runs.csv").is_file():
                raise cli.UsageError(f"--replot needs {outdir / 'runs.csv'}; run without --replot first")
            units = []
        else:
            check_memory(cfg, n_seeds, self.shard_size, opts.given)
            units = self._units(cfg, opts)
        if not opts.replot and REPLICATE_STREAM in self._registered_streams(opts) and opts.stream == "confirm":
            units += self.make_units(cfg, dataclasses.replace(opts.context, stream=REPLICATE_STREAM))
        if not opts.replot:
            check_run_size(n_seeds, len(units), "--seeds" if opts.seed_ids is None else "--seed-ids")
        self._new_registry = self.check_registry(cfg, opts, thresholds_only=opts.replot)
        check_out(outdir, need_bytes=0 if opts.replot else float(n_seeds) * len(units) * DISK_BYTES)
        return cfg, opts, outdir, units

    def main(self, argv: list[str] | None = None) -> int:
        """Run the experiment: 0 on success, 2 with one ``error:`` line for bad input (nothing
        written), 130 with one line on Ctrl-C (what was computed stays in the cache)."""
        args = list(sys.argv[1:] if argv is None else argv)
        for flag, command in self.commands.items():
            if flag in args or any(a.startswith(flag + "=") for a in args):
                try:
                    return command.run(args)
                except cli.UsageError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 2
                except KeyboardInterrupt:
                    print("interrupted", file=sys.stderr)
                    return 130
        try:
            return self._main(args if argv is not None else None)
        except KeyboardInterrupt:
            print(f"interrupted; {self._cached} computed results are kept in the cache", file=sys.stderr)
            return 130

    _cached = 0   # results in the cache when a run is interrupted (for its one line)

    def _count_cached(self, outdir: Path, units: list[Unit], seeds: list[int]) -> int:
        """How many of this run's (unit, seed) results the cache holds now."""
        import contextlib
        import io
        import warnings

        from .store import SeedCache
        n = 0
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for unit in units:
                try:
                    n += len(set(SeedCache(outdir, unit.hash).load()) & set(seeds))
                except Exception:   # noqa: BLE001 - a count for a message only
                    pass
        return n

    def _main(self, argv: list[str] | None) -> int:
        self._cached = 0
        try:
            cfg, opts, outdir, units = self.prepare(argv)
        except cli.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (ValueError, KeyError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2
        try:
            client = None if opts.replot else make_client(opts.dask)
        except cli.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            with FolderLock(outdir):
                try:
                    return self._run(cfg, opts, outdir, units, argv, client)
                except OSError as exc:   # a full disk, a read-only folder: the committed outputs stay as they were
                    try:
                        recover(outdir)
                    except OSError:
                        pass
                    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
                    raise cli.UsageError(f"--out: {outdir}: {exc.strerror or exc}{where}; the outputs committed "
                                         f"there before are unchanged") from None
        except cli.UsageError as exc:   # incl. FolderBusy: another run holds the folder
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:   # the lock itself could not be taken (a read-only folder)
            print(f"error: --out: {outdir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            self._cached = self._count_cached(outdir, units, opts.seed_list)
            raise
        finally:
            if client is not None:
                cluster = client.cluster if opts.dask.startswith("local") else None
                client.close()
                if cluster is not None:
                    cluster.close()

    def _check_registration(self, claims: list[ClaimResult]) -> None:
        """A v3 registration: every directional claim that is not a premise carries the SESOI its
        registration names (a claim cannot loosen its own threshold after the fact)."""
        if self.registration is None:
            return
        for c in claims:
            reg = self.registration.get(c.id)
            if c.rule == "directional" and not c.premise and c.sesoi is None:
                raise ValueError(f"{self.name}: claim {c.id} is a v3 directional claim without a SESOI")
            if reg is not None and "sesoi" in reg and reg["sesoi"] != c.sesoi:
                raise ValueError(f"{self.name}: claim {c.id} has SESOI {c.sesoi}, registered {reg['sesoi']}")

    def _replot_config(self, cfg: Any, opts: cli.RunOptions, previous: dict) -> tuple[Any, dict]:
        """The config the saved runs were trained with (from the earlier summary.json) with the
        flags given to ``--replot`` applied, and those flags where they differ from it."""
        prov = previous.get("provenance")
        saved = prov.get("config") if isinstance(prov, dict) else None
        if not isinstance(saved, dict):
            return cfg, dict(opts.given)
        saved = cli.as_tuples(saved)
        try:
            cli.saved_config(self.config_cls, saved)   # the saved config alone must still fit
        except cli.UsageError as exc:
            print(f"warning: --replot: the saved config no longer fits this experiment ({exc}); "
                  f"analysing with the command line's", file=sys.stderr)
            return cfg, dict(opts.given)
        changed = {}
        for dest, value in opts.given.items():
            old: Any = saved
            for part in dest.split("."):
                old = old.get(part) if isinstance(old, dict) else None
            if old != value:
                changed[dest] = value
        if changed:
            print("warning: --replot analyses runs trained with the saved config; "
                  + ", ".join(f"--{d.replace('_', '-')} {cli._show(v)}" for d, v in changed.items())
                  + " differ from it (recorded under provenance.replot.overrides)", file=sys.stderr)
        return cli.saved_config(self.config_cls, saved, opts.given), changed

    def _run(self, cfg: Any, opts: cli.RunOptions, outdir: Path, units: list[Unit], argv: list[str] | None,
             client: Any = None) -> int:
        """Train (or reuse), then write runs, extras, units, figures and summary as one unit."""
        for note in (recover(outdir),):
            if note:
                print(f"note: {note}", file=sys.stderr)
        clean_stale_tmp(outdir)
        started = time.time()
        command = ["python", f"experiments/{self.name}.py",
                   *relative_args(argv if argv is not None else sys.argv[1:])]
        outputs = OutputSet(outdir)
        if opts.replot:
            if not (outdir / "runs.csv").exists():
                raise cli.UsageError(f"--replot needs {outdir / 'runs.csv'}; run without --replot first")
            try:
                previous = json.loads((outdir / "summary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = {}
            previous = previous if isinstance(previous, dict) else {}
            try:
                runs = read_runs(outdir / "runs.csv")
                manifest = read_manifest(outdir)
                problems = verify(outdir, (*DATA_FILES, "summary.json"), rows=len(runs), manifest=manifest)
            except (ValueError, OSError, pd.errors.ParserError) as exc:
                problems = [f"runs.csv is unreadable ({(str(exc).splitlines() or [type(exc).__name__])[0]})"]
                manifest = None
            recorded = summary_digests(previous) if manifest is None else None
            if not problems and recorded:   # no manifest: the data files' digests summary.json records
                problems = [f"{n} differs from the copy summary.json records" for n in DATA_FILES
                            if n in recorded and (not (outdir / n).is_file() or digest(outdir / n) != recorded[n])]
            if not problems and "n_runs" in previous and previous["n_runs"] != len(runs):
                problems = [f"runs.csv has {len(runs)} rows, summary.json records {previous['n_runs']}"]
            if problems:
                raise cli.UsageError(f"--replot: {outdir} does not hold the outputs of one run: {'; '.join(problems)}; "
                                     f"rerun without --replot (cached seeds are reused)")
            if manifest is None and not recorded:
                print(f"warning: --replot: {outdir} has no manifest.json, so runs.csv, extras.json and units.json "
                      f"cannot be verified (only their row count against summary.json)", file=sys.stderr)
            cfg, overrides = self._replot_config(cfg, opts, previous)
            try:
                extras = json.loads((outdir / "extras.json").read_text(encoding="utf-8")) \
                    if (outdir / "extras.json").exists() else {}
                if not isinstance(extras, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                raise cli.UsageError(f"--replot: {outdir / 'extras.json'} is unreadable "
                                     f"({(str(exc).splitlines() or [type(exc).__name__])[0]}); rerun without "
                                     f"--replot (cached seeds are reused)") from None
            stage = outputs.begin()
            line = "replot only"
        else:
            stage = outputs.begin()
            try:
                if client is not None:  # experiment scripts are not importable on workers: ship their code
                    import cloudpickle
                    cloudpickle.register_pickle_by_value(sys.modules[self.make_units.__module__])
                report = run_units(units, opts.seed_list, outdir, force=opts.force,
                                   shard_size=self.shard_size, client=client, progress=opts.progress,
                                   desc=self.name)
            except BaseException:
                recover(outdir)   # nothing staged yet: drop the empty staging folder
                raise
            line = report.line()
            compute_seconds = round(report.compute_seconds, 2)
            samples = {u.hash: REPLICATE_STREAM if u.key.get("stream") == REPLICATE_STREAM else "confirm" for u in units}
            table = runs_table(report.records)
            if REPLICATE_STREAM in samples.values():
                table.insert(2, "sample", table["unit"].map(samples))
            atomic_write_text(stage / "runs.csv", table.to_csv(index=False))
            atomic_write_json(stage / "extras.json", extras_table(report.records))
            # unit hash -> the key it hashes (mtlmech.load joins these in as config columns)
            atomic_write_json(stage / "units.json", {u.hash: json.loads(canonical_json(u.key)) for u in units})
            runs = read_runs(stage / "runs.csv")
            extras = json.loads((stage / "extras.json").read_text())
        every = eval_every_of(cfg)
        replicated = "sample" in runs.columns and (runs["sample"] == REPLICATE_STREAM).any()
        main_runs = runs[runs["sample"] != REPLICATE_STREAM] if replicated else runs
        main_units = set(main_runs["unit"]) if "unit" in main_runs else None
        findings = self.analyse(main_runs, {u: e for u, e in extras.items() if main_units is None or u in main_units},
                                cfg, stage)
        self._check_registration(findings.claims)
        attach_training(findings.claims, main_runs, self.fit_guard, every)
        judge(findings.claims)
        if replicated:   # the same analysis and rules on the independent sample (Holm within it)
            rep_runs = runs[runs["sample"] == REPLICATE_STREAM]
            with tempfile.TemporaryDirectory() as scratch:   # its figures are not kept
                rep = self.analyse(rep_runs, {u: e for u, e in extras.items() if u in set(rep_runs["unit"])},
                                   cfg, Path(scratch))
            attach_training(rep.claims, rep_runs, self.fit_guard, every)
            judge(rep.claims)
            merge_replication(findings.claims, rep.claims)
        v1 = v1_comparison(findings.claims, findings.superseded)
        if opts.replot:
            trained = previous.get("provenance")
            trained = trained if isinstance(trained, dict) and trained else {
                "trained_with": "unknown: no earlier summary.json"}
            info = provenance(config=dataclasses.asdict(cfg), device=opts.device, seeds=[],
                              wall_seconds=time.time() - started, command=command)
            prov = {**trained, "replot": {"command": command, "overrides": overrides,
                                          "git_commit": info["git_commit"], "git_dirty": info["git_dirty"],
                                          "versions": info["versions"], "wall_seconds": info["wall_seconds"],
                                          "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
        else:
            prov = provenance(config=dataclasses.asdict(cfg), device=opts.device,
                              seeds=[0, opts.seeds] if opts.seed_ids is None else list(opts.seed_ids),
                              wall_seconds=time.time() - started, command=command,
                              stream=opts.stream, backend=opts.backend, cache=line, compute_seconds=compute_seconds)
        summary = {
            "experiment": self.name,
            "version": self.version,
            "description": self.doc.strip().split("\n\n")[0].replace("\n", " "),
            "profile": previous.get("profile", opts.profile) if opts.replot else opts.profile,
            "claims": [c.to_dict() for c in findings.claims],
            "tally": tally(findings.claims),
            "rules": {"fit_guard": dataclasses.asdict(self.fit_guard), "registration": self.registration,
                      "replication": ({"stream": REPLICATE_STREAM, "n_runs": int((runs["sample"] == REPLICATE_STREAM).sum())}
                                      if replicated else None)},
            "constructions_tried": findings.constructions_tried,
            "tables": findings.tables,
            "training": training_table(main_runs, self.fit_guard, every),
            "v1": v1,
            "figures": findings.figures,
            "n_runs": int(len(runs)),
            # the data files' digests: readers check them where a folder lost its manifest.json
            "files": {n: digest(where / n) for n in DATA_FILES
                      for where in [stage if (stage / n).exists() else outdir] if (where / n).is_file()},
            "provenance": prov,
        }
        atomic_write_json(stage / "summary.json", summary)
        outputs.commit(rows=len(runs), carry=[n for n in DATA_FILES if opts.replot and (outdir / n).exists()])
        self.write_registry(getattr(self, "_new_registry", {}))
        print(f"{self.name}: {line}")
        from .verdict_lines import claim_lines
        print("\n".join(claim_lines(findings.claims, profile=summary["profile"])))
        print(f"  wrote {outdir}")
        return 0
