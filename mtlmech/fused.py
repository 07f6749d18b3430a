"""The fused per-member trainer: one member's whole run in one compiled call, its data in cache.

:func:`mtlmech.training.train` uses this path (``backend="auto"``) for one-hidden-layer,
full-batch nets on the CPU; everything else runs in the PyTorch trainer, which stays the
reference (``tests/test_fused.py`` checks this path against it on every experiment's net shape).

How it is fast. A member's run (all epochs, halt evaluations, snapshots, stopping) is one serial
numba loop; members are spread over worker threads in small chunks taken from a queue. Activations
are stored feature-major, ``(width, rows)``, so every product's innermost loop runs along the rows
(vectorised whatever the layer widths; a 4-output layer costs no more per flop than a 64-wide one)
and the gradient products are row reductions. The compiled loops carry only the ``reassoc`` and
``contract`` fast-math flags (reductions may be vectorised, multiply-adds fused); no ``nnan`` or
``ninf``, so a diverging member still produces the NaN/inf that flags it. In float32 the sigmoid
is a vectorisable 2^u (Cephes ``exp2f`` polynomial) and one division, tanh Cephes ``tanhf`` near
0 and the same 2^u beyond, both within 1e-7 of the exact values and compiled without ``reassoc``
so their range reductions stay exact. float64 uses libm's ``exp``/``tanh``.

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

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

try:
    import numba
    from llvmlite import ir as _llvm_ir
    from numba import njit, types
    from numba.extending import intrinsic, overload
except ImportError:  # pragma: no cover - numba is a dependency; without it everything falls back
    numba = None

KERNEL_VERSION = 1   # bump when the kernel's numbers change (cache keys record it: training.resolve_backend)
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
    (:func:`mtlmech.training.resolve_backend`)."""
    if numba is None:
        return "numba is not installed"
    if n_hidden_layers != 1:
        return f"{n_hidden_layers} hidden layers (the fused kernel has exactly one)"
    if batch_size is not None:   # even batch_size ≥ rows: the key does not know the row count
        return f"mini-batches (batch_size={batch_size})"
    if not device.startswith("cpu"):
        return f"device {device} (the fused kernel runs on the CPU)"
    return None


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
# Elementwise functions
# --------------------------------------------------------------------------------------------

