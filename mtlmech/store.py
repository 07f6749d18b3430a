"""Results on disk: a per-unit, per-seed cache of run records and atomically written outputs.

Layout under ``<out>/<experiment>/``::

    cache/<unit-hash>/seeds-<first>-<last>.json   one shard of seeds for one unit (config)
    runs.csv                                        tidy table, one row per seed × condition × task
    extras.json                                     per-seed arrays some figures need (optional)
    summary.json, *.png                             claims with verdicts, provenance, figures

Every file is written to a temporary name and renamed into place, so a killed run never leaves
a half-written file that reads as valid. A shard that fails to parse or whose checksum or
contents do not match is reported, moved aside to ``*.corrupt`` (never deleted) and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .seeding import canonical_json

FORMAT = 1


class CorruptCacheWarning(UserWarning):
    pass


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def _checksum(payload: dict) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class SeedCache:
    """Per-seed results of one unit (identified by its config hash), stored in seed shards."""

    def __init__(self, root: Path, unit_hash: str):
        self.dir = Path(root) / "cache" / unit_hash
        self.unit_hash = unit_hash

    def load(self) -> dict[int, dict]:
        """Every valid seed result on disk: ``{seed: {"rows": [...], "extra": {...}}}``."""
        results: dict[int, dict] = {}
        if not self.dir.is_dir():
            return results
        for path in sorted(self.dir.glob("seeds-*.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                payload = doc["payload"]
                if doc.get("format") != FORMAT or doc.get("unit") != self.unit_hash \
                        or doc.get("checksum") != _checksum(payload):
                    raise ValueError("checksum or header mismatch")
                shard = {int(s): r for s, r in payload.items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                moved = path.with_name(path.name + ".corrupt")
                os.replace(path, moved)
                message = f"corrupt cache file {path} ({exc}); moved to {moved.name}, recomputing its seeds"
                warnings.warn(message, CorruptCacheWarning, stacklevel=2)
                print(f"warning: {message}", file=sys.stderr)
                continue
            results.update(shard)
        return results

    def save(self, results: dict[int, dict]) -> Path:
        """Write one shard holding ``results`` (seed → record) atomically."""
        seeds = sorted(results)
        payload = {str(s): results[s] for s in seeds}
        path = self.dir / f"seeds-{seeds[0]:06d}-{seeds[-1]:06d}.json"
        if path.exists():  # a different seed set with the same range: keep both
            path = self.dir / f"seeds-{seeds[0]:06d}-{seeds[-1]:06d}-{_checksum(payload)[:8]}.json"
        atomic_write_text(path, json.dumps({"format": FORMAT, "unit": self.unit_hash,
                                            "checksum": _checksum(payload), "payload": payload},
                                           allow_nan=True))
        return path

    def clear(self) -> None:
        """Move existing shards aside (``--force``): recomputed results replace them."""
        if self.dir.is_dir():
            for path in self.dir.glob("seeds-*.json"):
                os.replace(path, path.with_name(path.name + ".old"))
