"""Results on disk: a per-unit, per-seed cache of run records and atomically written outputs.

Layout under ``<out>/<experiment>/``::

    cache/<unit-hash>/seeds-<first>-<last>.json   one shard of seeds for one unit (config)
    runs.csv                                        tidy table, one row per seed × condition × task
    extras.json                                     per-seed arrays some figures need (optional)
    summary.json, *.png                             claims with verdicts, provenance, figures

Every file is written to a temporary name and renamed into place, so a killed run never leaves
a half-written file that reads as valid. A shard that fails to parse or whose checksum or
contents do not match is reported, moved aside to ``*.corrupt`` (never deleted) and recomputed.

A shard is one JSON document ``{"format", "unit", "checksum", "payload"}``. Since format 2 the
checksum is the SHA-256 of the payload's serialized text exactly as it stands in the file (format 1,
still read, hashed a canonical re-serialization of the parsed payload, which cost more than parsing).
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

FORMAT = 2
_PAYLOAD = ', "payload": '   # what precedes the payload text in a format-2 shard


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

    def load(self) -> dict[int, dict]:
        """Every valid seed result on disk: ``{seed: {"rows": [...], "extra": {...}}}``."""
        results: dict[int, dict] = {}
        if not self.dir.is_dir():
            return results
        for path in sorted(self.dir.glob("seeds-*.json")):
            try:
                payload = _verified_payload(path.read_text(encoding="utf-8"), self.unit_hash)
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
                os.replace(path, path.with_name(path.name + ".old"))
