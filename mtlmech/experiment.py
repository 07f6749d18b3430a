"""The driver every experiment script shares: parse → run units (cached) → save → analyse → summary.

An experiment file defines its config dataclass, profiles, ``make_units(cfg, device)`` and
``analyse(runs, extras, cfg, outdir) -> Findings``; ``main`` is ``Experiment(...).main``. Analysis
and figures always read the saved ``runs.csv``/``extras.json``, never in-memory results, so
``--replot`` regenerates them from disk alone.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import cli
from .paths import project_root
from .provenance import provenance
from .runner import Unit, run_units
from .seeding import canonical_json
from .stats import ClaimResult, judge
from .store import atomic_write_json, atomic_write_text


def __getattr__(name: str) -> Any:
    """``REPO_ROOT``: the project root (:mod:`mtlmech.paths`), never where the package is installed."""
    if name == "REPO_ROOT":
        return project_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Findings:
    """What ``analyse`` returns: claims (verdicts set by :func:`mtlmech.stats.judge` for directional
    ones), every construction tried, side-by-side tables and the figure files written."""

    claims: list[ClaimResult]
    constructions_tried: list[Any] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


def unit_key(experiment: str, version: int, cfg: Any, device: str, *, exclude: tuple[str, ...] = (),
             **point: Any) -> dict:
    """The cache key of one unit: experiment, construction version, the config minus sweep lists
    and analysis-only fields (``exclude``), the sweep point and the device type."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in exclude}
    return {"experiment": experiment, "version": version, "config": config, "point": point,
            "device": device.split(":")[0]}


def default_out(profile: str, root: Path | None = None) -> Path:
    """figures/ for the full profile (committed), results/quick/ for the quick one (never committed),
    under ``root`` (default: the project root, see :mod:`mtlmech.paths`)."""
    return (root or project_root()) / ("figures" if profile == "full" else "results/quick")


def make_client(spec: str | None):
    """A dask.distributed Client for ``local[:N]`` (a LocalCluster on 127.0.0.1) or a scheduler address."""
    if spec is None:
        return None
    from dask.distributed import Client, LocalCluster
    if spec == "local" or spec.startswith("local:"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else None
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                               processes=True)
        return Client(cluster)
    if spec.startswith("tcp://"):
        return Client(spec, timeout=30)
    raise cli.UsageError(f"--dask must be local, local:N or tcp://HOST:PORT, got {spec!r}")


def runs_table(records: dict[str, dict[int, dict]]) -> pd.DataFrame:
    rows = [row for unit in records.values() for seed in sorted(unit) for row in unit[seed]["rows"]]
    df = pd.DataFrame(rows)
    front = [c for c in ("unit", "seed") if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def extras_table(records: dict[str, dict[int, dict]]) -> dict[str, dict[str, Any]]:
    return {unit: {str(s): r["extra"] for s, r in sorted(recs.items()) if r.get("extra")}
            for unit, recs in records.items() if any(r.get("extra") for r in recs.values())}


@dataclass
class Experiment:
    name: str
    doc: str
    config_cls: type
    profiles: dict[str, dict]
    make_units: Callable[[Any, str], list[Unit]]
    analyse: Callable[[pd.DataFrame, dict, Any, Path], Findings]
    shard_size: int = 512
    folder: Callable[[Any], str] | None = None   # output folder name from the config (default: name)
    default_root: Path | None = None              # output root when --out is not given (default: by profile)

    def outdir(self, cfg: Any, opts: cli.RunOptions) -> Path:
        root = opts.out if opts.out is not None else (
            self.default_root or default_out(opts.profile, project_root(near=self.make_units)))
        return root / (self.folder(cfg) if self.folder else self.name)

    def main(self, argv: list[str] | None = None) -> int:
        try:
            cfg, opts = cli.parse(f"experiments/{self.name}.py", self.doc, self.config_cls, self.profiles, argv)
            outdir = self.outdir(cfg, opts)
            units = [] if opts.replot else self.make_units(cfg, opts.device)
            client = make_client(opts.dask) if not opts.replot else None
            if client is not None:  # experiment scripts are not importable on workers: ship their code
                import cloudpickle
                cloudpickle.register_pickle_by_value(sys.modules[self.make_units.__module__])
        except cli.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (ValueError, KeyError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2
        started = time.time()
        if opts.replot:
            if not (outdir / "runs.csv").exists():
                print(f"error: --replot needs {outdir / 'runs.csv'}; run without --replot first", file=sys.stderr)
                return 2
            line = "replot only"
            previous = json.loads((outdir / "summary.json").read_text()) if (outdir / "summary.json").exists() else {}
            compute_seconds = previous.get("provenance", {}).get("compute_seconds")
        else:
            try:
                report = run_units(units, list(range(opts.seeds)), outdir, force=opts.force,
                                   shard_size=self.shard_size, client=client, progress=opts.progress)
            finally:
                if client is not None:
                    cluster = client.cluster if opts.dask.startswith("local") else None
                    client.close()
                    if cluster is not None:
                        cluster.close()
            line = report.line()
            compute_seconds = round(report.compute_seconds, 2)
            atomic_write_text(outdir / "runs.csv", runs_table(report.records).to_csv(index=False))
            atomic_write_json(outdir / "extras.json", extras_table(report.records))
            # unit hash -> the key it hashes (mtlmech.load joins these in as config columns)
            atomic_write_json(outdir / "units.json", {u.hash: json.loads(canonical_json(u.key)) for u in units})
        runs = pd.read_csv(outdir / "runs.csv")
        extras = json.loads((outdir / "extras.json").read_text()) if (outdir / "extras.json").exists() else {}
        findings = self.analyse(runs, extras, cfg, outdir)
        judge(findings.claims)
        summary = {
            "experiment": self.name,
            "description": self.doc.strip().split("\n\n")[0].replace("\n", " "),
            "profile": opts.profile,
            "claims": [c.to_dict() for c in findings.claims],
            "constructions_tried": findings.constructions_tried,
            "tables": findings.tables,
            "figures": findings.figures,
            "n_runs": int(len(runs)),
            "provenance": provenance(config=dataclasses.asdict(cfg), device=opts.device,
                                     seeds=[0, opts.seeds], wall_seconds=time.time() - started,
                                     command=["python", f"experiments/{self.name}.py", *(argv if argv is not None else sys.argv[1:])],
                                     cache=line, compute_seconds=compute_seconds),
        }
        atomic_write_json(outdir / "summary.json", summary)
        print(f"{self.name}: {line}")
        for c in findings.claims:
            print(f"  {c.id:5s} {c.verdict:15s} effect {c.effect:+.4g} CI [{c.ci[0]:+.4g}, {c.ci[1]:+.4g}]"
                  f" p={c.p_value if c.p_value is None else f'{c.p_value:.3g}'} n={c.n}")
        print(f"  wrote {outdir}")
        return 0
