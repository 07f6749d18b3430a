"""Command-line flags from a config dataclass, plus the options every experiment shares.

Each dataclass field ``n_train: int = 64`` becomes ``--n-train N``; tuples take several values
(also over repeated flags: ``--param a=1 --param b=2``), booleans become ``--flag/--no-flag``,
optional values also accept ``none``. A field that is itself a dataclass (``train: TrainSpec``,
``net: NetConfig``) contributes one flag per inner field, ``--train.lr 0.3``, ``--train.lr-grid 1 2 4``,
``--net.hidden 16``, whose default is the value in the experiment's own instance
(``TrainSpec(lr=0.5, ...)``); a profile overrides inner fields with a dict
(``train=dict(epochs=500)``). ``field(metadata={"help": ..., "choices": ...})`` adds help text and
allowed values. Precedence: dataclass default < profile < flag given on the command line.
``--help`` shows, per flag, the value a run uses and each profile's own (``(default: 50000;
quick: 4000)``). Each value is validated once, by its dataclass's ``__post_init__``; a bad value
ends the program with a one-line ``error: --flag ...`` and exit code 2, before anything is
written or locked.

Why this parser is hand-written (issue 24 §4; evaluated against tyro 1.0.17, which builds the
same Config from the same flags and exits 2 on bad values): the project's error contract is one
line ``error: ...`` that names the flag, exit code 2, nothing written. tyro prints a boxed error:
``--train.lr abc`` gave 9 lines (a rich panel with the argument's help text), and a value the
dataclass refuses (``--train.lr 0``) gave 5 lines reading ``Error parsing train: lr must be a
finite number > 0`` — naming the nested config, not the flag; ``console_outputs=False`` still
printed that panel. tyro also keeps only the last of a repeated tuple flag (``--param a=1 --param
b=2`` gave ``('b=2',)``, the very fault issue 30 reports), spells booleans ``--train.no-record-curves``
where the committed commands say ``--no-train.record-curves``, and cannot show the profiles'
overrides in ``--help``. Wrapping it to capture and rewrite its output would cost about the code it
saves (this module's flattening and ``_apply`` are ~60 lines), so argparse stays.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

PROFILES = ("quick", "full")
_UNSET = object()   # a config flag not given on the command line (``none`` is a value)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a UsageError (one line, exit code 2, no usage dump)."""

    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump
        raise UsageError(message)


Parser = _Parser   # for an experiment's own modes (``--show-run``)


# Seed streams: each profile's, pilots' ("pilot") and the replication sample's ("replicate": a v3
# experiment's full profile runs it beside "confirm"; never a profile's or a pilot's stream).
STREAMS = {"quick": "quick", "full": "confirm"}   # seed stream of each profile; pilots use "pilot"
PILOT_STREAM = "pilot"
REPLICATE_STREAM = "replicate"


@dataclass(frozen=True)
class RunContext:
    """What a unit's computation receives besides its config: the device, the seed stream (so
    quick, pilot and confirmatory runs never share a seed's data or initial weights) and the
    requested trainer backend. All three enter the cache key."""

    device: str = "cpu"
    stream: str = "confirm"
    backend: str = "auto"


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
    stream: str = "confirm"
    backend: str = "auto"
    seed_ids: tuple[int, ...] | None = None
    given: dict[str, Any] = dataclasses.field(default_factory=dict)   # config flags given: dest -> value

    @property
    def seed_list(self) -> list[int]:
        return list(self.seed_ids) if self.seed_ids is not None else list(range(self.seeds))

    @property
    def context(self) -> RunContext:
        return RunContext(device=self.device, stream=self.stream, backend=self.backend)


