"""The fused per-member trainer: one member's whole run in one compiled call, its data in cache.

:func:`mtlmech.engine.training.train` uses this path (``backend="auto"``) for one-hidden-layer,
full-batch nets on the CPU; everything else runs in the PyTorch trainer, which stays the
reference (``tests/test_fused.py`` checks this path against it on every experiment's net shape).

How it is fast. A member's run (all epochs, halt evaluations, snapshots, stopping) is one serial
loop in compiled C++ (``fused_kernel.cpp``); members are spread over worker threads in small chunks
taken from a queue. Activations are stored feature-major, ``(width, rows)``, with the rows padded by
zero-weight rows to a multiple of the kernel's 64-byte vector (16 float32 / 8 float64 rows, on every
target: one zmm register with AVX-512, two ymm registers with AVX2), so every loop runs on whole
vectors with no remainder and, all pointers being ``__restrict__``, no runtime alias checks. Layer
products are register tiles (up to 8 units × 1-4 row vectors accumulating over the inputs with
fma, so the weights are loaded once per tile); weight gradients are tiles of row-vector
accumulators whose lanes are summed by one fixed pairwise tree, so how the products are tiled
cannot change a number. Only the outputs a member trains are computed (an STL member trains one of
K): the others get zero gradients, so they only decay under weight decay, and are evaluated only
when curves are recorded.

One arithmetic on every machine (``fused-v4``; docs/reproducibility.md). The kernel's numbers are
bitwise the same on every x86-64 CPU with AVX2+FMA, with or without AVX-512, Intel or AMD: only
per-lane IEEE operations (multiply-adds as explicit ``fma``, never contracted by the compiler:
``-ffp-contract=off``; true division, never a reciprocal estimate), one table-free exp2 polynomial
for the sigmoid (1 / (1 + 2^u), within 9e-8) and tanh (Cephes ``tanhf`` near 0, within 1.1e-7),
its own float64 exp/tanh/log (never libm), the same lane-sum tree, and flush-to-zero with
denormals-are-zero set on entry (the PyTorch trainer flushes too while it trains). No fast-math
flag, so a diverging member still produces the NaN/inf that flags it and padding rows (their
deltas are set to zero) never contribute.

Building. ``pip install`` (``setup.py``) compiles the kernel with the C++ compiler for fixed
targets, ``x86-64-v3`` (AVX2+FMA) and ``x86-64-v4`` (AVX-512), ``-mtune=generic``, into the
package (:mod:`mtlmech.engine.fused_build`); at run time the best target this CPU runs is loaded
(``MTLMECH_KERNEL_TARGET`` picks another; they differ in speed only). Where the installed file is
missing or was built from another source (an edited kernel under an editable install), the first
call compiles it into a per-user cache (``~/.cache/mtlmech/kernels``, named by a hash of the
source, flags and compiler version; written atomically) under an ``flock`` the OS releases if its
holder dies, saying so on stderr before compiling and while waiting for another process's build
(at most ``MTLMECH_BUILD_TIMEOUT`` s, 300). Where it cannot be built, ``train`` runs the PyTorch
trainer and says why (one line on stderr). :func:`arithmetic` says what was loaded.

Why results do not depend on batch-mates. Each member is computed by the same compiled code on its
own slices and scratch buffers, start to finish, by one thread; which thread or which chunk it lands
in cannot change an instruction it executes, so its numbers are bitwise those it gets alone.

Against the PyTorch trainer the numbers agree to rounding (summation order differs): weights to
≈ 1e-6 in float32 after hundreds of epochs; best epochs and stopping epochs are identical except
at genuine near-ties of the halt metric in float32.

Threads. Worker threads block on a queue when idle (no OpenMP busy-waiting), and work is handed out
in chunks of a few members, so a thread slowed by another process on the machine delays only its
current chunk. ``set_threads(n)`` (or ``MTLMECH_THREADS``) overrides the default, which is the
number of CPUs this process may run on.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from . import fused_build
from .common import TrainResult, loss_weights

KERNEL_VERSION = 4   # bump when the kernel's numbers change (cache keys record it: training.resolve_backend)
ARITHMETIC = f"fused-v{KERNEL_VERSION}"   # the declared arithmetic; fused_kernel.cpp's MTL_ARITHMETIC must match
# Flush-to-zero and denormals-are-zero while the kernel runs: part of the declared arithmetic (the
# PyTorch trainer flushes too while it trains: training.denormals_flushed). A build that cannot set it
# (no SSE: not x86) declares its own arithmetic name, fused_kernel.cpp's MTL_ARITHMETIC.
FLUSH_DENORMALS = True
ACT_CODES = {"sigmoid": 0, "tanh": 1, "linear": 2}
LOSS_CODES = {"mse": 0, "ce": 1}
HALT_CODES = {"mse": 0, "error": 1}
STOP_CODES = ("cap", "patience", "diverged")   # kernel codes 0, 1, 2

_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def default_threads() -> int:
    """``MTLMECH_THREADS`` if set, else the CPUs this process may run on."""
    env = os.environ.get("MTLMECH_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(n: int | None) -> None:
    """Worker threads of the fused trainer (``None``: the default)."""
    global _threads
    if n is not None and n < 1:
        raise ValueError("threads must be ≥ 1")
    _threads = n


def get_threads() -> int:
    return _threads or default_threads()


def _forget_pool() -> None:
    """In a forked child the parent's worker threads do not exist: start a new pool when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="mtlmech-fused")
        return _pool


