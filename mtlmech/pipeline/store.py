"""Results on disk: a per-unit, per-seed cache of run records and atomically written outputs.

Layout under ``<out>/<experiment>/``::

    cache/<unit-hash>/seeds-<first>-<last>.json   one shard of seeds for one unit (config)
    runs.csv                                        tidy table, one row per seed × condition × task
    extras.json                                     per-seed arrays some figures need (optional)
    summary.json, *.png                             claims with verdicts, provenance, figures

Every file is written to a temporary name and renamed into place, so a killed run never leaves
a half-written file that reads as valid; the file then gets the usual permissions (0666 less the
umask), like any other file the run writes. Temporary files a killed run left behind are removed by
:func:`clean_stale_tmp`: ours are named ``.<name>.p<pid>-<random>.tmp`` after the process writing
them, so one whose process is gone is removed at once (an immediate resume leaves none); the older,
untagged ``.<name>.<random>.tmp`` ones once older than a minute.
A shard that fails to parse, whose checksum does not match, or whose contents do not fit its unit
(seeds outside the file's range, no rows unless marked ``skipped`` (a seed the unit deliberately does
not run: :func:`skipped`), rows naming another seed or unit, a row count or value types unlike the
unit's other seeds) is reported, moved aside to ``*.corrupt`` (never deleted,
never overwriting an earlier ``*.corrupt``: ``*.corrupt.1``, ``*.corrupt.2``, ...) and recomputed.

A shard is one JSON document ``{"format", "unit", "checksum", "payload"}``. Since format 2 the
checksum is the SHA-256 of the payload's serialized text exactly as it stands in the file (format 1,
still read, hashed a canonical re-serialization of the parsed payload, which cost more than parsing).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from ..engine.seeding import canonical_json

FORMAT = 2
_PAYLOAD = ', "payload": '   # what precedes the payload text in a format-2 shard


class CorruptCacheWarning(UserWarning):
    pass


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux ≥ 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_path(path: Path) -> tuple[int, str]:
    """A temporary file next to ``path`` (``.<name>.p<pid>-<random>.tmp``: the writer's process id,
    so that :func:`clean_stale_tmp` can tell an orphan from a file being written) with the
    permissions a plain ``open(path, "w")`` would give (0666 less the umask; ``mkstemp`` alone gives 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.p{os.getpid()}-", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_path(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")   # what temp_path named before the pid tag
PID_TMP_PATTERN = re.compile(r"^\..+\.p(\d{1,10})-[A-Za-z0-9_]{8}\.tmp$")   # what temp_path names


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale_tmp(folder: Path, *, older_than: float = 60.0, orphan_age: float = 24 * 3600.0) -> list[Path]:
    """Remove, under ``folder`` (recursively), temporary files of our own naming pattern that no
    live process owns: a pid-tagged one whose process is gone (at once; or, its pid taken by
    another process since, after ``orphan_age`` seconds), an untagged one not modified for
    ``older_than`` seconds. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.rglob(".*.tmp"):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            tagged = PID_TMP_PATTERN.match(path.name)
            age = now - path.stat().st_mtime
            if tagged:
                stale = not _alive(int(tagged.group(1))) or age > orphan_age
            else:
                stale = TMP_PATTERN.match(path.name) is not None and age > older_than
            if stale:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def set_aside(path: Path, suffix: str = ".corrupt") -> Path:
    """Rename ``path`` to ``<name><suffix>``, or ``<name><suffix>.1``, ``.2``, ... when taken:
    an earlier copy is never overwritten."""
    path = Path(path)
    target = path.with_name(path.name + suffix)
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{suffix}.{n}")
    os.replace(path, target)
    return target


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (bool, int, float)):
        return "number"
    return type(value).__name__


_NUMERIC_SUFFIXES = ("_error", "_mse", "_epoch")   # row fields that must hold a number (or null)


def skipped() -> dict:
    """The record of a seed a unit deliberately does not run (e.g. a study on the first N trials
    only): no rows, and marked so, which tells it from a record that lost its rows."""
    return {"rows": [], "skipped": True, "extra": {}}


def is_skipped(rec: dict) -> bool:
    return rec.get("skipped") is True and rec.get("rows") == []


def _shard_problem(path: Path, unit_hash: str, shard: dict[int, Any]) -> str | None:
    """What makes a checksum-valid shard unfit for its unit (None: nothing found)."""
    if not shard:
        return "no seeds"
    match = re.match(r"seeds-(\d+)-(\d+)", path.name)
    if match and (min(shard), max(shard)) != (int(match.group(1)), int(match.group(2))):
        return f"seeds {min(shard)}..{max(shard)} do not match the file name"
    counts = set()
    for seed, rec in shard.items():
        if seed < 0 or not isinstance(rec, dict) or not isinstance(rec.get("rows"), list):
            return f"seed {seed}: no rows"
        if is_skipped(rec):
            continue
        if not rec["rows"]:
            return f"seed {seed}: no rows"
        if not isinstance(rec.get("extra", {}), dict) or not isinstance(rec.get("seconds", 0.0), (int, float)):
            return f"seed {seed}: extra or seconds of the wrong type"
        for row in rec["rows"]:
            if not isinstance(row, dict):
                return f"seed {seed}: a row is not a record"
            if row.get("seed") != seed or row.get("unit") != unit_hash:
                return f"seed {seed}: a row names seed {row.get('seed')!r} of unit {row.get('unit')!r}"
            bad = [k for k, v in row.items() if k.endswith(_NUMERIC_SUFFIXES) and _kind(v) not in ("number", "none")]
            if bad:
                return f"seed {seed}: {bad[0]} is not a number"
        counts.add(len(rec["rows"]))
    if len(counts) > 1:
        return f"seeds have different row counts {sorted(counts)}"
    return None


def _signature(rec: dict) -> tuple:
    """A seed record's shape: per row, its fields and their kinds (null fits any kind)."""
    return tuple(tuple(sorted((k, _kind(v)) for k, v in row.items() if v is not None)) for row in rec["rows"])


