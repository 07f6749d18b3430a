"""Checks made before any training starts, so that bad input ends a run with one line naming the
flag (exit code 2) and nothing written: value rules for config fields by name, the output folder
(writable, enough free disk), the memory a run's results and a problem's tables need, and the
``--dask`` address.

The value rules are generic: they apply to every experiment's config by field name, including
the nested ``train.*`` / ``net.*`` fields and the version-1 flat fields (``lr``, ``epochs``, ...)::

    n_*, *_n, *_trials, *_examples (int)       ≥ 0
    epochs, eval_every, hidden, patience, ...  ≥ 1 (also *_epochs, *_eval_every, *_hidden, hidden_grid)
    lr, *_lr, lr_grid, *_lr_grid, lr_factors   finite and > 0
    momentum, *_momentum                       in [0, 1)
    *fraction                                  in [0, 1]
    weight_decay, decays, min_delta, tol*      ≥ 0

Anything a rule cannot express (a size that must be in a sweep, parity bits within the input)
belongs in the Config's ``__post_init__`` or the problem factory; the driver then names the flag
that caused the error (:func:`mtlmech.pipeline.experiment.Experiment.prepare`).
"""

from __future__ import annotations

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
    """(predicate on one value, what it must be) for a field called ``name`` (last part of a dotted
    name), or None when no generic rule applies."""
    if name in ("epochs", "eval_every", "hidden", "patience", "batch_size", "hidden_grid", "width") \
            or name.endswith(("_epochs", "_eval_every", "_hidden")):
        return _at_least(1), "≥ 1"
    if name in ("lr", "lr_grid", "lr_factors", "init_scale") or name.endswith(("_lr", "_lr_grid")):
        return _finite_positive, "a finite number > 0"
    if name == "momentum" or name.endswith("_momentum"):
        return (lambda v: 0 <= v < 1), "in [0, 1)"
    if name.endswith("fraction"):
        return (lambda v: 0 <= v <= 1), "in [0, 1]"
    if name in ("weight_decay", "decays", "min_delta") or name.startswith("tol"):
        return (lambda v: math.isfinite(v) and v >= 0), "a finite number ≥ 0"
    if name.startswith("n_") or name.endswith(("_n", "_trials", "_examples", "_seeds")):
        return _at_least(0), "≥ 0"
    return None


def check_value(dest: str, value: Any) -> None:
    """Raise a UsageError naming ``--dest`` when ``value`` (a scalar or tuple) breaks the rule for
    the field's name. Strings, booleans and None (an optional value's ``none``) are not checked."""
    rule = _rule(dest.rsplit(".", 1)[-1])
    if rule is None or value is None:
        return
    ok, what = rule
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not ok(v):
            flag = "--" + dest.replace("_", "-")
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


def check_out(folder: Path, *, need_bytes: float = 0, flag: str = "--out") -> None:
    """``folder`` (which may not exist yet) can be created and written, and its disk has
    ``need_bytes`` free. Writes nothing that stays: a probe file is created and removed."""
    folder = Path(folder)
    if str(folder) == "":
        raise UsageError(f"{flag} must name a folder, got an empty string")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
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
        return spec
    if spec.startswith("tcp://"):
        host, _, port = spec[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--dask tcp:// needs HOST:PORT with a port in 1..65535, got {spec!r}")
        return spec
    raise UsageError(f"--dask must be local, local:N or tcp://HOST:PORT, got {spec!r}")


def dask_timeout() -> float:
    """Seconds to wait for a ``--dask tcp://`` scheduler: ``$MTLMECH_DASK_TIMEOUT`` or 10."""
    try:
        value = float(os.environ.get("MTLMECH_DASK_TIMEOUT", "10"))
    except ValueError:
        value = 10.0
    return value if value > 0 else 10.0
