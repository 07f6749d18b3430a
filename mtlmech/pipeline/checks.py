"""Checks made before any training starts, so that bad input ends a run with one line naming the
flag (exit code 2) and nothing written: value rules for an experiment's own flat config fields, the
output folder (writable, enough free disk, no over-long names or symlink loops), the memory a run
needs, the environment (``MTLMECH_THREADS``, ``MTLMECH_DASK_TIMEOUT``, ``MTLMECH_ROOT``) and the
``--dask`` address.

Each setting is validated once. A nested settings dataclass validates itself in its
``__post_init__`` (:class:`~mtlmech.engine.common.TrainSpec` for ``--train.*``,
:class:`~mtlmech.engine.nets.NetConfig` for ``--net.*``, and any other nested one); the command
line turns its ValueError into ``error: --train.lr 0: lr must be ...``. The rules below apply by
name only to an experiment's own *flat* fields, which have no dataclass of their own to say so::

    n_*, *_n, *_trials, *_examples, *_seeds (int)   ≥ 0
    hidden_grid, width, *_epochs, *_eval_every, *_hidden   ≥ 1
    lr_factors, *_lr, *_lr_grid                       finite and > 0
    *_momentum                                        in [0, 1)
    *fraction                                         in [0, 1]
    decays, tol*                                      finite and ≥ 0

and the values of a numeric list flag must be distinct (a repeated size or rate is a typo, and
would train the same point twice). Anything a rule cannot express (a size that must be in a
sweep, parity bits within the input) belongs in the Config's ``__post_init__`` or the problem
factory; the driver then names the flag that caused the error
(:func:`mtlmech.pipeline.experiment.Experiment.prepare`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.resources import ResourceError, human_bytes, require_memory
from .errors import UsageError

# ---------------------------------------------------------------------------------------------
# value rules by field name

def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: v >= low


def _finite_positive(v: Any) -> bool:
    return math.isfinite(v) and v > 0


def _rule(name: str) -> tuple[Callable[[Any], bool], str] | None:
    """(predicate on one value, what it must be) for a flat field called ``name``, or None when no
    generic rule applies."""
    if name in ("hidden_grid", "width") or name.endswith(("_epochs", "_eval_every", "_hidden")):
        return _at_least(1), "≥ 1"
    if name == "lr_factors" or name.endswith(("_lr", "_lr_grid")):
        return _finite_positive, "a finite number > 0"
    if name.endswith("_momentum"):
        return (lambda v: 0 <= v < 1), "in [0, 1)"
    if name.endswith("fraction"):
        return (lambda v: 0 <= v <= 1), "in [0, 1]"
    if name == "decays" or name.startswith("tol"):
        return (lambda v: math.isfinite(v) and v >= 0), "a finite number ≥ 0"
    if name.startswith("n_") or name.endswith(("_n", "_trials", "_examples", "_seeds")):
        return _at_least(0), "≥ 0"
    return None


def check_value(dest: str, value: Any) -> None:
    """Raise a UsageError naming ``--dest`` when ``value`` (a scalar or tuple) breaks the rule for
    the flat field's name, or a numeric tuple repeats a value. A nested field (``train.lr``) is
    left to its dataclass. Strings, booleans and None (an optional value's ``none``) are not checked."""
    if "." in dest or value is None:
        return
    flag = "--" + dest.replace("_", "-")
    values = value if isinstance(value, (tuple, list)) else (value,)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if isinstance(value, (tuple, list)) and numbers and len(set(numbers)) != len(numbers):
        repeated = sorted({v for v in numbers if numbers.count(v) > 1})
        raise UsageError(f"{flag} lists {' '.join(map(str, repeated))} more than once; give each value once")
    rule = _rule(dest)
    if rule is None:
        return
    ok, what = rule
    for v in numbers:
        if not ok(v):
            shown = " ".join(str(x) for x in values)
            raise UsageError(f"{flag} must be {what}" + (" (each value)" if len(values) > 1 else "") + f", got {shown}")


# ---------------------------------------------------------------------------------------------
# sizes: memory and disk

RECORD_BYTES = 4096      # in memory per (unit, seed) result: row dicts, then the runs DataFrame
DISK_BYTES = 2048        # on disk per (unit, seed): cache shard entry plus runs.csv rows
DISK_SLACK = 32 << 20    # figures, summary.json, extras.json


def check_run_size(n_seeds: int, n_units: int, flag: str = "--seeds") -> None:
    """The results of ``n_seeds`` × ``n_units`` must fit in memory (they are gathered into one table)."""
    try:
        require_memory(float(n_seeds) * max(n_units, 1) * RECORD_BYTES,
                       f"the results of {n_seeds} seeds × {n_units} units")
    except ResourceError as exc:
        raise UsageError(f"{flag} {n_seeds}: {exc}") from None


def _nested(cfg: Any, kind: type) -> list[tuple[str, Any]]:
    """(dotted name, value) of every field of ``cfg`` (recursively) that is an instance of ``kind``."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, kind):
            out.append((f.name, value))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out += [(f"{f.name}.{n}", v) for n, v in _nested(value, kind)]
    return out


def _largest(cfg: Any, names: Callable[[str], bool]) -> int:
    """The largest int among ``cfg``'s flat fields (or their tuple values) whose name passes ``names``."""
    best = 0
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if names(f.name):
            best = max([best, *(v for v in values if isinstance(v, int) and not isinstance(v, bool))])
    return best


WORK_COPIES = 8   # per member: weights, momentum, shared snapshot, gradients, workspace (+ one snapshot per output)


def memory_estimate(cfg: Any, n_seeds: int, shard_size: int) -> tuple[float, str]:
    """A lower bound on the bytes one batch of a run holds at once, and what sets it.

    Members in a batch ≥ min(seeds, shard size) × the lr grid; each member holds its rows (train,
    halt, test, probes: ``n_train``, ``n_halt``, ``n_test``, ``n_probe`` and ``*_n`` sizes) of
    ≥ ``n_bits`` + 1 float32 columns, and ``WORK_COPIES`` copies of its weights (≥ ``hidden`` × the
    same width), plus the halt/test curves it records. Every factor is a lower bound, so only a
    run that cannot fit is refused."""
    from ..engine.common import TrainSpec
    from ..engine.nets import NetConfig
    trains = [t for _, t in _nested(cfg, TrainSpec)] or [TrainSpec()]
    nets = [n for _, n in _nested(cfg, NetConfig)] or [NetConfig()]
    width = max(_largest(cfg, lambda n: n in ("n_bits", "n_inputs")), 1) + 1
    rows = sum(_largest(cfg, lambda n, k=k: n == k) for k in ("n_train", "n_halt", "n_test", "n_probe"))
    rows = max(rows, _largest(cfg, lambda n: n.endswith("_n")))
    hidden = max(sum(n.hidden) for n in nets)
    grid = min(len(t.lr_grid) for t in trains)
    members = max(min(n_seeds, shard_size), 1) * grid
    curves = max((t.epochs // t.eval_every) * 3 if t.record_curves else 0 for t in trains)
    per_member = 4.0 * (rows * width + WORK_COPIES * hidden * width + curves * 2)
    parts = {"rows": rows * width, "weights": WORK_COPIES * hidden * width, "curves": curves * 2}
    why = max(parts, key=parts.get)
    return members * per_member, {"rows": f"{rows} rows of {width} columns", "weights": f"hidden layers of {hidden}",
                                  "curves": f"curves of {curves // 3} checks"}[why] + f" × {members} nets in a batch"


def check_memory(cfg: Any, n_seeds: int, shard_size: int, given: dict[str, Any]) -> None:
    """Refuse a run whose batch cannot fit in memory (:func:`memory_estimate`), naming the flags given."""
    need, what = memory_estimate(cfg, n_seeds, shard_size)
    try:
        require_memory(need, what)
    except ResourceError as exc:
        flags = " ".join("--" + d.replace("_", "-") for d in given) or "the profile's sizes"
        raise UsageError(f"{flags}: {exc}") from None


def check_out(folder: Path, *, need_bytes: float = 0, flag: str = "--out") -> None:
    """``folder`` (which may not exist yet) can be created and written, and its disk has
    ``need_bytes`` free. Writes nothing that stays: a probe file is created and removed."""
    folder = Path(folder)
    if str(folder) == "":
        raise UsageError(f"{flag} must name a folder, got an empty string")
    for part in folder.parts:
        if len(os.fsencode(part)) > 255:
            raise UsageError(f"{flag}: the folder name {part[:20]}… is {len(os.fsencode(part))} bytes long; "
                             f"a file system allows 255")
    existing = folder
    while True:
        try:
            os.stat(existing)
            break
        except (FileNotFoundError, NotADirectoryError):
            if existing.parent == existing:
                break
            existing = existing.parent
        except OSError as exc:   # a symlink loop, a name too long for the path, no permission
            raise UsageError(f"{flag} {folder}: {existing}: {exc.strerror or exc}") from None
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"{flag} {folder}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".mtlmech-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot write into {existing} ({exc.strerror or exc})") from None
    free = shutil.disk_usage(existing).free
    if free < need_bytes + DISK_SLACK:
        raise UsageError(f"{flag} {folder}: only {human_bytes(free)} free on its disk; this run needs about "
                         f"{human_bytes(need_bytes + DISK_SLACK)}")


# ---------------------------------------------------------------------------------------------
# the environment

def threads_setting() -> int | None:
    """``$MTLMECH_THREADS`` as a whole number ≥ 1 (None when unset); else a UsageError."""
    text = os.environ.get("MTLMECH_THREADS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"MTLMECH_THREADS must be a whole number of threads ≥ 1, got {text!r}")
    return int(text)


def check_environment() -> None:
    """The settings read from the environment: ``MTLMECH_THREADS``, ``MTLMECH_DASK_TIMEOUT`` and
    ``MTLMECH_ROOT`` (a named root must be a project even when ``--out`` is given, so that every
    entry point refuses it alike)."""
    threads_setting()
    dask_timeout()
    from .paths import ENV, project_root
    if os.environ.get(ENV):
        project_root()


# ---------------------------------------------------------------------------------------------
# --dask

def dask_spec(spec: str | None) -> str | None:
    """``local``, ``local:N`` (N ≥ 1 workers) or ``tcp://HOST:PORT`` (port 1..65535); else a UsageError."""
    if spec is None:
        return None
    if spec == "local":
        return spec
    if spec.startswith("local:"):
        n = spec.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise UsageError(f"--dask local:N needs a number of workers N ≥ 1, got {spec!r}")
        try:
            require_memory(int(n) * float(MAX_DASK_WORKERS_BYTES), f"{int(n)} local worker processes")
        except ResourceError as exc:
            raise UsageError(f"--dask {spec}: {exc}; ask for fewer workers") from None
        return spec
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--dask tcp:// needs HOST:PORT with a port in 1..65535, got {spec!r}")
        return spec
    raise UsageError(f"--dask must be local, local:N or tcp://HOST:PORT, got {spec!r}")


MAX_DASK_WORKERS_BYTES = 512 << 20   # memory of one local Dask worker process: torch imported, one shard's batch


def dask_timeout() -> float:
    """Seconds to wait for a ``--dask tcp://`` scheduler: ``$MTLMECH_DASK_TIMEOUT`` (a number > 0) or 10."""
    text = os.environ.get("MTLMECH_DASK_TIMEOUT", "").strip()
    if not text:
        return 10.0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"MTLMECH_DASK_TIMEOUT must be a number of seconds > 0, got {text!r}")
    return value
