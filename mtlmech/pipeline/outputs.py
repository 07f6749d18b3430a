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

**Nothing read from a results file is trusted.** A name in a manifest or ``.commit.json`` must be a
plain relative path inside the folder (:func:`safe_name`), and a roll-forward only moves staged
files whose digest is the one the commit point records. A garbage ``manifest.json`` or
``.commit.json`` is set aside (``*.corrupt``) with one line before anything is trained, never a
traceback after. Readers (:func:`mtlmech.load`, ``load_claims``, ``mtlmech show`` and ``report``)
go through :func:`checked_folder`: a folder left half-committed by a kill is refused, and every file
read is checked against the manifest (an :class:`OutputsError` naming the file); a folder without a
manifest (outputs from before manifests) is checked against the data-file digests its summary.json
records, or said once to be unverified.

**Lock.** :class:`FolderLock` holds an advisory ``flock`` on ``<out>/<experiment>/.lock`` for
the whole run; a second run into the same folder stops at once with a one-line error (exit
code 2) naming the process that holds it. The lock goes with its process (a ``kill -9`` frees
it), so it never goes stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from .cli import UsageError
from .store import atomic_write_json, set_aside

MANIFEST = "manifest.json"
STAGING = ".staging"
COMMIT = ".commit.json"
LOCK = ".lock"
DATA_FILES = ("runs.csv", "extras.json", "units.json")


class FolderBusy(UsageError):
    """Another run holds the output folder's lock."""


class OutputsError(ValueError):
    """Saved outputs that cannot be trusted: unreadable, not as the manifest records them, or left
    half-committed by a killed run. The message names the file."""


class UnverifiedOutputsWarning(UserWarning):
    """Outputs read from a folder that has no manifest (written before manifests): not checked."""


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def safe_name(name: Any) -> bool:
    """A file name from a results file that stays inside its folder: a relative POSIX path of plain
    parts (no ``..``, no absolute path, no hidden part, no backslash or NUL)."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and all(part not in ("", ".", "..") and not part.startswith(".")
                                          for part in path.parts) and path.as_posix() == name


def check_layout(folder: Path) -> None:
    """The folder's own entries have the kind the pipeline needs (a folder where a folder goes, a
    file where the lock goes): otherwise a one-line UsageError before anything is trained."""
    folder = Path(folder)
    for name, want_dir in ((LOCK, False), (STAGING, True), ("cache", True)):
        path = folder / name
        if path.is_symlink() or (path.exists() and path.is_dir() != want_dir):
            kind = "a link" if path.is_symlink() else ("a folder" if path.is_dir() else "a file")
            raise UsageError(f"--out: {path} is {kind} where the run keeps its {'folder' if want_dir else 'lock file'}"
                             f"; move it away and run again")


class FolderLock:
    """An exclusive, non-blocking lock on an output folder (created if needed)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl
        self.folder.mkdir(parents=True, exist_ok=True)
        check_layout(self.folder)
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


