"""Run every registered experiment and regenerate the figures and REPORT.md.

    python run_all.py                      # full profile → figures/ and figures/REPORT.md
    python run_all.py --profile quick      # small and fast → results/quick/ (never touches figures/)
    python run_all.py --only parity_tasks --seeds 50
    python run_all.py --list

An experiment is any ``experiments/<name>.py`` that defines ``EXPERIMENT``. Cached runs are reused.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from mtlmech.experiment import default_out
from mtlmech.report import write_report
from mtlmech.tasks import problem_descriptions

ROOT = Path(__file__).resolve().parent


def discover() -> dict:
    """name → Experiment for every experiment script."""
    found = {}
    for path in sorted((ROOT / "experiments").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"experiments.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        if hasattr(module, "EXPERIMENT"):
            found[module.EXPERIMENT.name] = module.EXPERIMENT
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "full"), default="full")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    parser.add_argument("--list", action="store_true", help="list experiments and registered problems")
    parser.add_argument("--seeds", type=int, default=None, help="override every experiment's number of seeds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true", help="recompute even if cached")
    parser.add_argument("--dask", default=None, metavar="local[:N]|tcp://HOST:PORT")
    parser.add_argument("--out", type=Path, default=None, help="output root (default: figures/ or results/quick/)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    experiments = discover()
    if args.list:
        print("experiments:")
        for name, exp in experiments.items():
            print(f"  {name:22s} {exp.doc.strip().splitlines()[0]}")
        print("problems (for experiments/compare.py --problem NAME):")
        for name, text in problem_descriptions().items():
            print(f"  {name:22s} {text}")
        return 0
    names = args.only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        print(f"error: unknown experiment(s) {', '.join(unknown)}; known: {', '.join(experiments)}", file=sys.stderr)
        return 2
    if args.seeds is not None and args.seeds < 1:
        print(f"error: --seeds must be a positive number of seeds, got {args.seeds}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else default_out(args.profile)
    common = ["--profile", args.profile, "--device", args.device, "--out", str(out)]
    common += ["--seeds", str(args.seeds)] if args.seeds is not None else []
    common += ["--force"] if args.force else []
    common += ["--dask", args.dask] if args.dask else []
    common += [] if args.progress is None else (["--progress"] if args.progress else ["--no-progress"])
    started, failed = time.time(), []
    with tqdm(names, desc="experiments", unit="exp", disable=None if args.progress is None else not args.progress) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            t0 = time.time()
            code = experiments[name].main(common)
            print(f"[{name}] exit {code} in {time.time() - t0:.0f} s", flush=True)
            if code:
                failed.append(name)
    command = "python run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = write_report(out, command=command.strip())
    print(f"wrote {report} ({time.time() - started:.0f} s in all)")
    if failed:
        print(f"error: failed experiments: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
