"""Run units of work over seeds with caching, sharding, progress bars and optional Dask scale-out.

A :class:`Unit` is one configuration (e.g. one training-set size with its STL and MTL conditions)
whose ``compute(seeds)`` trains all given seeds in one batched tensor program and returns a record
per seed. Seeds missing from the cache are split into shards; each shard is computed (locally or on
a Dask cluster) and saved as soon as it finishes, so an interrupted run resumes where it stopped.
Because a seed's result does not depend on its batch-mates, sharding never changes the numbers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

from ..engine.seeding import stable_hash
from .store import SeedCache

CALIBRATION_SEEDS = 8    # in-process, a long run's first shard starts with this many seeds (see run_units)
SeedRecords = dict[int, dict]  # seed -> {"rows": [dict, ...], "extra": {...}}


def train_then_score(train: Callable[[list[int]], Any], score: Callable[[Any], SeedRecords],
                     seeds: list[int]) -> SeedRecords:
    """A unit's computation when it is split in two: ``score(train(seeds))``."""
    return score(train(seeds))


@dataclass
class Unit:
    """``key`` (JSON-able) identifies the configuration; ``compute(seeds)`` returns SeedRecords.
    Do not change ``key`` after reading ``hash`` (hashed once: every result row carries it).

    A unit may instead give ``train(seeds)`` (the trained nets, e.g. a
    :class:`~mtlmech.protocol.Trained`) and ``score(trained)`` (their SeedRecords); ``compute`` is
    then ``score(train(seeds))``, the one code path both the runner and :func:`mtlmech.retrain`
    (which needs the nets, not only their scores) take."""

    key: dict
    compute: Callable[[list[int]], SeedRecords] | None = None
    label: str = ""
    train: Callable[[list[int]], Any] | None = None
    score: Callable[[Any], SeedRecords] | None = None
    cost: float | None = None   # work per seed for progress and ETA (default: estimated from key)

    def __post_init__(self) -> None:
        if (self.train is None) != (self.score is None):
            raise ValueError("a Unit takes train and score together (compute is then score(train(seeds)))")
        if self.train is not None:
            if self.compute is not None:
                raise ValueError("a Unit takes either compute or train and score, not both")
            self.compute = partial(train_then_score, self.train, self.score)

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.key)


@dataclass
class RunReport:
    records: dict[str, SeedRecords] = field(default_factory=dict)  # unit hash -> seed -> record
    computed: int = 0
    reused: int = 0

    @property
    def compute_seconds(self) -> float:
        """Training time behind every record used, whether computed now or reused from the cache."""
        return sum(rec.get("seconds", 0.0) for unit in self.records.values() for rec in unit.values())

    def line(self) -> str:
        return f"computed {self.computed}, reused {self.reused}"


def _timed_compute(compute: Callable[[list[int]], SeedRecords], seeds: list[int]) -> tuple[SeedRecords, float]:
    start = time.perf_counter()
    out = compute(seeds)
    return out, time.perf_counter() - start