def parse_manifest(path: Path) -> dict:
    """A manifest (or commit point) read and checked: a file list whose names stay inside the
    folder and whose entries are digests. An :class:`OutputsError` naming ``path`` otherwise."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no file list")
        for name, entry in manifest["files"].items():
            if not safe_name(name):
                raise ValueError(f"names a file outside its folder: {name!r}")
            if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and _HEX64.match(entry["sha256"])
                    and isinstance(entry.get("bytes"), int) and not isinstance(entry["bytes"], bool)):
                raise ValueError(f"the entry of {name} is not a digest")
        rows = manifest.get("rows")
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            raise ValueError("its row count is not a count")
        return manifest
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputsError(f"{path} is unreadable ({reason})") from None


def read_manifest(outdir: Path) -> dict | None:
    """The committed manifest, or None when the folder has none (outputs from before manifests)."""
    path = Path(outdir) / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    return parse_manifest(path)


def _staging(outdir: Path) -> Path:
    return outdir / STAGING / outdir.name


def roll_forward(outdir: Path, *, trusted: bool = False) -> bool:
    """Finish a commit that a killed run began (True if there was one). Unless ``trusted`` (the
    commit this process just wrote), every file the commit point names must be staged with the
    recorded digest, or already in place with it: an :class:`OutputsError` otherwise, before
    anything is moved."""
    outdir = Path(outdir)
    commit = outdir / COMMIT
    if not commit.exists() and not commit.is_symlink():
        return False
    manifest = parse_manifest(commit)
    staging = _staging(outdir)
    if not trusted:
        if commit.is_symlink():
            raise OutputsError(f"{commit} is a link, not a commit point this pipeline writes")
        for name, entry in manifest["files"].items():
            staged, placed = staging / name, outdir / name
            if staged.is_file() and not staged.is_symlink():
                ok = digest(staged) == entry
            else:
                ok = placed.is_file() and not placed.is_symlink() and digest(placed) == entry
            if not ok:
                raise OutputsError(f"{commit} records a {name} that is neither staged nor in place as recorded")
    for name in manifest["files"]:
        if (staging / name).is_file():
            (outdir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, outdir / name)
    os.replace(commit, outdir / MANIFEST)
    shutil.rmtree(outdir / STAGING, ignore_errors=True)
    return True


def _discard_staging(outdir: Path) -> None:
    staging = outdir / STAGING
    if staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)
    elif staging.exists() or staging.is_symlink():
        set_aside(staging, ".corrupt")


def recover(outdir: Path) -> str | None:
    """Bring a folder a killed run (or damage) left behind to a consistent state before anything is
    trained: roll a begun commit forward, or discard uncommitted staged files; set aside a commit
    point or manifest that does not parse or does not match (``*.corrupt``). Returns a line saying
    what was done, or None."""
    outdir = Path(outdir)
    notes = []
    try:
        if roll_forward(outdir):
            notes.append(f"finished writing the outputs of an interrupted run in {outdir}")
    except (OutputsError, OSError) as exc:
        moved = set_aside(outdir / COMMIT, ".corrupt")
        _discard_staging(outdir)
        notes.append(f"set aside {exc if isinstance(exc, OutputsError) else f'{outdir / COMMIT} ({exc})'} "
                     f"as {moved.name} and discarded the staged files")
    if (outdir / STAGING).exists() or (outdir / STAGING).is_symlink():
        _discard_staging(outdir)
        notes.append(f"discarded the unfinished outputs of an interrupted run in {outdir}")
    try:
        read_manifest(outdir)
    except OutputsError as exc:
        moved = set_aside(outdir / MANIFEST, ".corrupt")
        notes.append(f"set aside {exc} as {moved.name}: the outputs there are unverified until rewritten")
    return "; ".join(notes) or None


_warned: set[str] = set()


def summary_digests(summary: Any) -> dict | None:
    """The data-file digests a summary.json records (``files``), or None when it records none."""
    files = summary.get("files") if isinstance(summary, dict) else None
    return files if isinstance(files, dict) and all(safe_name(n) for n in files) else None


def checked_folder(outdir: Path, names: Iterable[str], *, rows: int | None = None) -> dict | None:
    """Check ``names`` in ``outdir`` before they are read (the readers' one gate): refused with an
    :class:`OutputsError` naming the file when a killed run left the folder half-committed, the
    manifest is unreadable or a file differs from what it records. Without a manifest, the digests
    summary.json records are checked where it records them, else a warning says once that the
    files are unverified. Returns the manifest (None without one)."""
    outdir = Path(outdir)
    if (outdir / COMMIT).exists() or (outdir / COMMIT).is_symlink():
        raise OutputsError(f"{outdir / COMMIT}: a run was interrupted while it committed its outputs, so the files "
                           f"there may belong to two runs; run the experiment again (cached seeds are reused) "
                           f"or with --replot to finish it")
    names = list(names)
    for name in names:
        path = outdir / name
        if path.is_dir():
            raise OutputsError(f"{path} is a folder, not a file")
    manifest = read_manifest(outdir)
    if manifest is not None:
        problems = verify(outdir, names, rows=rows, manifest=manifest)
        if problems:
            raise OutputsError(f"{outdir}{os.sep}{problems[0]}" + (f" (and {len(problems) - 1} more)"
                                                                  if len(problems) > 1 else ""))
        return manifest
    recorded = None
    try:
        recorded = summary_digests(json.loads((outdir / "summary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    checked = [n for n in names if recorded and n in recorded]
    for name in checked:
        if not (outdir / name).is_file() or digest(outdir / name) != recorded[name]:
            raise OutputsError(f"{outdir / name} differs from the copy summary.json records (modified or truncated; "
                               f"the folder has no {MANIFEST})")
    unchecked = [n for n in names if n not in checked and n != "summary.json"] or (
        ["summary.json"] if "summary.json" in names else [])
    if unchecked and str(outdir) not in _warned:
        _warned.add(str(outdir))
        warnings.warn(f"{outdir} has no {MANIFEST} (outputs written before manifests, or it was removed): "
                      f"{', '.join(unchecked)} cannot be verified", UnverifiedOutputsWarning, stacklevel=3)
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
        try:
            previous = read_manifest(self.outdir) or {"files": {}}
        except OutputsError:   # recover() sets an unreadable one aside first; carried files are re-digested
            previous = {"files": {}}
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
        roll_forward(self.outdir, trusted=True)
        return manifest


def verify(outdir: Path, names: Iterable[str] = DATA_FILES, *, rows: int | None = None,
           manifest: dict | None = None) -> list[str]:
    """What is wrong with ``names`` in ``outdir`` against its manifest (empty: all as recorded).
    ``rows``, when given, is the row count read from runs.csv. Without a manifest, nothing can be
    checked here (the caller falls back on summary.json's ``n_runs``)."""
    outdir = Path(outdir)
    manifest = read_manifest(outdir) if manifest is None else manifest
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
        if path.is_dir():
            problems.append(f"{name} is a folder, not a file")
        elif not path.exists():
            problems.append(f"{name} is missing")
        elif digest(path) != entry:
            problems.append(f"{name} differs from the copy {MANIFEST} records (modified or truncated)")
    return problems
