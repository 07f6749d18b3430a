"""Full-profile speed: every experiment's full-profile configuration on its first K confirmatory
seeds, trained by the PyTorch trainer and by the default trainer (the fused one wherever it
applies), back to back in one run; the ratio of their training times per experiment.

Training time is ``provenance.compute_seconds`` of the summary each run writes (the units' compute,
not imports, analysis or figures). Each experiment runs in a fresh process per trainer, into a
scratch folder, with ``--force``; the default trainer runs first, then the PyTorch one. With
``--full DIR`` (a results root holding a full-profile run, e.g. ``figures`` or a scratch
``run_all.py --force --out DIR``) the table adds that run's training time per experiment and the
PyTorch trainer's time for it estimated as full time × ratio: timing the whole profile on the
PyTorch trainer takes hours on 2 cores.

    python benchmarks/profile_speed.py [--seeds 12] [--only NAME ...] [--full DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402

COMPARED = ("auto", "torch")   # the default trainer, then the reference


def timed_run(name: str, backend: str, seeds: int, out: Path) -> dict:
    """Run one experiment's full profile on ``seeds`` seeds; its training and wall seconds."""
    command = [sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--seeds", str(seeds), "--force",
               "--out", str(out), "--no-progress", "--backend", backend]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} --backend {backend} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads((out / name / "summary.json").read_text())
    return {"compute_seconds": summary["provenance"]["compute_seconds"], "wall_seconds": round(wall, 2),
            "n_runs": summary.get("n_runs")}


def full_profile_seconds(root: Path, name: str) -> float | None:
    path = root / name / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["provenance"].get("compute_seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12, help="seeds per experiment (default 12)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these experiments (default: all)")
    parser.add_argument("--full", type=Path, help="results root of a full-profile run, for the estimated totals")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    experiments = sorted(run_all.discover())
    names = args.only or experiments
    unknown = sorted(set(names) - set(experiments))
    if unknown or args.seeds < 3:
        print(f"profile_speed.py: {'unknown experiment ' + ', '.join(unknown) if unknown else '--seeds must be ≥ 3'}",
              file=sys.stderr)
        return 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.2f}; {args.seeds} seeds per experiment")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mtlmech-speed-") as scratch:
        for name in names:
            row = {"experiment": name}
            for backend in COMPARED:
                row[backend] = timed_run(name, backend, args.seeds, Path(scratch) / backend)
            row["ratio_torch_vs_default"] = round(row["torch"]["compute_seconds"] / row["auto"]["compute_seconds"], 2)
            if args.full is not None:
                full = full_profile_seconds(args.full, name)
                row["full_profile_seconds"] = full
                row["full_profile_torch_estimate"] = round(full * row["ratio_torch_vs_default"], 1) if full else None
            rows.append(row)
            print(f"{name:22s} default {row['auto']['compute_seconds']:8.1f} s   torch {row['torch']['compute_seconds']:8.1f} s"
                  f"   ratio {row['ratio_torch_vs_default']:5.2f}"
                  + (f"   full {row['full_profile_seconds']} s → torch ≈ {row['full_profile_torch_estimate']} s"
                     if args.full is not None else ""), flush=True)
    sub_default = sum(r["auto"]["compute_seconds"] for r in rows)
    sub_torch = sum(r["torch"]["compute_seconds"] for r in rows)
    result = {"seeds": args.seeds, "load_at_end": os.getloadavg()[0], "experiments": rows,
              "subset_default_seconds": round(sub_default, 1), "subset_torch_seconds": round(sub_torch, 1),
              "subset_ratio": round(sub_torch / sub_default, 2)}
    print(f"all: default {sub_default:.1f} s, torch {sub_torch:.1f} s, ratio {result['subset_ratio']:.2f}")
    if args.full is not None and all(r["full_profile_seconds"] for r in rows):
        full = sum(r["full_profile_seconds"] for r in rows)
        estimate = sum(r["full_profile_torch_estimate"] for r in rows)
        result.update(full_profile_seconds=round(full, 1), full_profile_torch_estimate=round(estimate, 1),
                      full_profile_ratio=round(estimate / full, 2))
        print(f"full profile: {full:.0f} s training; the PyTorch trainer ≈ {estimate:.0f} s ({estimate / full:.2f}×)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