# --------------------------------------------------------------------------------------------
# When the fused path applies
# --------------------------------------------------------------------------------------------

def structure_unsupported(n_hidden_layers: int, batch_size: int | None, device: str = "cpu") -> str | None:
    """Why the fused path cannot apply to this kind of net and training (``None`` when it can):
    the part of :func:`unsupported` known before any data exists, which cache keys use
    (:func:`mtlmech.engine.training.resolve_backend`)."""
    if n_hidden_layers != 1:
        return f"{n_hidden_layers} hidden layers (the fused kernel has exactly one)"
    if batch_size is not None:   # even batch_size ≥ rows: the key does not know the row count
        return f"mini-batches (batch_size={batch_size})"
    if not device.startswith("cpu"):
        return f"device {device} (the fused kernel runs on the CPU)"
    return _library()[1]


def unsupported(spec, params, data, train_spec, task_weights, halt=None, test=None) -> str | None:
    """Why the fused path cannot run this call (``None`` when it can)."""
    ts = train_spec
    why = structure_unsupported(len(spec.hidden), ts.batch_size)
    if why is not None:
        return why
    if ts.loss not in LOSS_CODES or (ts.loss == "ce" and spec.output != "sigmoid"):
        return f"loss {ts.loss!r} with {spec.output} outputs"
    if len(params) != 4:
        return f"{len(params)} parameter tensors"
    dtype = params[0].dtype
    if dtype not in (torch.float32, torch.float64):
        return f"dtype {dtype}"
    n_members = params[0].shape[0]
    if n_members < 1:
        return "no members"
    tensors = [t for batch in (data, halt, test) if batch is not None for t in (batch.x, batch.y, batch.mask)]
    for t in [*params, torch.as_tensor(task_weights), *tensors]:
        if t.device.type != "cpu":
            return f"{t.device.type} tensors (the fused kernel runs on the CPU)"
    for t in [*params, *tensors]:
        if t.dtype != dtype:
            return f"tensors of dtype {t.dtype} with parameters of dtype {dtype}"
    d, h, k = spec.n_inputs, spec.hidden[0], spec.n_outputs
    shapes = [(n_members, d, h), (n_members, h), (n_members, h, k), (n_members, k)]
    if [tuple(p.shape) for p in params] != shapes:
        return "parameter shapes do not match the net"
    for name, batch in (("training", data), ("halt", halt), ("test", test)):
        if batch is None:
            continue
        n = batch.x.shape[-2]
        for t, width in ((batch.x, d), (batch.y, k), (batch.mask, k)):
            if t.dim() not in (2, 3) or t.shape[-2:] != (n, width) or (t.dim() == 3 and t.shape[0] != n_members):
                return f"{name} data of shape {tuple(t.shape)}"
    return None


