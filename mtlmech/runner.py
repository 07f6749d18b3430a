"""Run units of work over seeds with caching, sharding, progress bars and optional Dask scale-out.

A :class:`Unit` is one configuration (e.g. one training-set size with its STL and MTL conditions)
whose ``compute(seeds)`` trains all given seeds in one batched tensor program and returns a record
per seed. Seeds missing from the cache are split into shards; each shard is computed (locally or on
a Dask cluster) and saved as soon as it finishes, so an interrupted run resumes where it stopped.
Because a seed's result does not depend on its batch-mates, sharding never changes the numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from .seeding import stable_hash
from .store import SeedCache

SeedRecords = dict[int, dict]  # seed -> {"rows": [dict, ...], "extra": {...}}


@dataclass
class Unit:
    """``key`` (JSON-able) identifies the configuration; ``compute(seeds)`` returns SeedRecords.
    Do not change ``key`` after reading ``hash`` (hashed once: every result row carries it)."""

    key: dict
    compute: Callable[[list[int]], SeedRecords]
    label: str = ""

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


def run_units(units: Sequence[Unit], seeds: Sequence[int], root: Path, *, force: bool = False,
              shard_size: int = 512, client: Any = None, progress: bool | None = None) -> RunReport:
    """Compute every (unit, seed) not already cached under ``root``; return all records.

    ``client`` is a ``dask.distributed.Client`` (or None for in-process work); ``progress=None``
    shows tqdm bars only on a terminal.
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
    disable = None if progress is None else not progress
    with tqdm(total=total, unit="run", desc="seeds", disable=disable, leave=False) as bar:
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
