"""Command-line flags from a config dataclass, plus the options every experiment shares.

Each dataclass field ``n_train: int = 64`` becomes ``--n-train N``; tuples take several values,
booleans become ``--flag/--no-flag``. ``field(metadata={"help": ..., "choices": ...})`` adds help
text and allowed values. Precedence: dataclass default < profile < flag given on the command line.
Bad values end the program with a one-line ``error: ...`` and exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILES = ("quick", "full")


class UsageError(Exception):
    """Bad user input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump
        raise UsageError(message)


@dataclass
class RunOptions:
    profile: str
    seeds: int
    out: Path | None
    device: str
    force: bool
    replot: bool
    dask: str | None
    progress: bool | None


def _field_type(hint: Any) -> tuple[Any, str]:
    """(element type, 'scalar' | 'tuple' | 'bool') for a field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _field_type(args[0])
    if hint is bool:
        return bool, "bool"
    if origin is tuple:
        return typing.get_args(hint)[0], "tuple"
    return hint, "scalar"


def build_parser(prog: str, description: str, config_cls: type, *, seeds_default_note: str = "") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = parser.add_argument_group("run options")
    common.add_argument("--profile", choices=PROFILES, default="full",
                        help="quick: small, for trying things (writes under results/quick); full: the committed figures")
    common.add_argument("--seeds", type=int, default=None, help=f"number of seeds, 0..N-1 {seeds_default_note}")
    common.add_argument("--out", type=Path, default=None,
                        help="output root (default: figures/ for full, results/quick/ for quick)")
    common.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    common.add_argument("--force", action="store_true", help="recompute even if cached")
    common.add_argument("--replot", action="store_true", help="only re-analyse saved runs.csv (no training)")
    common.add_argument("--dask", default=None, metavar="local[:N]|tcp://HOST:PORT",
                        help="run seed shards on a Dask cluster")
    common.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: only on a terminal)")
    group = parser.add_argument_group("experiment config")
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        elem, kind = _field_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": meta.get("help", "")}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = elem
            if kind == "tuple":
                kwargs["nargs"] = "+"
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
        group.add_argument(flag, **kwargs)
    return parser


def parse(prog: str, description: str, config_cls: type, profiles: dict[str, dict],
          argv: list[str] | None = None) -> tuple[Any, RunOptions]:
    """Parse ``argv`` into (config, run options). Profiles map to field overrides plus ``seeds``."""
    parser = build_parser(prog, description, config_cls)
    ns = parser.parse_args(argv)
    profile = dict(profiles[ns.profile])
    seeds = ns.seeds if ns.seeds is not None else profile.pop("seeds")
    profile.pop("seeds", None)
    if seeds < 1:
        raise UsageError(f"--seeds must be a positive number of seeds, got {seeds}")
    values = {**profile}
    for f in dataclasses.fields(config_cls):
        given = getattr(ns, f.name)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(given, list) else given
    try:
        cfg = config_cls(**values)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    if ns.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise UsageError(f"--device {ns.device}: CUDA is not available on this machine")
    elif ns.device not in ("cpu", "mps"):
        raise UsageError(f"--device must be cpu or cuda[:N], got {ns.device!r}")
    return cfg, RunOptions(profile=ns.profile, seeds=seeds, out=ns.out, device=ns.device, force=ns.force,
                           replot=ns.replot, dask=ns.dask, progress=ns.progress)