# --------------------------------------------------------------------------------------------
# The compiled kernel (fused_kernel.cpp): installed with the package, or compiled once per machine
# --------------------------------------------------------------------------------------------

_SOURCE = Path(__file__).with_name(fused_build.SOURCE_NAME)
_I64 = ("n_members", "n_in", "n_hid", "n_out", "n", "np", "batched_x", "batched_y",
        "nh", "nhp", "batched_hx", "batched_hy", "batched_hm", "nt", "ntp", "batched_tx", "batched_ty", "batched_tm",
        "epochs", "eval_every", "act", "out_kind", "loss_kind", "metric", "patience", "curves", "n_curve", "flush", "per_task")
_POINTERS = ("xt", "yt", "wt", "hx", "hy", "hm", "tx", "ty", "tm", "w1s", "b1s", "w2s", "b2s", "step1", "step2",
             "decay", "trained", "snap_w1", "snap_b1", "snap_w2", "snap_b2", "sh_w1", "sh_b1", "sh_w2", "sh_b2",
             "best_epoch", "shared_epoch", "diverged_epoch", "stop_epoch", "frozen_epoch", "best_halt", "shared_best", "loss_curve",
             "halt_curve", "test_curve", "diverged", "stopped_by")


class _Args(ctypes.Structure):
    """The kernel's ``struct Args``: sizes, settings and the address of every array."""
    _fields_ = ([(k, ctypes.c_int64) for k in _I64] + [("momentum", ctypes.c_double), ("min_delta", ctypes.c_double)]
                + [(k, ctypes.c_void_p) for k in _POINTERS])


def _open(path: Path) -> ctypes.CDLL:
    """A built kernel, its functions typed; ``ValueError`` if it implements another arithmetic."""
    lib = ctypes.CDLL(str(path))
    for fn in (lib.mtl_train_f32, lib.mtl_train_f64):
        fn.argtypes, fn.restype = [ctypes.POINTER(_Args), ctypes.c_void_p, ctypes.c_int64], None
    for fn in (lib.mtl_activate_f32, lib.mtl_activate_f64):
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64], None
    for fn in (lib.mtl_lane_sums_f32, lib.mtl_lane_sums_f64):
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p], None
    lib.mtl_lanes.argtypes, lib.mtl_lanes.restype = [ctypes.c_int64], ctypes.c_int64
    for name in ("mtl_arithmetic", "mtl_target", "mtl_build_key", "mtl_compiler"):
        getattr(lib, name).restype = ctypes.c_char_p
    name = lib.mtl_arithmetic().decode()
    if name != ARITHMETIC and not name.startswith(ARITHMETIC + "-"):
        raise ValueError(f"{path} implements {lib.mtl_arithmetic().decode()}, not {ARITHMETIC}")
    lib.path = str(path)
    return lib


def _installed(target: str, folder: Path | None = None) -> ctypes.CDLL | None:
    """The kernel ``pip install`` compiled into the package (``folder``) for ``target``, if it is there and
    was built from this source with this target's flags (an edited source in an editable install is not)."""
    path = (folder or Path(__file__).parent) / fused_build.library_name(target)
    if not path.exists():
        return None
    try:
        lib = _open(path)
        if lib.mtl_build_key().decode() == fused_build.build_key(_SOURCE, target):
            return lib
    except (OSError, AttributeError, ValueError):
        pass
    return None


def load(target: str, *, timeout: float | None = None) -> ctypes.CDLL:
    """The kernel built for ``target``: the installed one, else one compiled now into the per-user
    cache (:func:`mtlmech.engine.fused_build.ensure_built`). Raises where it cannot be had."""
    lib = _installed(target)
    if lib is None:
        lib = _open(fused_build.ensure_built(_SOURCE, target, timeout=timeout))
    return lib


