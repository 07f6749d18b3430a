"""Building the fused trainer's kernel (``fused_kernel.cpp``): targets, flags, CPU detection, compiling.

Standard library only: ``setup.py`` loads this file by path at install time (no torch, no numpy in
the build environment), and :mod:`mtlmech.engine.fused` uses it at run time.

The kernel is one declared arithmetic (``fused_kernel.cpp``'s header) built for fixed targets:

* ``x86-64-v4``: AVX-512 (one zmm register per 64-byte vector);
* ``x86-64-v3``: AVX2 + FMA, the baseline of the fast path (two ymm registers per vector);
* ``generic``: no intrinsics, GCC generic vectors and a per-lane ``fma`` (any CPU; slow, a last
  resort and the reference build the tests compare the others with).

All three compute bitwise the same numbers. An install (``pip install .`` or ``-e .``) compiles
the x86 targets into the package (``setup.py``); where such a file is missing or was built from
another source, :func:`ensure_built` compiles it on first use into a per-user cache, once per
machine, under a file lock the OS releases when its holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE_NAME = "fused_kernel.cpp"
# The flags every target shares: no contraction of multiply-adds (the source writes its fma() out),
# no fast-math of any kind, C-ABI shared library, no libm calls left (the source has its own exp/log).
COMMON_FLAGS = ("-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-fno-fast-math", "-fPIC", "-shared",
                "-Wno-psabi")
TARGET_FLAGS = {
    "x86-64-v4": ("-O3", "-march=x86-64-v4", "-mtune=generic"),
    "x86-64-v3": ("-O3", "-march=x86-64-v3", "-mtune=generic"),
    "generic": ("-O2", "-DMTL_GENERIC"),
}
INSTALL_TARGETS = ("x86-64-v3", "x86-64-v4")   # built by setup.py on x86-64
# /proc/cpuinfo flags each x86 target needs (the psABI levels; lzcnt is "abm" there)
CPU_FLAGS = {
    "x86-64-v3": {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"},
    "x86-64-v4": {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
                  "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"},
}
BUILD_TIMEOUT_S = float(os.environ.get("MTLMECH_BUILD_TIMEOUT", "300"))   # compiling, or waiting for another


def library_name(target: str) -> str:
    return f"fused_kernel.{target}.so"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((ln for ln in f if ln.startswith(("flags", "Features"))), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[1].split()) if ":" in line else set()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runnable_targets(flags: set[str] | None = None) -> list[str]:
    """The targets this CPU can run, fastest first (``generic`` always)."""
    flags = cpu_flags() if flags is None else flags
    out = []
    if platform.machine() in ("x86_64", "AMD64"):
        out += [t for t in ("x86-64-v4", "x86-64-v3") if CPU_FLAGS[t] <= flags]
    return [*out, "generic"]


def best_target() -> str:
    """``MTLMECH_KERNEL_TARGET`` if set (any target this CPU runs), else the fastest this CPU runs.
    Every target computes the same numbers: the choice is one of speed only."""
    runnable = runnable_targets()
    wanted = os.environ.get("MTLMECH_KERNEL_TARGET")
    if wanted:
        if wanted not in TARGET_FLAGS:
            raise ValueError(f"MTLMECH_KERNEL_TARGET={wanted!r}: not one of {', '.join(TARGET_FLAGS)}")
        if wanted not in runnable:
            raise ValueError(f"MTLMECH_KERNEL_TARGET={wanted!r}: this CPU cannot run it ({', '.join(runnable)} only)")
        return wanted
    return runnable[0]


def compiler() -> str | None:
    """The C++ compiler: ``$CXX``, else ``c++``, ``g++`` or ``clang++`` on PATH."""
    cxx = os.environ.get("CXX")
    if cxx:
        return cxx
    return next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)


def compiler_version(cxx: str) -> str:
    """The compiler's first ``--version`` line ('' if it does not run)."""
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def flags(target: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The compiler flags of ``target`` (``extra`` ones appended: tests build variants, e.g. ``-march=native``)."""
    return [*TARGET_FLAGS[target], *COMMON_FLAGS, *extra]


def build_key(source: Path, target: str, extra: tuple[str, ...] = ()) -> str:
    """What a built file must have been built from: the source's bytes and the target's flags."""
    h = hashlib.sha256(source.read_bytes())
    h.update(" ".join([target, *flags(target, extra)]).encode())
    return h.hexdigest()[:16]


def compile_kernel(source: Path, target: str, out: Path, cxx: str | None = None, timeout: float | None = None,
                   extra: tuple[str, ...] = ()) -> Path:
    """Compile ``source`` for ``target`` into ``out``, atomically (a temporary file in the same folder,
    renamed): a reader sees the old file or the whole new one, never a part. Raises
    ``subprocess.CalledProcessError`` / ``OSError`` / ``FileNotFoundError`` (no compiler)."""
    cxx = cxx or compiler()
    if cxx is None:
        raise FileNotFoundError("no C++ compiler found (set CXX, or install g++ or clang++)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        name = target + "".join(extra)
        cmd = [cxx, *flags(target, extra), f'-DMTL_TARGET="{name}"', f'-DMTL_BUILD_KEY="{build_key(source, target, extra)}"',
               "-o", tmp, str(source)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or BUILD_TIMEOUT_S)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out


def cache_dir() -> Path:
    """Where run-time builds go: ``$MTLMECH_CACHE_DIR``, else ``$XDG_CACHE_HOME/mtlmech``, else
    ``~/.cache/mtlmech``; the ``kernels`` folder under it."""
    root = os.environ.get("MTLMECH_CACHE_DIR")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mtlmech")
    return Path(root) / "kernels"


def say(message: str) -> None:
    print(f"mtlmech: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(path: Path, what: str, timeout: float):
    """An exclusive ``flock`` on ``path``, waited for at most ``timeout`` seconds (one stderr line
    when it must wait; ``TimeoutError`` after). The OS drops the lock when its holder exits or is
    killed, so a lock can never be left stale by a dead process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            say(f"waiting for another process that is {what} (lock {path}; at most {timeout:.0f} s)")
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(0.05)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e2:
                    if e2.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process held {path} for more than {timeout:.0f} s") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cache_path(source: Path, target: str, extra: tuple[str, ...] = (), cxx: str | None = None) -> Path:
    """Where :func:`ensure_built` puts ``target``'s kernel: named by the source+flags key and the
    compiler's version, so an edited source, other flags or another compiler never reuse an old file.
    Its lock is the same path with ``.lock``."""
    cxx = cxx or compiler()
    if cxx is None:
        raise FileNotFoundError("no C++ compiler found (set CXX, or install g++ or clang++)")
    key = hashlib.sha256(f"{build_key(source, target, extra)} {cxx} {compiler_version(cxx)}".encode()).hexdigest()[:16]
    return cache_dir() / f"fused_kernel.{target}{''.join(extra).replace('=', '-')}.{key}.so"


def ensure_built(source: Path, target: str, *, timeout: float | None = None, extra: tuple[str, ...] = ()) -> Path:
    """A compiled kernel for ``target`` in the per-user cache (:func:`cache_path`), compiled now if there
    is none (one stderr line first). Concurrent first uses compile once: the others wait on the lock
    (one stderr line), up to ``timeout`` seconds, then raise ``TimeoutError``."""
    timeout = BUILD_TIMEOUT_S if timeout is None else timeout
    cxx = compiler()
    out = cache_path(source, target, extra, cxx)
    if out.exists():
        return out
    with locked(out.with_suffix(".lock"), "compiling the fused kernel", timeout):
        if not out.exists():   # another process may have built it while this one waited
            say(f"compiling the fused kernel for {target}{' '.join(('',) + extra)} (first use, ~10 s) into {out.parent}")
            compile_kernel(source, target, out, cxx, timeout, extra)
    return out