if numba is not None:
    _JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
    _EXACT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

    @intrinsic
    def _int32_as_float32(typingctx, i):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.FloatType())
        return types.float32(types.int32), codegen

    def _llvm_unary(name: str):
        """A float → float LLVM intrinsic (e.g. ``llvm.rint``) callable from compiled code; it vectorises."""
        def typer(typingctx, x):
            def codegen(context, builder, signature, args):
                return builder.call(builder.module.declare_intrinsic(name, [args[0].type]), [args[0]])
            return x(x), codegen
        return intrinsic(typer)

    _rint = _llvm_unary("llvm.rint")

    def _c(like, value):
        """``value`` as a scalar of ``like``'s float type (a bare literal would promote float32 to float64)."""

    @overload(_c, jit_options=_EXACT)
    def _c_impl(like, value):
        ty = like.dtype if isinstance(like, types.Array) else like
        if ty == types.float32:
            return lambda like, value: np.float32(value)
        return lambda like, value: np.float64(value)

    def _exp2(u):
        """2^u for float32 u, clamped to [-126, 126] (NaN passes through): u = n + f, |f| ≤ ½,
        2^f by the Cephes exp2f polynomial, 2^n written into the exponent bits."""

    @overload(_exp2, jit_options=_EXACT)
    def _exp2_impl(u):
        def impl(u):
            u = u if not u > np.float32(126.0) else np.float32(126.0)
            u = u if not u < np.float32(-126.0) else np.float32(-126.0)
            n = _rint(u)
            f = u - n
            p = np.float32(1.535336188319500e-4)
            p = p * f + np.float32(1.339887440266574e-3)
            p = p * f + np.float32(9.618437357674640e-3)
            p = p * f + np.float32(5.550332471162809e-2)
            p = p * f + np.float32(2.402264791363012e-1)
            p = p * f + np.float32(6.931472028550421e-1)
            return (p * f + np.float32(1.0)) * _int32_as_float32((np.int32(n) + np.int32(127)) << np.int32(23))
        return impl

    def _sigmoid(x):
        """1 / (1 + exp(-x)); NaN passes through, ±inf give 1 and ≈ 1e-38."""

    @overload(_sigmoid, jit_options=_EXACT)
    def _sigmoid_impl(x):
        if x == types.float32:
            def impl(x):
                t = _exp2(x * np.float32(-1.44269504088896341))
                return np.float32(1.0) / (np.float32(1.0) + t)
            return impl

        def impl64(x):
            t = math.exp(-abs(x))
            s = 1.0 / (1.0 + t)
            return s if x >= 0.0 else t * s
        return impl64

    def _tanh(x):
        """tanh: Cephes odd polynomial for |x| < 0.625, 1 − 2/(exp(2|x|) + 1) beyond."""

    @overload(_tanh, jit_options=_EXACT)
    def _tanh_impl(x):
        if x == types.float32:
            def impl(x):
                a = abs(x)
                z = x * x
                p = np.float32(-5.70498872745e-3)
                p = p * z + np.float32(2.06390887954e-2)
                p = p * z - np.float32(5.37397155531e-2)
                p = p * z + np.float32(1.33314422036e-1)
                p = p * z - np.float32(3.33332819422e-1)
                small = p * z * x + x
                t = _exp2(a * np.float32(-2.88539008177792681))
                big = (np.float32(1.0) - t) / (np.float32(1.0) + t)
                big = big if x >= np.float32(0.0) else -big
                out = small if a < np.float32(0.625) else big
                return out if x == x else x
            return impl
        return lambda x: math.tanh(x)

    @njit(**_JIT)
    def _activate(z, kind):
        """In place over a row: 0 sigmoid, 1 tanh, 2 linear."""
        if kind == 0:
            for r in range(z.shape[0]):
                z[r] = _sigmoid(z[r])
        elif kind == 1:
            for r in range(z.shape[0]):
                z[r] = _tanh(z[r])

    # ----------------------------------------------------------------------------------------
    # Layer products, feature-major: activations (width, rows)
    # ----------------------------------------------------------------------------------------

    @njit(**_JIT)
    def _add_weighted_rows(dst, coef, rows):
        """dst[:] += Σ_i coef[i] · rows[i, :], four rows per pass over dst."""
        m, n = rows.shape
        i = 0
        while i + 4 <= m:
            c0, c1, c2, c3 = coef[i], coef[i + 1], coef[i + 2], coef[i + 3]
            r0, r1, r2, r3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
            for r in range(n):
                dst[r] += c0 * r0[r] + c1 * r1[r] + c2 * r2[r] + c3 * r3[r]
            i += 4
        while i < m:
            c0 = coef[i]
            r0 = rows[i]
            for r in range(n):
                dst[r] += c0 * r0[r]
            i += 1

    @njit(**_JIT)
    def _forward_unit(a_in, w, b, z, j, kind):
        """z[j, :] = f(b[j] + Σ_i w[i, j] · a_in[i, :])."""
        zj = z[j]
        bj = b[j]
        for r in range(zj.shape[0]):
            zj[r] = bj
        _add_weighted_rows(zj, w[:, j], a_in)
        _activate(zj, kind)

    @njit(**_JIT)
    def _forward_layer(a_in, w, b, z, kind):
        """z[j, :] = f(b[j] + Σ_i w[i, j] · a_in[i, :]) for every output unit j; units go in pairs
        that share each load of the inputs."""
        n_in, n = a_in.shape
        n_units = w.shape[1]
        j = 0
        while j + 2 <= n_units:
            za, zb = z[j], z[j + 1]
            ba, bb = b[j], b[j + 1]
            for r in range(n):
                za[r] = ba
                zb[r] = bb
            i = 0
            while i + 4 <= n_in:
                x0, x1, x2, x3 = a_in[i], a_in[i + 1], a_in[i + 2], a_in[i + 3]
                a0, a1, a2, a3 = w[i, j], w[i + 1, j], w[i + 2, j], w[i + 3, j]
                c0, c1, c2, c3 = w[i, j + 1], w[i + 1, j + 1], w[i + 2, j + 1], w[i + 3, j + 1]
                for r in range(n):
                    v0, v1, v2, v3 = x0[r], x1[r], x2[r], x3[r]
                    za[r] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                    zb[r] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
                i += 4
            while i < n_in:
                x0 = a_in[i]
                a0, c0 = w[i, j], w[i, j + 1]
                for r in range(n):
                    za[r] += a0 * x0[r]
                    zb[r] += c0 * x0[r]
                i += 1
            _activate(za, kind)
            _activate(zb, kind)
            j += 2
        if j < n_units:
            _forward_unit(a_in, w, b, z, j, kind)

    @njit(**_JIT)
    def _weight_grad(a, delta, g):
        """g[i, j] = Σ_r a[i, r] · delta[j, r]: four reductions at a time share each load of a."""
        n_in, n = a.shape
        n_out = delta.shape[0]
        for i in range(n_in):
            ai = a[i]
            j = 0
            while j + 4 <= n_out:
                d0, d1, d2, d3 = delta[j], delta[j + 1], delta[j + 2], delta[j + 3]
                s0 = s1 = s2 = s3 = _c(a, 0.0)
                for r in range(n):
                    x = ai[r]
                    s0 += x * d0[r]
                    s1 += x * d1[r]
                    s2 += x * d2[r]
                    s3 += x * d3[r]
                g[i, j], g[i, j + 1], g[i, j + 2], g[i, j + 3] = s0, s1, s2, s3
                j += 4
            while j < n_out:
                d0 = delta[j]
                s0 = _c(a, 0.0)
                for r in range(n):
                    s0 += ai[r] * d0[r]
                g[i, j] = s0
                j += 1

    @njit(**_JIT)
    def _row_sums(delta, g):
        for j in range(delta.shape[0]):
            dj = delta[j]
            s = _c(delta, 0.0)
            for r in range(dj.shape[0]):
                s += dj[r]
            g[j] = s

    @njit(**_JIT)
    def _backprop_hidden(w2, delta, a, back, kind):
        """back[h, :] = (Σ_k w2[h, k] · delta[k, :]) · f'(a[h, :]), f' written with the activation a."""
        n = delta.shape[1]
        one = _c(a, 1.0)
        for h in range(w2.shape[0]):
            bh = back[h]
            ah = a[h]
            for r in range(n):
                bh[r] = 0
            _add_weighted_rows(bh, w2[h], delta)
            if kind == 0:
                for r in range(n):
                    bh[r] = bh[r] * (one - ah[r]) * ah[r]
            elif kind == 1:
                for r in range(n):
                    bh[r] = bh[r] * (one - ah[r] * ah[r])

    @njit(**_JIT)
    def _output_delta(out, y, weight, out_kind, loss_kind, with_value):
        """Turn the outputs (K, n) into the output deltas in place; return the loss if asked."""
        zero, one = _c(out, 0.0), _c(out, 1.0)
        value = zero
        if loss_kind == 0:
            for k in range(out.shape[0]):
                ok, yk, wk = out[k], y[k], weight[k]
                if with_value:
                    s = zero
                    for r in range(ok.shape[0]):
                        e = ok[r] - yk[r]
                        s += wk[r] * e * e
                    value += s
                if out_kind == 0:
                    for r in range(ok.shape[0]):
                        o = ok[r]
                        ok[r] = (o - yk[r]) * wk[r] * (one - o) * o
                else:
                    for r in range(ok.shape[0]):
                        ok[r] = (ok[r] - yk[r]) * wk[r]
            value = value * _c(out, 0.5)
        else:
            tiny = np.finfo(out.dtype).tiny
            for k in range(out.shape[0]):
                ok, yk, wk = out[k], y[k], weight[k]
                if with_value:
                    s = zero
                    for r in range(ok.shape[0]):
                        o = ok[r]
                        s += wk[r] * (yk[r] * math.log(o + tiny) + (one - yk[r]) * math.log(one - o + tiny))
                    value -= s
                for r in range(ok.shape[0]):
                    ok[r] = (ok[r] - yk[r]) * wk[r]
        return value

    @njit(**_JIT)
    def _metric(out, y, mask, count, metric, h):
        """Masked per-task mse (metric 0) or 0.5-threshold error rate (1) into h (K,)."""
        zero, half = _c(out, 0.0), _c(out, 0.5)
        for k in range(out.shape[0]):
            ok, yk, mk = out[k], y[k], mask[k]
            s = zero
            if metric == 0:
                for r in range(ok.shape[0]):
                    e = ok[r] - yk[r]
                    s += mk[r] * (e * e)
            else:
                for r in range(ok.shape[0]):
                    wrong = (ok[r] > half) != (yk[r] > half)
                    s += mk[r] if wrong else zero
            h[k] = s / count[k]

    @njit(**_JIT)
    def _mask_count(mask, count):
        for k in range(mask.shape[0]):
            s = _c(mask, 0.0)
            for r in range(mask.shape[1]):
                s += mask[k, r]
            count[k] = s if s > _c(mask, 1.0) else _c(mask, 1.0)

    @njit(**_JIT)
    def _evaluate(x, y, mask, count, w1, b1, w2, b2, hid, out, act, out_kind, metric, h):
        _forward_layer(x, w1, b1, hid, act)
        _forward_layer(hid, w2, b2, out, out_kind)
        _metric(out, y, mask, count, metric, h)

    @njit(**_JIT)
    def _sgd(p, g, v, step, momentum, decay, with_decay):
        """torch.optim.SGD: g ← g + λp (weights only), v ← μv + g, p ← p − η·v (flat views)."""
        if with_decay:
            for i in range(p.shape[0]):
                gi = g[i] + decay * p[i]
                vi = momentum * v[i] + gi
                v[i] = vi
                p[i] = p[i] - step * vi
        else:
            for i in range(p.shape[0]):
                vi = momentum * v[i] + g[i]
                v[i] = vi
                p[i] = p[i] - step * vi

    # ----------------------------------------------------------------------------------------
    # One member's whole run, for a chunk of members
    # ----------------------------------------------------------------------------------------

    @njit(**_JIT)
    def _train_members(members, xt, yt, wt, hx, hy, hm, has_halt, tx, ty, tm, has_test,
                       w1s, b1s, w2s, b2s, step1, step2, decay, momentum, trained,
                       epochs, eval_every, act, out_kind, loss_kind, metric, patience, min_delta, curves,
                       snap_w1, snap_b1, snap_w2, snap_b2, sh_w1, sh_b1, sh_w2, sh_b2,
                       best_epoch, best_halt, shared_epoch, shared_best, diverged, diverged_epoch,
                       stop_epoch, stopped_by, loss_curve, halt_curve, test_curve):
        n_in, n_hid = w1s.shape[1], w1s.shape[2]
        n_out = w2s.shape[2]
        n = xt.shape[2]
        dt = w1s.dtype
        hid = np.empty((n_hid, n), dt)
        back = np.empty((n_hid, n), dt)
        out = np.empty((n_out, n), dt)
        g_w1 = np.empty((n_in, n_hid), dt)
        g_b1 = np.empty(n_hid, dt)
        g_w2 = np.empty((n_hid, n_out), dt)
        g_b2 = np.empty(n_out, dt)
        v_w1 = np.empty(n_in * n_hid, dt)
        v_b1 = np.empty(n_hid, dt)
        v_w2 = np.empty(n_hid * n_out, dt)
        v_b2 = np.empty(n_out, dt)
        nh = hx.shape[2]
        h_hid = np.empty((n_hid, nh), dt)
        h_out = np.empty((n_out, nh), dt)
        h_count = np.empty(n_out, dt)
        h = np.empty(n_out, dt)
        nt = tx.shape[2]
        t_hid = np.empty((n_hid, nt), dt)
        t_out = np.empty((n_out, nt), dt)
        t_count = np.empty(n_out, dt)
        t_h = np.empty(n_out, dt)
        ref = np.empty(n_out, dt)
        last_improved = np.empty(n_out, np.int64)
        inf = np.inf
        zero = _c(w1s, 0.0)
        for m in members:
            x = xt[m if xt.shape[0] > 1 else 0]
            y = yt[m if yt.shape[0] > 1 else 0]
            wgt = wt[m]
            w1, b1, w2, b2 = w1s[m], b1s[m], w2s[m], b2s[m]
            f_w1, f_w2 = w1.reshape(n_in * n_hid), w2.reshape(n_hid * n_out)
            v_w1[:] = 0
            v_b1[:] = 0
            v_w2[:] = 0
            v_b2[:] = 0
            if has_halt:
                hxm = hx[m if hx.shape[0] > 1 else 0]
                hym = hy[m if hy.shape[0] > 1 else 0]
                hmm = hm[m if hm.shape[0] > 1 else 0]
                _mask_count(hmm, h_count)
            if has_test:
                txm = tx[m if tx.shape[0] > 1 else 0]
                tym = ty[m if ty.shape[0] > 1 else 0]
                tmm = tm[m if tm.shape[0] > 1 else 0]
                _mask_count(tmm, t_count)
            n_trained = 0
            for k in range(n_out):
                best_halt[m, k] = inf
                best_epoch[m, k] = 0
                ref[k] = inf
                last_improved[k] = 0
                if trained[m, k] > zero:
                    n_trained += 1
                snap_w1[m, k] = w1
                snap_b1[m, k] = b1
                snap_w2[m, k] = w2
                snap_b2[m, k] = b2
            sh_w1[m] = w1
            sh_b1[m] = b1
            sh_w2[m] = w2
            sh_b2[m] = b2
            shared_best[m] = inf
            shared_epoch[m] = 0
            diverged[m] = False
            diverged_epoch[m] = 0
            stop_epoch[m] = epochs
            stopped_by[m] = 0
            s1, s2, lam = step1[m], step2[m], decay[m]
            n_div = _c(w1s, max(n_trained, 1))
            row = 0
            for epoch in range(1, epochs + 1):
                evaluating = epoch % eval_every == 0 or epoch == epochs
                _forward_layer(x, w1, b1, hid, act)
                _forward_layer(hid, w2, b2, out, out_kind)
                value = _output_delta(out, y, wgt, out_kind, loss_kind, evaluating)
                _weight_grad(hid, out, g_w2)
                _row_sums(out, g_b2)
                _backprop_hidden(w2, out, hid, back, act)
                _weight_grad(x, back, g_w1)
                _row_sums(back, g_b1)
                _sgd(f_w1, g_w1.reshape(n_in * n_hid), v_w1, s1, momentum, lam, True)
                _sgd(b1, g_b1, v_b1, s1, momentum, lam, False)
                _sgd(f_w2, g_w2.reshape(n_hid * n_out), v_w2, s2, momentum, lam, True)
                _sgd(b2, g_b2, v_b2, s2, momentum, lam, False)
                if not evaluating:
                    continue
                if not np.isfinite(value) and not diverged[m]:
                    diverged[m] = True
                    diverged_epoch[m] = epoch
                if has_halt:
                    _evaluate(hxm, hym, hmm, h_count, w1, b1, w2, b2, h_hid, h_out, act, out_kind, metric, h)
                    total = zero
                    for k in range(n_out):
                        total += h[k] * trained[m, k]
                        if trained[m, k] > zero and h[k] < best_halt[m, k]:
                            best_halt[m, k] = h[k]
                            best_epoch[m, k] = epoch
                            snap_w1[m, k] = w1
                            snap_b1[m, k] = b1
                            snap_w2[m, k] = w2
                            snap_b2[m, k] = b2
                    mean_h = total / n_div
                    if mean_h < shared_best[m]:
                        shared_best[m] = mean_h
                        shared_epoch[m] = epoch
                        sh_w1[m] = w1
                        sh_b1[m] = b1
                        sh_w2[m] = w2
                        sh_b2[m] = b2
                    for k in range(n_out):
                        if trained[m, k] > zero and h[k] < ref[k] - min_delta:
                            ref[k] = h[k]
                            last_improved[k] = epoch
                if curves:
                    loss_curve[m, row] = value
                    if has_halt:
                        halt_curve[m, row] = h
                    if has_test:
                        _evaluate(txm, tym, tmm, t_count, w1, b1, w2, b2, t_hid, t_out, act, out_kind, metric, t_h)
                        test_curve[m, row] = t_h
                row += 1
                if patience >= 0 and epoch != epochs:  # at the cap the reason stays "cap"
                    if diverged[m]:
                        stop_epoch[m] = epoch
                        stopped_by[m] = 2
                        break
                    waited = True
                    for k in range(n_out):
                        if trained[m, k] > zero and epoch - last_improved[k] < patience * eval_every:
                            waited = False
                    if waited:
                        stop_epoch[m] = epoch
                        stopped_by[m] = 1
                        break