_override: ctypes.CDLL | None = None


@contextlib.contextmanager
def using(lib: ctypes.CDLL):
    """Run the fused path with this built kernel (tests: every target against every other)."""
    global _override
    before, _override = _override, lib
    try:
        yield lib
    finally:
        _override = before


@functools.cache
def _default_library() -> tuple[ctypes.CDLL | None, str | None]:
    try:
        return load(fused_build.best_target()), None
    except Exception as e:  # no compiler, a failed build, a lock held too long, a bad target: "not here"
        lines = str(e).strip().splitlines()
        return None, f"the fused kernel could not be built ({type(e).__name__}: {lines[-1] if lines else ''})"


def _library() -> tuple[ctypes.CDLL | None, str | None]:
    """The kernel for this CPU's best target, or ``(None, why)`` when it cannot be had (then ``train``
    falls back to the PyTorch trainer and says why). Installed with the package (``setup.py``), or
    compiled on first use into a per-user cache (one stderr line, a few seconds)."""
    if _override is not None:
        return _override, None
    return _default_library()


def arithmetic_name() -> str:
    """The declared arithmetic of the fused path (cache keys record it: :func:`mtlmech.engine.training.resolve_backend`):
    ``fused-v4`` on every x86-64 target; a build that cannot implement all of it names its variant."""
    lib = _library()[0]
    return lib.mtl_arithmetic().decode() if lib is not None else ARITHMETIC


def arithmetic() -> dict:
    """What the fused kernel is on this machine: its declared arithmetic, the target built, this CPU,
    the compiler (name and version, read from the built library) and its flags."""
    lib, why = _library()
    out = {"arithmetic": arithmetic_name(), "flush_denormals": FLUSH_DENORMALS, "cpu": fused_build.cpu_model()}
    if lib is None:
        return {**out, "target": None, "compiler": None, "flags": None, "unavailable": why}
    target = lib.mtl_target().decode()
    return {**out, "target": target, "compiler": lib.mtl_compiler().decode(),
            "flags": " ".join(fused_build.flags(target))}


def describe() -> str:
    """What the fused kernel is on this machine (benchmarks record it)."""
    lib, why = _library()
    if lib is None:
        return why
    a = arithmetic()
    return (f"fused_kernel.cpp, arithmetic {a['arithmetic']}, target {a['target']}, {a['compiler']} {a['flags']}, "
            f"{lanes(torch.float32)} float32 rows per vector")


def lanes(dtype: torch.dtype) -> int:
    """Rows per vector in the kernel (training, halt and test rows are padded to a multiple of it)."""
    return _library()[0].mtl_lanes(int(dtype == torch.float64))


def activate(z: np.ndarray, kind: str) -> np.ndarray:
    """The kernel's float32 activation (``"sigmoid"``, ``"tanh"`` or ``"linear"``) of ``z``, as a new array."""
    buf = _padded(torch.as_tensor(z, dtype=torch.float32).reshape(-1, 1), torch.float32, lanes(torch.float32))
    _library()[0].mtl_activate_f32(buf.ctypes.data, buf.size, ACT_CODES[kind], int(FLUSH_DENORMALS))
    return buf[0, 0, :z.size].reshape(z.shape)


