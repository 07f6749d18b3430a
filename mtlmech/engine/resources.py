"""Memory guards: refuse a size that cannot fit this machine before anything tries to allocate it
(problem constructors and the pipeline's run-size checks use them)."""

from __future__ import annotations

import os


class ResourceError(ValueError):
    """A requested size does not fit this machine (memory or disk)."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; total memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def require_memory(nbytes: float, what: str) -> None:
    """Raise :class:`ResourceError` when ``what`` (e.g. "n_irrelevant=40: 2^46 patterns") would need
    more memory than is available — before anything tries to allocate it."""
    have = available_memory()
    if nbytes > have:
        raise ResourceError(f"{what} would need about {human_bytes(nbytes)} of memory; "
                            f"{human_bytes(have)} is available")