def _numpy(t: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(dtype).numpy())


def _feature_major(t: torch.Tensor, dtype) -> np.ndarray:
    """(n, w) or (B, n, w) → (1 or B, w, n), contiguous."""
    t = t.detach()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    return np.ascontiguousarray(t.to(dtype).transpose(1, 2).numpy())


def run_kernel(members_chunks, kwargs, threads: int) -> None:
    """Run ``_train_members`` over chunks of members, on ``threads`` worker threads."""
    if threads <= 1 or len(members_chunks) <= 1:
        for chunk in members_chunks:
            _train_members(chunk, **kwargs)
        return
    futures = [_executor(threads).submit(_train_members, chunk, **kwargs) for chunk in members_chunks]
    for f in futures:
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
    """The fused path of :func:`mtlmech.training.train`, which resolves the per-member settings
    (``task_weights`` (B, K), ``lr`` (B,), ``weight_decay`` (B,), ``layer_lr`` (B, 2)) and checks
    :func:`unsupported` first. Returns a ``TrainResult`` with ``backend="fused"``."""
    from .training import TrainResult, loss_weights

    ts = train_spec
    n_members, n_in, n_hid = params[0].shape
    n_out = spec.n_outputs
    dtype = params[0].dtype
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
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
        stopped_by=torch.zeros(n_members, dtype=torch.int8),
        loss_curve=torch.full((n_members, n_curve), float("nan"), dtype=dtype),
        halt_curve=torch.full((n_members, n_curve if halt is not None else 0, n_out), float("nan"), dtype=dtype),
        test_curve=torch.full((n_members, n_curve if test is not None else 0, n_out), float("nan"), dtype=dtype),
    )

    def split(batch):
        if batch is None:  # typed placeholders with no rows
            return tuple(np.zeros((1, w, 0), np_dtype) for w in (n_in, n_out, n_out))
        return _feature_major(batch.x, dtype), _feature_major(batch.y, dtype), _feature_major(batch.mask, dtype)

    hx, hy, hm = split(halt)
    tx, ty, tm = split(test)
    loss_weight = loss_weights(task_weights, data.mask, data.n_rows)
    kwargs = dict(
        xt=_feature_major(data.x, dtype), yt=_feature_major(data.y, dtype), wt=_feature_major(loss_weight, dtype),
        hx=hx, hy=hy, hm=hm, has_halt=halt is not None, tx=tx, ty=ty, tm=tm, has_test=test is not None,
        w1s=w1.numpy(), b1s=b1.numpy(), w2s=w2.numpy(), b2s=b2.numpy(),
        step1=_numpy(lr * layer_lr[:, 0], dtype), step2=_numpy(lr * layer_lr[:, 1], dtype),
        decay=_numpy(weight_decay.reshape(-1), dtype), momentum=np_dtype(ts.momentum),
        trained=_numpy((task_weights > 0).to(dtype), dtype),
        epochs=ts.epochs, eval_every=ts.eval_every, act=ACT_CODES[spec.activation], out_kind=ACT_CODES[spec.output],
        loss_kind=LOSS_CODES[ts.loss], metric=HALT_CODES[ts.halt_metric],
        patience=-1 if ts.patience is None else int(ts.patience),
        min_delta=np_dtype(ts.min_delta), curves=bool(ts.record_curves),
        snap_w1=snaps[0].numpy(), snap_b1=snaps[1].numpy(), snap_w2=snaps[2].numpy(), snap_b2=snaps[3].numpy(),
        sh_w1=shared[0].numpy(), sh_b1=shared[1].numpy(), sh_w2=shared[2].numpy(), sh_b2=shared[3].numpy(),
        **{k: v.numpy() for k, v in out.items()},
    )
    threads = threads or get_threads()
    size = max(1, min(16, -(-n_members // (4 * threads))))
    chunks = [np.arange(s, min(s + size, n_members), dtype=np.int64) for s in range(0, n_members, size)]
    run_kernel(chunks, kwargs, threads)

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
                       stopped_by=[STOP_CODES[int(c)] for c in out["stopped_by"]], backend="fused", **curves)