def _padded(t: torch.Tensor, dtype: torch.dtype, multiple: int) -> np.ndarray:
    """(n, w) or (B, n, w) → (1 or B, w, n padded with zeros to a multiple of ``multiple``), contiguous."""
    t = t.detach().to(dtype)
    if t.dim() == 2:
        t = t.unsqueeze(0)
    n = t.shape[1]
    out = t.new_zeros(t.shape[0], t.shape[2], -(-n // multiple) * multiple)
    out[:, :, :n] = t.transpose(1, 2)
    return out.numpy()


def run_kernel(members_chunks, args: _Args, dtype: torch.dtype, threads: int) -> None:
    """Run the kernel over chunks of members, on ``threads`` worker threads (ctypes calls release the GIL)."""
    lib = _library()[0]
    fn = lib.mtl_train_f64 if dtype == torch.float64 else lib.mtl_train_f32

    def call(chunk):
        fn(ctypes.byref(args), chunk.ctypes.data, len(chunk))
    if threads <= 1 or len(members_chunks) <= 1:
        for chunk in members_chunks:
            call(chunk)
        return
    for f in [_executor(threads).submit(call, chunk) for chunk in members_chunks]:
        f.result()


_announced: set[str] = set()


def announce(message: str) -> None:
    """Say once per process which training path ran (stderr, one line)."""
    if message not in _announced:
        _announced.add(message)
        print(f"mtlmech: {message}", file=sys.stderr, flush=True)


def curve_epochs(epochs: int, eval_every: int) -> list[int]:
    return [e for e in range(1, epochs + 1) if e % eval_every == 0 or e == epochs]


def train_fused(spec, params, data, train_spec, *, task_weights: torch.Tensor, lr: torch.Tensor,
                weight_decay: torch.Tensor, layer_lr: torch.Tensor, halt=None, test=None, threads: int | None = None):
    """The fused path of :func:`mtlmech.engine.training.train`, which resolves the per-member settings
    (``task_weights`` (B, K), ``lr`` (B,), ``weight_decay`` (B,), ``layer_lr`` (B, 2)) and checks
    :func:`unsupported` first. Returns a ``TrainResult`` with ``backend="fused"``."""
    ts = train_spec
    n_members, n_in, n_hid = params[0].shape
    n_out = spec.n_outputs
    dtype = params[0].dtype
    w1, b1, w2, b2 = (p.detach().clone().contiguous() for p in params)
    snaps = [p[:, None].repeat(1, n_out, *([1] * (p.dim() - 1))) for p in (w1, b1, w2, b2)]
    shared = [p.clone() for p in (w1, b1, w2, b2)]
    epochs_list = curve_epochs(ts.epochs, ts.eval_every)
    n_curve = len(epochs_list) if ts.record_curves else 0
    out = dict(
        best_epoch=torch.zeros(n_members, n_out, dtype=torch.long),
        best_halt=torch.full((n_members, n_out), float("inf"), dtype=dtype),
        shared_epoch=torch.zeros(n_members, dtype=torch.long),
        shared_best=torch.full((n_members,), float("inf"), dtype=dtype),  # shared_best_halt
        diverged=torch.zeros(n_members, dtype=torch.bool),
        diverged_epoch=torch.zeros(n_members, dtype=torch.long),
        stop_epoch=torch.zeros(n_members, dtype=torch.long),
        frozen_epoch=torch.zeros(n_members, n_out, dtype=torch.long),
        stopped_by=torch.zeros(n_members, dtype=torch.int8),
        loss_curve=torch.full((n_members, n_curve), float("nan"), dtype=dtype),
        halt_curve=torch.full((n_members, n_curve if halt is not None else 0, n_out), float("nan"), dtype=dtype),
        test_curve=torch.full((n_members, n_curve if test is not None else 0, n_out), float("nan"), dtype=dtype),
    )

    multiple = lanes(dtype)
    keep = []   # every array the kernel is given stays alive until it returns

    def address(a) -> int:
        """An input array's address, as a contiguous array of the parameters' dtype."""
        if isinstance(a, torch.Tensor):
            a = a.detach().to(dtype).contiguous().numpy()
        a = np.ascontiguousarray(a)
        keep.append(a)
        return a.ctypes.data

    def output(t: torch.Tensor) -> int:
        """An array the kernel writes into (contiguous, allocated above)."""
        assert t.is_contiguous()
        return t.data_ptr()

    def split(name, batch):
        """Rows, padded rows, one-per-member flags and addresses of a halt or test set's x, y and mask."""
        if batch is None:
            return {}
        arrays = {f"{name}{part}": _padded(t, dtype, multiple) for part, t in zip("xym", (batch.x, batch.y, batch.mask))}
        return {f"n{name}": batch.x.shape[-2], f"n{name}p": arrays[f"{name}x"].shape[-1],
                **{f"batched_{k}": int(a.shape[0] > 1) for k, a in arrays.items()},
                **{k: address(a) for k, a in arrays.items()}}

    x, y, wt = (_padded(t, dtype, multiple) for t in (data.x, data.y, loss_weights(task_weights, data.mask, data.n_rows)))
    args = _Args(
        n_members=n_members, n_in=n_in, n_hid=n_hid, n_out=n_out, n=data.x.shape[-2], np=x.shape[-1],
        batched_x=int(x.shape[0] > 1), batched_y=int(y.shape[0] > 1), **split("h", halt), **split("t", test),
        epochs=ts.epochs, eval_every=ts.eval_every, act=ACT_CODES[spec.activation], out_kind=ACT_CODES[spec.output],
        loss_kind=LOSS_CODES[ts.loss], metric=HALT_CODES[ts.halt_metric],
        patience=-1 if ts.patience is None else int(ts.patience), curves=int(ts.record_curves), n_curve=n_curve,
        flush=int(FLUSH_DENORMALS), per_task=int(ts.stopping == "per_task"), momentum=ts.momentum, min_delta=ts.min_delta, xt=address(x), yt=address(y), wt=address(wt),
        w1s=output(w1), b1s=output(b1), w2s=output(w2), b2s=output(b2),
        step1=address(lr * layer_lr[:, 0]), step2=address(lr * layer_lr[:, 1]),
        decay=address(weight_decay.reshape(-1)), trained=address(task_weights > 0),
        snap_w1=output(snaps[0]), snap_b1=output(snaps[1]), snap_w2=output(snaps[2]), snap_b2=output(snaps[3]),
        sh_w1=output(shared[0]), sh_b1=output(shared[1]), sh_w2=output(shared[2]), sh_b2=output(shared[3]),
        **{k: output(v) for k, v in out.items()},
    )
    threads = threads or get_threads()
    size = max(1, min(16, -(-n_members // (4 * threads))))
    chunks = [np.arange(s, min(s + size, n_members), dtype=np.int64) for s in range(0, n_members, size)]
    run_kernel(chunks, args, dtype, threads)

    final = [w1, b1, w2, b2]
    best_epoch, shared_epoch = out["best_epoch"], out["shared_epoch"]
    if halt is None:
        snaps = [p[:, None].expand(-1, n_out, *p.shape[1:]).clone() for p in final]
        shared = [p.clone() for p in final]
        best_epoch = torch.full((n_members, n_out), ts.epochs, dtype=torch.long)
        shared_epoch = torch.full((n_members,), ts.epochs, dtype=torch.long)
    curves = {}
    if ts.record_curves:  # the reference stops recording when its last member stops
        n_kept = sum(1 for e in epochs_list if e <= int(out["stop_epoch"].max()))
        curves = dict(curve_epochs=epochs_list[:n_kept], train_loss_curve=out["loss_curve"][:, :n_kept],
                      halt_curve=out["halt_curve"][:, :n_kept] if halt is not None else None,
                      test_curve=out["test_curve"][:, :n_kept] if test is not None else None)
    return TrainResult(spec=spec, final=final, task_snapshots=snaps, shared_snapshot=shared,
                       best_epoch=best_epoch, best_halt=out["best_halt"], shared_best_epoch=shared_epoch,
                       shared_best_halt=out["shared_best"], diverged=out["diverged"],
                       diverged_epoch=out["diverged_epoch"], epochs_run=ts.epochs, stop_epoch=out["stop_epoch"],
                       stopped_by=[STOP_CODES[int(c)] for c in out["stopped_by"]], backend="fused",
                       frozen_epoch=out["frozen_epoch"] if ts.stopping == "per_task" else None, **curves)