def _fits(sig: tuple, expected: tuple) -> bool:
    if len(sig) != len(expected):
        return False
    for row, ref in zip(sig, expected):
        ref_kinds = dict(ref)
        if any(k in ref_kinds and ref_kinds[k] != kind for k, kind in row):
            return False
    return True


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def _checksum(payload: dict) -> str:
    """Format 1: SHA-256 of the canonical JSON of the parsed payload."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _text_checksum(payload_text: str) -> str:
    """Format 2: SHA-256 of the payload's serialized text."""
    return hashlib.sha256(payload_text.encode()).hexdigest()


def _verified_payload(text: str, unit_hash: str) -> dict:
    """The payload of a shard's text, or ValueError if its header or checksum does not match."""
    doc = json.loads(text)
    payload = doc["payload"]
    if doc.get("unit") != unit_hash:
        raise ValueError("header mismatch")
    if doc.get("format") == 1:
        ok = doc.get("checksum") == _checksum(payload)
    elif doc.get("format") == FORMAT:
        start = text.find(_PAYLOAD)
        end = text.rstrip().rfind("}")
        ok = start >= 0 and doc.get("checksum") == _text_checksum(text[start + len(_PAYLOAD):end])
    else:
        raise ValueError(f"unknown format {doc.get('format')!r}")
    if not ok:
        raise ValueError("checksum mismatch")
    return payload


class SeedCache:
    """Per-seed results of one unit (identified by its config hash), stored in seed shards."""

    def __init__(self, root: Path, unit_hash: str):
        self.dir = Path(root) / "cache" / unit_hash
        self.unit_hash = unit_hash

    def _reject(self, path: Path, why: Any) -> None:
        moved = set_aside(path)
        message = f"corrupt cache file {path} ({why}); moved to {moved.name}, recomputing its seeds"
        warnings.warn(message, CorruptCacheWarning, stacklevel=3)
        print(f"warning: {message}", file=sys.stderr)

    def load(self) -> dict[int, dict]:
        """Every valid seed result on disk: ``{seed: {"rows": [...], "extra": {...}}}``. Shards
        are checked one by one (header, checksum, contents against the unit) and then against
        each other: a shard whose seeds' rows differ in count or value kinds from what
        most of the unit's seeds hold is set aside."""
        results: dict[int, dict] = {}
        if not self.dir.is_dir():
            return results
        shards: dict[Path, dict[int, dict]] = {}
        for path in sorted(self.dir.glob("seeds-*.json")):
            try:
                payload = _verified_payload(path.read_text(encoding="utf-8"), self.unit_hash)
                shard = {int(s): r for s, r in payload.items()}
                problem = _shard_problem(path, self.unit_hash, shard)
                if problem:
                    raise ValueError(problem)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self._reject(path, exc)
                continue
            shards[path] = shard
        votes: Counter = Counter()
        for shard in shards.values():
            for rec in shard.values():
                if not is_skipped(rec):
                    votes[_signature(rec)] += 1
        expected = votes.most_common(1)[0][0] if votes else None
        for path, shard in shards.items():
            odd = next((s for s, rec in shard.items() if not is_skipped(rec) and not _fits(_signature(rec), expected)),
                       None)
            if odd is not None:
                self._reject(path, f"seed {odd}: rows unlike the unit's other seeds in count or value types")
                continue
            results.update(shard)
        return results

    def save(self, results: dict[int, dict]) -> Path:
        """Write one shard holding ``results`` (seed → record) atomically."""
        seeds = sorted(results)
        payload_text = json.dumps({str(s): results[s] for s in seeds}, allow_nan=True)
        checksum = _text_checksum(payload_text)
        path = self.dir / f"seeds-{seeds[0]:06d}-{seeds[-1]:06d}.json"
        if path.exists():  # a different seed set with the same range: keep both
            path = self.dir / f"seeds-{seeds[0]:06d}-{seeds[-1]:06d}-{checksum[:8]}.json"
        header = json.dumps({"format": FORMAT, "unit": self.unit_hash, "checksum": checksum})
        atomic_write_text(path, header[:-1] + _PAYLOAD + payload_text + "}")
        return path

    def clear(self) -> None:
        """Move existing shards aside (``--force``): recomputed results replace them."""
        if self.dir.is_dir():
            for path in self.dir.glob("seeds-*.json"):
                set_aside(path, ".old")
