"""The ``mtlmech`` command (also ``python -m mtlmech``):

    mtlmech list                      experiments, registered problems and sources
    mtlmech run NAME [FLAGS...]       one experiment, FLAGS as for python experiments/NAME.py
    mtlmech run-all [FLAGS...]        the whole suite, FLAGS as for python run_all.py
    mtlmech report [--out DIR]        regenerate REPORT.md from the summaries under DIR
    mtlmech show NAME [--out DIR]     the claims of a saved summary as a table

Run it inside a clone of the repository (or below it), or pass ``--root DIR`` / set
``MTLMECH_ROOT``: experiments and default output folders are those of that project, never of the
installed package.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .pipeline.cli import UsageError
from .pipeline.experiment import default_out
from .pipeline.outputs import OutputsError
from .pipeline.paths import ENV, project_root, root_scope, use_root
from .suite import HelpFormatter, OneLineParser, discover, listing, run_all


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def claims_table(claims) -> str:
    """A plain-text table of a :func:`mtlmech.load_claims` frame, one claim per line."""
    header = ["ID", "verdict", "effect", "95% CI", "p", "p (Holm)", "n", "statement"]
    rows = [[c.id, c.verdict, _fmt(c.effect), f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]", _fmt(c.p_value),
             _fmt(c.p_holm), _fmt(c.n), c.statement] for c in claims.itertuples()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in [header, *rows])


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mtlmech", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--root", type=Path, default=None,
                        help=f"project folder (default: ${ENV}, else the current folder or the nearest parent "
                             "with experiments/)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list experiments, registered problems and sources",
                   formatter_class=HelpFormatter)
    run = sub.add_parser("run", help="run one experiment (mtlmech run NAME --help lists its flags)",
                         formatter_class=HelpFormatter)
    run.add_argument("name", help="experiment name (see mtlmech list)")
    run.add_argument("flags", nargs=argparse.REMAINDER, help="passed to the experiment")
    sub.add_parser("run-all", add_help=False, help="run the whole suite (mtlmech run-all --help lists its flags)")
    for name, text in (("report", "regenerate REPORT.md from the saved summaries"),
                       ("show", "print the claims of a saved summary as a table")):
        cmd = sub.add_parser(name, help=text, formatter_class=HelpFormatter)
        if name == "show":
            cmd.add_argument("name", help="experiment name")
        cmd.add_argument("--profile", choices=("quick", "full"), default="full",
                         help="which default output root: figures/ (full) or results/quick/ (quick)")
        cmd.add_argument("--out", type=Path, default=None, help="output root (default: by --profile)")
    return parser


def _report(out: Path, argv: list[str]) -> int:
    from .pipeline.results import read_summary
    from .report.markdown import write_report
    found = sorted(out.glob("*/summary.json"))
    if not found:
        raise UsageError(f"no <experiment>/summary.json under {out}; run experiments first or pass --out DIR")
    for summary in found:   # each checked against its manifest and parsed before REPORT.md is built from them
        read_summary(summary)
    try:
        path = write_report(out, command=" ".join(["mtlmech", *argv]))
    except (KeyError, TypeError, AttributeError, IndexError) as exc:   # well-formed JSON, not a summary this code wrote
        raise UsageError(f"a summary.json under {out} lacks what REPORT.md needs ({type(exc).__name__}: {exc}); "
                         f"rerun that experiment or --replot it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {Path(exc.filename or out / 'REPORT.md')}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    return 0


def _find_summary(name: str, outs: list[Path]) -> Path:
    """The first of ``outs`` that holds ``name/summary.json`` (so ``mtlmech show compare_…`` finds
    results/ without ``--out``); an error naming the folders looked in and what they hold."""
    for out in outs:
        if (out / name / "summary.json").exists():
            return out
    held = sorted({p.parent.name for out in outs for p in out.glob("*/summary.json")})
    raise UsageError(f"no results for {name!r} (no {name}/summary.json under {', '.join(map(str, dict.fromkeys(outs)))})"
                     + (f"; saved results: {', '.join(held)}" if held else "; run the experiment first"))


def _show(name: str, out: Path) -> int:
    from .pipeline.results import load_claims, read_summary
    from .pipeline.verdict_lines import QUICK_LABEL, edge_note
    summary = out / name / "summary.json"
    claims = load_claims(name, out)
    saved = read_summary(summary)
    profile = saved.get("profile", "?")
    label = f" — {QUICK_LABEL}" if profile == "quick" else ""
    print(f"{name} ({profile} profile{label}, {summary}): {len(claims)} claim{'s' * (len(claims) != 1)}")
    print(claims_table(claims))
    for c in saved.get("claims", []):
        note = edge_note(c.get("training") or {})
        if note:
            print(f"{c['id']}: {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after "run-all" belongs to the suite's own parser (argparse would claim --help)
    cut = argv.index("run-all") + 1 if "run-all" in argv else len(argv)
    args = build_parser().parse_args(argv[:cut])
    if args.command == "run-all":
        args.flags = argv[cut:]
    with root_scope():   # --root holds for this call only
        return _main(args, argv)


def _main(args, argv: list[str]) -> int:
    try:
        if args.root is not None:
            use_root(args.root)
        root = project_root()
        if args.command == "run-all":
            return run_all(args.flags, root=root, prog="mtlmech run-all", command="mtlmech run-all")
        if args.command in ("report", "show"):
            out = args.out if args.out is not None else default_out(args.profile, root)
            if args.command == "report":
                return _report(out, argv)
            if args.out is None:   # by --profile, then the other default roots (compare writes to results/)
                out = _find_summary(args.name, [out, root / "results", default_out("quick", root),
                                                default_out("full", root)])
            return _show(args.name, out)
        experiments = discover(root)
        if args.command == "list":
            print(listing(experiments))
            return 0
        if args.name not in experiments:
            raise UsageError(f"unknown experiment {args.name!r}; known: {', '.join(experiments)}")
        return experiments[args.name].main(args.flags)
    except (UsageError, FileNotFoundError, OutputsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # a run's own Ctrl-C line comes from the driver; this covers list/report/show
        print("interrupted", file=sys.stderr)
        return 130