def _check_records(unit: Unit, seeds: Sequence[int], out: SeedRecords, seconds: float) -> SeedRecords:
    if sorted(out) != sorted(seeds):
        raise RuntimeError(f"unit {unit.label or unit.hash} returned seeds {sorted(out)[:5]}… for {list(seeds)[:5]}…")
    unit_hash = unit.hash
    for seed, rec in out.items():
        rec["seconds"] = seconds / len(seeds)
        for row in rec["rows"]:
            row["unit"] = unit_hash
            row["seed"] = seed
    return out


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _find(obj: Any, name: str) -> list:
    """Every value stored under ``name`` anywhere in a nested dict/list."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == name:
                out.append(v)
            out += _find(v, name)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _find(v, name)
    return out


def work_per_seed(unit: Unit) -> float:
    """A unit's work for one seed, in rough member-epochs × rows × width: the unit's own ``cost``
    where it gives one, else from its key: (conditions × learning rates on the grid) members, each
    up to the epoch cap, on ``n_train`` rows through ``hidden`` units. Only ratios matter (progress
    and ETA weigh each shard by it); what is not in the key counts as 1."""
    if unit.cost is not None:
        return float(unit.cost)
    key = unit.key
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    epochs = max([v for v in _find(key, "epochs") if number(v)], default=1)
    grid = max([len(v) for v in _find(key, "lr_grid") if isinstance(v, (list, tuple))], default=1)
    conditions = max([len(v) for v in _find(key, "conditions") if isinstance(v, (list, tuple))], default=1)
    rows = next((v for v in _find(key.get("point", {}), "n_train") + _find(key, "n_train") if number(v)), 1)
    hidden = next((sum(v) for v in _find(key, "hidden") if isinstance(v, (list, tuple)) and all(map(number, v))), 1)
    return float(max(epochs, 1) * max(grid, 1) * max(conditions, 1) * max(rows, 1) * max(hidden, 1))


class LogProgress:
    """Progress for logs (output not on a terminal): a plain line every ``every`` seconds naming
    the run (``desc``, e.g. the experiment), the share of the work done (each shard weighed by
    :func:`work_per_seed`, not by its seed count), the seeds done, elapsed time, an ETA from the
    time per unit of work so far (counting the shard now running), and the unit being trained; a
    last line when it printed any. Takes the calls ``run_units`` makes on a tqdm bar (``update``,
    ``set_postfix_str``) and ``start(label, seeds, work)`` / ``update(n, work)`` for the weights."""

    def __init__(self, total: int, every: float, desc: str = "seeds", file: TextIO | None = None,
                 total_work: float | None = None):
        self.total, self.every, self.desc, self.file = total, every, desc, file or sys.stderr
        self.total_work = float(total if total_work is None else total_work)
        self.done, self.work_done, self.label, self.lines = 0, 0.0, "", 0
        self._start = time.perf_counter()
        self._shard_start: float | None = None
        self._shard_work = 0.0
        self._shard_seeds = 0
        self._busy = 0.0            # seconds spent in finished shards
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mtlmech-progress")

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: the remaining work at the time per unit of work of the finished shards; the
        shard running now counts what is left of its expected time (at least nothing)."""
        if self.work_done <= 0 or self._busy <= 0:
            return None
        now = time.perf_counter() if now is None else now
        rate = self._busy / self.work_done
        left = rate * (self.total_work - self.work_done)
        if self._shard_start is not None:
            left -= min(now - self._shard_start, rate * self._shard_work)
        return max(left, 0.0)

    def line(self) -> str:
        now = time.perf_counter()
        elapsed = now - self._start
        eta = self.eta(now)
        share = 100 * self.work_done / self.total_work if self.total_work > 0 else 100.0
        running = ""
        if self._shard_start is not None:
            running = (f"{self.label + ': ' if self.label else ''}{self._shard_seeds} seed"
                       f"{'s' * (self._shard_seeds != 1)} running for {_duration(now - self._shard_start)}")
        elif self.label:
            running = self.label
        return (f"{self.desc}: {share:.0f} % of the work done (seeds {self.done}/{self.total}), "
                f"{_duration(elapsed)} elapsed, "
                + (f"ETA {_duration(eta)}" if eta is not None else "ETA after the first shard")
                + (f" [{running}]" if running else ""))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            print(self.line(), file=self.file, flush=True)
            self.lines += 1

    def start(self, label: str, seeds: int, work: float) -> None:
        """A shard of ``seeds`` seeds and ``work`` units of work starts now."""
        self.label, self._shard_seeds, self._shard_work = label, seeds, work
        self._shard_start = time.perf_counter()

    def update(self, n: int, work: float | None = None) -> None:
        self.done += n
        self.work_done += float(n if work is None else work)
        if self._shard_start is not None:
            self._busy += time.perf_counter() - self._shard_start
            self._shard_start = None
        else:
            self._busy = time.perf_counter() - self._start

    def set_postfix_str(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> LogProgress:
        if self.total:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.lines:
            print(f"{self.desc}: seeds {self.done}/{self.total} done in {_duration(time.perf_counter() - self._start)}",
                  file=self.file, flush=True)


def progress_every_from_env(default: float = 30.0) -> float:
    """Seconds between plain progress lines: ``$MTLMECH_PROGRESS_EVERY`` (a positive number) or ``default``."""
    text = os.environ.get("MTLMECH_PROGRESS_EVERY", "")
    try:
        every = float(text) if text else default
    except ValueError:
        every = -1.0
    if not every > 0:
        print(f"warning: MTLMECH_PROGRESS_EVERY must be a positive number of seconds, got {text!r}; using {default:g}",
              file=sys.stderr)
        return default
    return every


def progress_bar(total: int, progress: bool | None, every: float | None = None, *, desc: str = "seeds",
                 total_work: float | None = None):
    """tqdm on a terminal (or with ``progress=True``), :class:`LogProgress` when ``progress=None``
    and stderr is not a terminal (every ``every`` s, default ``$MTLMECH_PROGRESS_EVERY`` or 30),
    nothing with ``progress=False``. ``desc`` names the run (e.g. the experiment); the tqdm bar
    counts units of work (see :func:`work_per_seed`) so its rate and ETA weigh shards by it."""
    if progress is None and not sys.stderr.isatty():
        return LogProgress(total, every if every is not None else progress_every_from_env(), desc=desc,
                           total_work=total_work)
    return _WorkBar(total, total_work, desc, disable=not progress if progress is not None else None)


class _WorkBar:
    """A tqdm bar over the work (percent and ETA weighed by :func:`work_per_seed`), seeds in its postfix."""

    def __init__(self, total: int, total_work: float | None, desc: str, disable: bool | None):
        self.total, self.done, self.label = total, 0, ""
        self.scale = 100.0 / total_work if total_work else 100.0 / max(total, 1)
        self.bar = tqdm(total=100.0, unit="%", desc=f"{desc}: work", disable=disable, leave=False,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def start(self, label: str, seeds: int, work: float) -> None:
        self.label = label
        self.bar.set_postfix_str(f"seeds {self.done}/{self.total} [{label}]")

    def update(self, n: int, work: float | None = None) -> None:
        self.done += n
        self.bar.update(min((n if work is None else work) * self.scale, 100.0 - self.bar.n))
        self.bar.set_postfix_str(f"seeds {self.done}/{self.total} [{self.label}]")

    def set_postfix_str(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> _WorkBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def run_units(units: Sequence[Unit], seeds: Sequence[int], root: Path, *, force: bool = False,
              shard_size: int = 512, client: Any = None, progress: bool | None = None,
              progress_every: float | None = None, desc: str = "seeds") -> RunReport:
    """Compute every (unit, seed) not already cached under ``root``; return all records.

    ``client`` is a ``dask.distributed.Client`` (or None for in-process work); ``progress=None``
    shows tqdm bars on a terminal and plain lines every ``progress_every`` seconds otherwise
    (see :func:`progress_bar`), headed ``desc`` (the experiment's name). In-process, the first
    shard of a long run is split so that an ETA is known after a few seeds (sharding never changes
    the numbers).
    """
    if shard_size < 1:
        raise ValueError("shard_size must be ≥ 1")
    report = RunReport()
    todo: list[tuple[Unit, SeedCache, list[int]]] = []
    hashes = [u.hash for u in units]
    if len(set(hashes)) != len(hashes):
        raise ValueError("two units share one config key")
    for unit in units:
        cache = SeedCache(root, unit.hash)
        if force:
            cache.clear()
        have = cache.load()
        report.records[unit.hash] = {s: have[s] for s in seeds if s in have}
        missing = [s for s in seeds if s not in have]
        report.reused += len(seeds) - len(missing)
        size = shard_size
        if client is not None and missing:  # enough shards to keep every worker busy
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            size = max(1, min(shard_size, -(-len(missing) // (2 * workers))))
        for start in range(0, len(missing), size):
            todo.append((unit, cache, missing[start:start + size]))
    if client is None and len(todo) > 1 and len(todo[0][2]) > 2 * CALIBRATION_SEEDS:
        unit, cache, shard = todo[0]   # a few seeds first: the ETA is known after them
        todo[:1] = [(unit, cache, shard[:CALIBRATION_SEEDS]), (unit, cache, shard[CALIBRATION_SEEDS:])]
    total = sum(len(s) for _, _, s in todo)
    per_seed = {u.hash: work_per_seed(u) for u in units}
    total_work = sum(per_seed[u.hash] * len(s) for u, _, s in todo)
    with progress_bar(total, progress, progress_every, desc=desc, total_work=total_work) as bar:
        def finish(unit, cache, shard, timed):
            out = _check_records(unit, shard, *timed)
            cache.save(out)
            report.records[unit.hash].update(out)
            report.computed += len(shard)
            bar.update(len(shard), per_seed[unit.hash] * len(shard))
        if client is None:
            for unit, cache, shard in todo:
                bar.start(unit.label or unit.hash, len(shard), per_seed[unit.hash] * len(shard))
                finish(unit, cache, shard, _timed_compute(unit.compute, shard))
        else:
            from dask.distributed import as_completed
            futures = {client.submit(_timed_compute, unit.compute, shard, pure=False): (unit, cache, shard)
                       for unit, cache, shard in todo}
            for future in as_completed(futures):
                finish(*futures[future], future.result())
    return report
