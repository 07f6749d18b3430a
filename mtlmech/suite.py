"""The experiment suite: every ``experiments/<name>.py`` of a project that defines ``EXPERIMENT``,
listed and run together. ``python run_all.py`` and ``mtlmech list | run | run-all`` both use it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from tqdm.auto import tqdm

from .engine.training import BACKENDS
from .pipeline.checks import check_environment, check_out, dask_spec
from .pipeline.cli import UsageError, _out_path, check_device
from .pipeline.experiment import Experiment, default_out, load_script, make_client
from .pipeline.paths import project_root, using_root
from .report.citations import CITATIONS

DOC = """Run every registered experiment and regenerate the figures and REPORT.md.

    {prog}                      # full profile → figures/ and figures/REPORT.md
    {prog} --profile quick      # small and fast → results/quick/ (never touches figures/)
    {prog} --only parity_tasks --seeds 50
    {prog} --list

An experiment is any experiments/<name>.py that defines EXPERIMENT. Cached runs are reused.
"""


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments end the program with a one-line ``error: ...`` and exit code 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends each option's default when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text \
                and (action.option_strings or action.nargs in ("?", "*")):
            text += " (default: %(default)s)"
        return text


def discover(root: Path | None = None) -> dict[str, Experiment]:
    """name → Experiment for every experiment script under ``<root>/experiments`` (default: the
    project root, see :mod:`mtlmech.pipeline.paths`)."""
    root = project_root() if root is None else Path(root)
    found = {}
    with using_root(root) as resolved:
        for path in sorted((resolved / "experiments").glob("*.py")):
            try:
                module = load_script(path)
            except Exception as exc:   # noqa: BLE001 - any error in a user's file is one line naming it
                where = next((f"line {frame.lineno}" for frame in reversed(_frames(exc))
                              if Path(frame.filename) == path), "")
                message = str(exc).splitlines()[0] if str(exc) else ""
                raise UsageError(f"{path}{': ' + where if where else ''}: the experiment file fails to load "
                                 f"({type(exc).__name__}{': ' + message if message else ''})") from None
            if hasattr(module, "EXPERIMENT"):
                found[module.EXPERIMENT.name] = module.EXPERIMENT
    return found


def _frames(exc: BaseException) -> list:
    import traceback
    frames = list(traceback.extract_tb(exc.__traceback__))
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append(traceback.FrameSummary(exc.filename, exc.lineno or 0, "<module>"))
    return frames


def listing(experiments: dict[str, Experiment]) -> str:
    """The experiments, the registered problems and the citation keys, one per line."""
    from .problems.tasks import problem_descriptions
    lines = ["experiments:"]
    for name, exp in experiments.items():   # the docstring's first paragraph, whole, wrapped
        first = " ".join(exp.doc.strip().split("\n\n")[0].split())
        lines += textwrap.wrap(first, 100, initial_indent=f"  {name:22s} ", subsequent_indent=" " * 25,
                               break_on_hyphens=False)
    lines.append("problems (for experiments/compare.py --problem NAME):")
    lines += [f"  {name:22s} {text}" for name, text in problem_descriptions().items()]
    lines.append("sources (the keys in each claim's source; docs/SOURCES.md says what each one claims):")
    lines += [f"  {key:22s} {ref}" for key, ref in CITATIONS.items()]
    return "\n".join(lines)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=DOC.format(prog=prog), formatter_class=HelpFormatter)
    parser.add_argument("--profile", choices=("quick", "full"), default="full",
                        help="quick: small, for trying things; full: the committed figures")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (default: all)")
    parser.add_argument("--list", action="store_true", help="list experiments, registered problems and sources")
    parser.add_argument("--seeds", type=int, default=None,
                        help="override every experiment's number of seeds (default: each profile's own)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="trainer: auto (the fused one where it applies), torch (the reference) or fused")
    parser.add_argument("--force", action="store_true", help="recompute even if cached")
    parser.add_argument("--dask", default=None, metavar="local[:N]|tcp://HOST:PORT",
                        help="run seed shards on a Dask cluster (default: in this process)")
    parser.add_argument("--out", type=_out_path, default=None,
                        help="output root (default: figures/ for full, results/quick/ for quick)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: bars on a terminal, a plain line with done/total and "
                             "ETA every MTLMECH_PROGRESS_EVERY seconds (30) otherwise)")
    return parser


def run_all(argv: list[str] | None = None, *, root: Path | None = None, prog: str = "run_all.py",
            command: str = "python run_all.py") -> int:
    """Run the suite as ``python run_all.py`` does; ``command`` is recorded in REPORT.md. Ctrl-C
    ends it with one line and exit code 130."""
    args = build_parser(prog).parse_args(argv)
    try:
        check_environment()
        root = project_root() if root is None else Path(root)
        experiments = discover(root)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print(listing(experiments))
        return 0
    names = args.only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        print(f"error: unknown experiment(s) {', '.join(unknown)}; known: {', '.join(experiments)}", file=sys.stderr)
        return 2
    if args.seeds is not None and args.seeds < 1:
        print(f"error: --seeds must be a positive number of seeds, got {args.seeds}", file=sys.stderr)
        return 2
    try:
        return _run_all(args, argv, experiments, root, command)
    except KeyboardInterrupt:
        print("interrupted; computed results are kept in the cache", file=sys.stderr)
        return 130


def _run_all(args, argv, experiments, root: Path, command: str) -> int:
    from .report.markdown import write_report
    names = args.only or list(experiments)
    out = args.out if args.out is not None else default_out(args.profile, root)
    common = ["--profile", args.profile, "--device", args.device, "--backend", args.backend, "--out", str(out)]
    common += ["--seeds", str(args.seeds)] if args.seeds is not None else []
    common += ["--force"] if args.force else []
    common += ["--dask", args.dask] if args.dask else []
    common += [] if args.progress is None else (["--progress"] if args.progress else ["--no-progress"])
    try:   # the shared options, then every experiment's flags, config and sizes, before anything is trained or written
        check_device(args.device)
        dask_spec(args.dask)
        check_out(out)
        if args.dask and args.dask.startswith("tcp://"):
            make_client(args.dask).close()   # reachable once here, not after the first experiment
        for name in names:
            try:
                experiments[name].prepare(common)
            except UsageError as exc:
                raise UsageError(str(exc) if len(names) == 1 else f"[{name}] {exc}") from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started, failed = time.time(), []
    with tqdm(names, desc="experiments", unit="exp", disable=None if args.progress is None else not args.progress) as bar:
        for i, name in enumerate(bar, 1):
            bar.set_postfix_str(name)
            t0 = time.time()
            code = experiments[name].main(common)
            if code == 130:   # Ctrl-C: the experiment said what is kept; the suite stops too
                return 130
            print(f"[{name}] exit {code} in {time.time() - t0:.0f} s ({i}/{len(names)} experiments, "
                  f"{time.time() - started:.0f} s in all)", flush=True)
            if code:
                failed.append(name)
    full_command = command + " " + " ".join(argv if argv is not None else sys.argv[1:])
    report = write_report(out, command=full_command.strip())
    print(f"wrote {report} ({time.time() - started:.0f} s in all)")
    if failed:
        print(f"error: failed experiments: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
