"""An experiment's outputs written as one unit, and a lock on its output folder.

**One unit.** ``runs.csv``, ``extras.json``, ``units.json``, ``summary.json`` and the figures of
one run are first written into a staging folder (``<out>/<experiment>/.staging/<experiment>/``;
the same last name, so figure paths recorded by ``outdir.name`` stay right). Then a manifest
(``manifest.json``: every file's SHA-256 and size, and the row count of ``runs.csv``) is written
to ``.commit.json`` — the commit point — and the staged files are renamed into place, after which
``.commit.json`` becomes ``manifest.json``. A run killed before the commit point leaves the old
outputs untouched (its staging folder is discarded by the next run); one killed after it is
rolled forward by the next run or ``--replot``. So the files in the folder always describe one run,
and :func:`verify` can tell whether they are the ones the manifest lists (``--replot`` checks).

**Lock.** :class:`FolderLock` holds an advisory ``flock`` on ``<out>/<experiment>/.lock`` for
the whole run; a second run into the same folder stops at once with a one-line error (exit
code 2) naming the process that holds it. The lock goes with its process (a ``kill -9`` frees
it), so it never goes stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cli import UsageError
from .store import atomic_write_json

MANIFEST = "manifest.json"
STAGING = ".staging"
COMMIT = ".commit.json"
LOCK = ".lock"
DATA_FILES = ("runs.csv", "extras.json", "units.json")


class FolderBusy(UsageError):
    """Another run holds the output folder's lock."""


class FolderLock:
    """An exclusive, non-blocking lock on an output folder (created if needed)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise FolderBusy(f"--out: {self.folder} is in use by another run ({holder}); wait for it to finish "
                             f"or pass another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                 .encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            import fcntl
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def digest(path: Path) -> dict[str, Any]:
    """SHA-256 and size of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"sha256": h.hexdigest(), "bytes": Path(path).stat().st_size}


def read_runs(path: Path, **kwargs):
    """A ``runs.csv`` as a table, each column with one dtype (pandas otherwise infers dtypes chunk by
    chunk, and a flag that older rows lack reads as a mixed column)."""
    import pandas as pd
    return pd.read_csv(path, low_memory=False, **kwargs)


def read_manifest(outdir: Path) -> dict | None:
    """The committed manifest, or None when the folder has none (outputs from before manifests)."""
    path = Path(outdir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("no file list")
        return manifest
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{path} is unreadable ({exc})") from None


def _staging(outdir: Path) -> Path:
    return outdir / STAGING / outdir.name


def roll_forward(outdir: Path) -> bool:
    """Finish a commit that a killed run began (True if there was one)."""
    outdir = Path(outdir)
    commit = outdir / COMMIT
    if not commit.exists():
        return False
    manifest = json.loads(commit.read_text(encoding="utf-8"))
    staging = _staging(outdir)
    for name in manifest["files"]:
        if (staging / name).exists():
            (outdir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, outdir / name)
    os.replace(commit, outdir / MANIFEST)
    shutil.rmtree(outdir / STAGING, ignore_errors=True)
    return True


def recover(outdir: Path) -> str | None:
    """Bring a folder a killed run left behind to a consistent state: roll a begun commit forward,
    or discard uncommitted staged files. Returns a line saying what was done, or None."""
    outdir = Path(outdir)
    if roll_forward(outdir):
        return f"finished writing the outputs of an interrupted run in {outdir}"
    if (outdir / STAGING).exists():
        shutil.rmtree(outdir / STAGING, ignore_errors=True)
        return f"discarded the unfinished outputs of an interrupted run in {outdir}"
    return None


class OutputSet:
    """Files staged by one run and committed together (see the module docstring)."""

    def __init__(self, outdir: Path):
        self.outdir = Path(outdir)
        self.staging = _staging(self.outdir)

    def begin(self) -> Path:
        """A fresh, empty staging folder (named like the output folder)."""
        recover(self.outdir)
        self.staging.mkdir(parents=True)
        return self.staging

    def commit(self, *, rows: int, carry: Iterable[str] = ()) -> dict:
        """Make the staged files the folder's outputs. ``carry``: names of committed files this run
        did not rewrite (``--replot`` keeps runs.csv …), recorded in the new manifest as they are."""
        previous = read_manifest(self.outdir) or {"files": {}}
        files = {}
        for name in carry:
            entry = previous["files"].get(name)
            files[name] = entry if entry is not None else digest(self.outdir / name)
        for path in sorted(self.staging.rglob("*")):   # figures an analysis put in a subfolder too
            if path.is_file() and not path.name.startswith("."):
                files[path.relative_to(self.staging).as_posix()] = digest(path)
        manifest = {"format": 1, "rows": int(rows), "files": files,
                    "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(self.outdir / COMMIT, manifest)   # the commit point
        roll_forward(self.outdir)
        return manifest


def verify(outdir: Path, names: Iterable[str] = DATA_FILES, *, rows: int | None = None) -> list[str]:
    """What is wrong with ``names`` in ``outdir`` against its manifest (empty: all as recorded).
    ``rows``, when given, is the row count read from runs.csv. Without a manifest, nothing can be
    checked here (the caller falls back on summary.json's ``n_runs``)."""
    outdir = Path(outdir)
    manifest = read_manifest(outdir)
    if manifest is None:
        return []
    problems = []
    if rows is not None and manifest.get("rows") is not None and rows != manifest["rows"]:
        problems.append(f"runs.csv has {rows} rows, {MANIFEST} records {manifest['rows']}")
    for name in names:
        entry = manifest["files"].get(name)
        if entry is None:
            continue
        path = outdir / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif digest(path) != entry:
            problems.append(f"{name} differs from the copy {MANIFEST} records (modified or truncated)")
    return problems
