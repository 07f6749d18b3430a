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


class LogProgress:
    """Progress for logs (output not on a terminal): a plain line every ``every`` seconds with
    done/total, elapsed time and ETA, instead of silence; a last line when it printed any.
    Takes the calls ``run_units`` makes on a tqdm bar (``update``, ``set_postfix_str``)."""

    def __init__(self, total: int, every: float, desc: str = "seeds", file: TextIO | None = None):
        self.total, self.every, self.desc, self.file = total, every, desc, file or sys.stderr
        self.done, self.label, self.lines = 0, "", 0
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mtlmech-progress")

    def line(self) -> str:
        elapsed = time.perf_counter() - self._start
        eta = f"ETA {_duration(elapsed / self.done * (self.total - self.done))}" if self.done else "ETA unknown"
        return (f"{self.desc} {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f} %), "
                f"{_duration(elapsed)} elapsed, {eta}" + (f" [{self.label}]" if self.label else ""))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            print(self.line(), file=self.file, flush=True)
            self.lines += 1

    def update(self, n: int) -> None:
        self.done += n

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
            print(f"{self.desc} {self.done}/{self.total} done in {_duration(time.perf_counter() - self._start)}",
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


def progress_bar(total: int, progress: bool | None, every: float | None = None):
    """tqdm on a terminal (or with ``progress=True``), :class:`LogProgress` when ``progress=None``
    and stderr is not a terminal (every ``every`` s, default ``$MTLMECH_PROGRESS_EVERY`` or 30),
    nothing with ``progress=False``."""
    if progress is None and not sys.stderr.isatty():
        return LogProgress(total, every if every is not None else progress_every_from_env())
    return tqdm(total=total, unit="run", desc="seeds", disable=not progress if progress is not None else None,
                leave=False)


def run_units(units: Sequence[Unit], seeds: Sequence[int], root: Path, *, force: bool = False,
              shard_size: int = 512, client: Any = None, progress: bool | None = None,
              progress_every: float | None = None) -> RunReport:
    """Compute every (unit, seed) not already cached under ``root``; return all records.

    ``client`` is a ``dask.distributed.Client`` (or None for in-process work); ``progress=None``
    shows tqdm bars on a terminal and plain lines every ``progress_every`` seconds otherwise
    (see :func:`progress_bar`).
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
    total = sum(len(s) for _, _, s in todo)
    with progress_bar(total, progress, progress_every) as bar:
        def finish(unit, cache, shard, timed):
            out = _check_records(unit, shard, *timed)
            cache.save(out)
            report.records[unit.hash].update(out)
            report.computed += len(shard)
            bar.update(len(shard))
        if client is None:
            for unit, cache, shard in todo:
                bar.set_postfix_str(unit.label or unit.hash)
                finish(unit, cache, shard, _timed_compute(unit.compute, shard))
        else:
            from dask.distributed import as_completed
            futures = {client.submit(_timed_compute, unit.compute, shard, pure=False): (unit, cache, shard)
                       for unit, cache, shard in todo}
            for future in as_completed(futures):
                finish(*futures[future], future.result())
    return report