def _field_type(hint: Any) -> tuple[Any, str]:
    """(element type, 'scalar' | 'tuple' | 'bool' | 'config') for a field's type hint; an optional
    element type accepts ``none``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        elem, kind = _field_type(args[0])
        if len(args) < len(typing.get_args(hint)) and kind != "bool":
            elem = _optional(elem)
        return elem, kind
    if dataclasses.is_dataclass(hint):
        return hint, "config"
    if hint is bool:
        return bool, "bool"
    if origin is tuple:
        return typing.get_args(hint)[0], "tuple"
    return hint, "scalar"


def _optional(elem: Any) -> Any:
    def parse(text: str):
        return None if text.lower() == "none" else elem(text)
    parse.__name__ = getattr(elem, "__name__", "value")
    return parse


def _number(elem: Any) -> Any:
    """A parser for ``elem`` that refuses NaN and infinities (no setting here means them)."""
    if elem is not float:
        return elem

    def parse(text: str) -> float:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(text)
        return value
    parse.__name__ = "float"
    return parse


def _out_path(text: str) -> Path:
    if not text.strip():
        raise ValueError("an empty --out would write into the current folder")
    return Path(text)


_out_path.__name__ = "folder"


def _config_fields(config_cls: type, prefix: str = "", instance: Any = None) -> list[tuple[str, Any, str, dict, Any]]:
    """(dest, element type, kind, metadata, default) for every flag of a config dataclass, with
    nested dataclass fields flattened to ``outer.inner`` names. A nested field's default is the
    value in the enclosing default (``train: TrainSpec = TrainSpec(lr=0.5)`` gives ``train.lr``
    the default 0.5, not TrainSpec's own 0.1)."""
    out = []
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        elem, kind = _field_type(hints[f.name])
        if instance is not None:
            default = getattr(instance, f.name)
        else:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if kind == "config":
            out += _config_fields(elem, prefix + f.name + ".", default if dataclasses.is_dataclass(default) else None)
        else:
            out.append((prefix + f.name, elem, kind, dict(f.metadata), default))
    return out


class _Extend(argparse.Action):
    """A list flag: values given after one flag, or over repeated flags, are all kept
    (``--param a=1 --param b=2`` is ``a=1 b=2``; argparse's own ``nargs="+"`` keeps the last)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, _UNSET)
        setattr(namespace, self.dest, (list(current) if isinstance(current, list) else []) + list(values))


def _profile_value(profile: dict, dest: str) -> Any:
    """The value a profile sets for ``dest`` (dotted for nested fields), or _UNSET."""
    value: Any = profile
    for part in dest.split("."):
        if not isinstance(value, dict) or part not in value:
            return _UNSET
        value = value[part]
    return value


def _defaults_note(default: Any, dest: str, profiles: dict[str, dict], default_profile: str = "full") -> str:
    """``(default: 50000; quick: 4000)``: the value a run of the default profile uses, and each other
    profile's where it differs."""
    base = _profile_value(profiles.get(default_profile, {}), dest)
    base = default if base is _UNSET else base
    notes = [f"default: {_show(base)}"]
    for name, profile in profiles.items():
        value = _profile_value(profile, dest)
        if name != default_profile and value is not _UNSET and value != base:
            notes.append(f"{name}: {_show(value)}")
    return "(" + "; ".join(notes) + ")"


_METAVARS = {"int": "N", "float": "X", "str": "TEXT"}


def summary_of(doc: str) -> str:
    """A registration docstring's first paragraph (what ``--help`` shows of it)."""
    return doc.strip().split("\n\n")[0].strip()


def build_parser(prog: str, description: str, config_cls: type, profiles: dict[str, dict] | None = None, *,
                 commands: dict[str, tuple[str, str | None]] | None = None) -> argparse.ArgumentParser:
    """The parser of one experiment. ``--help`` shows the first paragraph of ``description`` (the
    registration docstring; ``--registration`` prints all of it), and for every option the value a
    run uses: the experiment's own defaults (nested ones included) and each profile's overrides.
    ``commands`` (flag → (help, metavar or None for a flag without a value)) are the experiment's
    other modes (e.g. ``--show-run SEED``), which the driver dispatches before parsing."""
    profiles = profiles or {}
    text = summary_of(description) + f"\n\nFull registration (construction, measures, tests): {prog} --registration"
    parser = _Parser(prog=prog, description=text, formatter_class=argparse.RawDescriptionHelpFormatter,
                     usage=f"{prog} [-h] [--registration] [run options] [experiment config]")
    common = parser.add_argument_group("run options")
    common.add_argument("--profile", choices=PROFILES, default="full",
                        help="quick: small, for trying things (writes under results/quick); full: the committed "
                             "figures (default: full)")
    common.add_argument("--seeds", type=int, default=None,
                        help="number of seeds, 0..N-1 " + _defaults_note(None, "seeds", profiles))
    common.add_argument("--seed-ids", type=int, nargs="+", default=None, metavar="SEED",
                        help="run exactly these seeds (e.g. to re-check single committed runs); overrides --seeds")
    common.add_argument("--out", type=_out_path, default=None,
                        help="output root (default: figures/ for full, results/quick/ for quick)")
    common.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")
    common.add_argument("--force", action="store_true", help="recompute even if cached")
    common.add_argument("--replot", action="store_true", help="only re-analyse saved runs.csv (no training)")
    common.add_argument("--dask", default=None, metavar="local[:N]|tcp://HOST:PORT",
                        help="run seed shards on a Dask cluster (a scheduler must answer within "
                             "$MTLMECH_DASK_TIMEOUT seconds, default 10)")
    common.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: only on a terminal)")
    common.add_argument("--pilot", action="store_true",
                        help="draw seeds from the pilot stream (for design choices; never confirmatory)")
    common.add_argument("--backend", choices=("auto", "torch", "fused"), default="auto",
                        help="trainer: fused kernel where it applies (auto), or force one (default: auto)")
    common.add_argument("--registration", action="store_true",
                        help="print the full pre-registration (construction, measures, tests) and exit")
    for flag, (help_text, metavar) in (commands or {}).items():
        if metavar:
            common.add_argument(flag, help=help_text, metavar=metavar)
        else:
            common.add_argument(flag, help=help_text, action="store_true")
    group = parser.add_argument_group("experiment config")
    for dest, elem, kind, meta, default in _config_fields(config_cls):
        flag = "--" + dest.replace("_", "-")
        note = _defaults_note(default, dest, profiles)
        kwargs: dict[str, Any] = {"dest": dest, "default": _UNSET, "help": f"{meta.get('help', '')} {note}".strip()}
        if kind != "bool" and "choices" not in meta:
            kwargs["metavar"] = _METAVARS.get(getattr(elem, "__name__", ""), "VALUE")
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _number(elem)
            if kind == "tuple":
                kwargs["nargs"] = "+"
                kwargs["action"] = _Extend
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
        group.add_argument(flag, **kwargs)
    return parser


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(_show(v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def _apply(config_cls: type, base: Any, values: dict[str, Any]) -> Any:
    """``config_cls`` built from ``base`` (an instance or None) with ``values`` (nested dicts or
    dotted names for inner configs) applied."""
    hints = typing.get_type_hints(config_cls)
    kwargs = {}
    nested: dict[str, dict] = {}
    for name, value in values.items():
        outer, _, inner = name.partition(".")
        if inner:
            nested.setdefault(outer, {})[inner] = value
        elif isinstance(value, dict):
            nested.setdefault(outer, {}).update(value)
        else:
            kwargs[name] = value
    for outer, inner in nested.items():
        elem, kind = _field_type(hints[outer])
        if kind != "config":
            raise UsageError(f"{outer} is not a nested config")
        current = getattr(base, outer) if base is not None else next(
            f.default if f.default is not dataclasses.MISSING else f.default_factory()
             for f in dataclasses.fields(config_cls) if f.name == outer)
        kwargs[outer] = dataclasses.replace(current, **inner)
    return dataclasses.replace(base, **kwargs) if base is not None else config_cls(**kwargs)


def flags_named(message: str, given: dict[str, Any]) -> bool:
    """Whether ``message`` already names one of the ``given`` config flags."""
    return any("--" + dest.replace("_", "-") in message for dest in given)


def with_flag(message: str, given: dict[str, Any], fails: Callable[[dict[str, Any]], bool]) -> str:
    """``message`` led by the flag(s) that cause it: each given flag alone is tried with ``fails``
    (True when that setting alone raises); a message that already names a flag is kept."""
    if flags_named(message, given):
        return message
    culprits = [dest for dest in given if fails({dest: given[dest]})]
    if not culprits:
        return message
    shown = " ".join("--" + d.replace("_", "-") + " " + _show(given[d]) for d in culprits)
    return f"{shown}: {message}"


def build_config(config_cls: type, profile: dict[str, Any], given: dict[str, Any]) -> Any:
    """The config of ``profile`` (field overrides) with the ``given`` flags applied; a bad value is
    a UsageError that names its flag."""
    def build(values: dict[str, Any]) -> Any:
        cfg = _apply(config_cls, _apply(config_cls, None, profile), values)
        check_layers(cfg)
        return cfg
    try:
        return build(given)
    except (ValueError, TypeError) as exc:
        def fails(one: dict[str, Any]) -> bool:
            try:
                build(one)
            except (ValueError, TypeError):
                return True
            return False
        raise UsageError(with_flag(str(exc), given, fails)) from None


def check_layers(cfg: Any) -> None:
    """Each TrainSpec's ``layer_lr`` has one multiplier per weight layer of its net: ``X_train`` goes
    with ``X_net`` when the config has one, else with ``net``."""
    from ..engine.common import TrainSpec
    from ..engine.nets import NetConfig
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for name, spec in fields.items():
        if isinstance(spec, TrainSpec) and spec.layer_lr is not None:
            net = fields.get(name[:-len("train")] + "net") if name.endswith("train") else None
            net = net if isinstance(net, NetConfig) else fields.get("net")
            if isinstance(net, NetConfig):
                spec.check_layers(len(net.hidden) + 1)


def as_tuples(value: Any) -> Any:
    """A config read back from JSON with its lists turned back into tuples (also inside dicts)."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
    return value


def saved_config(config_cls: type, saved: dict[str, Any], given: dict[str, Any] | None = None) -> Any:
    """``config_cls`` from a config saved in a summary (``dataclasses.asdict`` read back from JSON:
    nested configs as dicts, tuples as lists), with the ``given`` flags applied."""
    return build_config(config_cls, as_tuples(saved), given or {})


def check_device(device: str) -> None:
    """``--device``: cpu, cuda[:N] or mps, each only where this machine and its torch have it."""
    import torch
    if device.startswith("cuda"):
        index = device[len("cuda"):]
        if index and not (index.startswith(":") and index[1:].isdigit()):
            raise UsageError(f"--device must be cpu, mps or cuda[:N], got {device!r}")
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: CUDA is not available on this machine")
        if index and int(index[1:]) >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("--device mps: MPS (Apple GPU) is not available with this machine's torch")
    elif device != "cpu":
        raise UsageError(f"--device must be cpu, mps or cuda[:N], got {device!r}")


def parse(prog: str, description: str, config_cls: type, profiles: dict[str, dict],
          argv: list[str] | None = None, *,
          commands: dict[str, tuple[str, str | None]] | None = None) -> tuple[Any, RunOptions]:
    """Parse ``argv`` into (config, run options). Profiles map to field overrides plus ``seeds``.
    Everything is checked here, before the caller creates a folder or takes a lock: flags, the
    config (its dataclasses' own rules), the device, ``--dask``'s form and the environment."""
    parser = build_parser(prog, description, config_cls, profiles, commands=commands)
    ns = parser.parse_args(argv)
    if ns.registration:
        print(description.strip())
        raise SystemExit(0)
    from .checks import check_environment, check_value, dask_spec
    check_environment()
    profile = dict(profiles[ns.profile])
    seeds = ns.seeds if ns.seeds is not None else profile.pop("seeds")
    profile.pop("seeds", None)
    if seeds < 1:
        raise UsageError(f"--seeds must be a positive number of seeds, got {seeds}")
    if ns.seed_ids is not None and (min(ns.seed_ids) < 0 or len(set(ns.seed_ids)) != len(ns.seed_ids)):
        raise UsageError(f"--seed-ids must be distinct seeds ≥ 0, got {ns.seed_ids}")
    given = {}
    for dest, *_ in _config_fields(config_cls):
        value = getattr(ns, dest)
        if value is not _UNSET:
            given[dest] = tuple(value) if isinstance(value, list) else value
    for dest, value in given.items():
        check_value(dest, value)
    cfg = build_config(config_cls, profile, given)
    dask_spec(ns.dask)
    check_device(ns.device)
    stream = PILOT_STREAM if ns.pilot else STREAMS[ns.profile]
    return cfg, RunOptions(profile=ns.profile, seeds=seeds, out=ns.out, device=ns.device, force=ns.force,
                           replot=ns.replot, dask=ns.dask, progress=ns.progress, stream=stream, backend=ns.backend,
                           seed_ids=tuple(ns.seed_ids) if ns.seed_ids is not None else None, given=given)
