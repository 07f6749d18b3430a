"""Every random choice derives from (config, seed, stream): stable hashing and generator factories."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import numpy as np
import torch

_PLAIN = (str, int, float, bool, type(None))


def _jsonable(obj: Any) -> Any:
    if type(obj) in _PLAIN:   # the common case first (same result as the general path below)
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """A canonical JSON text of a config (dataclasses, dicts, tuples); the basis of every hash."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"))


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of ``canonical_json(obj)``; identical across processes, machines and runs."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def seed_sequence(*keys: Any) -> np.random.SeedSequence:
    """A numpy SeedSequence determined by ``keys`` (strings, ints, configs) alone."""
    digest = hashlib.sha256(canonical_json(list(keys)).encode()).digest()
    return np.random.SeedSequence([int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)])


def numpy_rng(*keys: Any) -> np.random.Generator:
    """A numpy Generator for the stream named by ``keys``, e.g. ``numpy_rng(cfg_hash, seed, "data")``."""
    return np.random.default_rng(seed_sequence(*keys))


def torch_generator(*keys: Any) -> torch.Generator:
    """A CPU torch Generator for the stream named by ``keys`` (draw on CPU, then move, for device independence)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed_sequence(*keys).generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1)))
    return gen


def int_key(*keys: Any) -> int:
    """A 31-bit integer key for counter-based hashing (mini-batch order) on any device."""
    return int(seed_sequence(*keys).generate_state(1)[0] & 0x7FFFFFFF)
