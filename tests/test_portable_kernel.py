"""The fused kernel's declared arithmetic (fused-v4) is the same on every target it is built for.

Every build this machine can run (the ``x86-64-v3`` baseline, ``x86-64-v4`` where the CPU has
AVX-512, the intrinsic-free ``generic`` build, and the baseline compiled for this very CPU with
``-march=native``) must give bitwise the same weights, snapshots, halt values, curves and stopping
epochs on every experiment's net shape, the same activations on special values and the same lane
sums, which must be the declared pairwise tree. The ``generic`` build has the AVX-512 build's
layout (one 64-byte part per vector) without its intrinsics, so it stands in for it on machines
without AVX-512; ``x86-64-v4`` is at least compiled everywhere and checked for forbidden
instructions. Builds go to the per-user cache (first run: ~30 s of compiling, later runs: none).

The build lock must never hang a later run: a holder killed with SIGKILL releases it (flock), and a
live holder makes a waiter say so and give up after its timeout.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.engine import fused, fused_build
from mtlmech.engine.nets import NetSpec, init_params
from mtlmech.engine.training import TrainSpec, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fused import SHAPES, mixed_weights, problem  # noqa: E402

X86 = platform.machine() in ("x86_64", "AMD64")
NATIVE = ("-march=native", "-mtune=native")


def _builds() -> dict[str, tuple[str, tuple[str, ...]]]:
    runnable = fused_build.runnable_targets()
    out = {t: (t, ()) for t in runnable}
    if "x86-64-v3" in runnable:
        out["x86-64-v3 -march=native"] = ("x86-64-v3", NATIVE)
    return out


@pytest.fixture(scope="module")
def builds() -> dict:
    """Every build this machine runs, loaded (compiled into the per-user cache if not there yet)."""
    if fused_build.compiler() is None:
        pytest.skip("no C++ compiler")
    wanted = _builds()
    with ThreadPoolExecutor(2) as pool:
        paths = dict(zip(wanted, pool.map(lambda te: fused_build.ensure_built(fused._SOURCE, te[0], extra=te[1]),
                                          wanted.values())))
    return {name: fused._open(path) for name, path in paths.items()}


def _run(lib, name: str, dtype: torch.dtype):
    d, h, k, n, n_halt, every, metric = SHAPES[name]
    big = name in ("peaks", "controls_wide")
    members, epochs = (2, 12) if big else (4, 60)
    spec = NetSpec(n_inputs=d, n_outputs=k, hidden=(h,))
    data, halt, test = problem(d, h, k, n, n_halt, members, 7, dtype)
    # rates up to 16: saturated hidden units, subnormal deltas (flushed), a diverging member or two
    ts = TrainSpec(epochs=epochs, lr=0.5, eval_every=every // 2 or 1, halt_metric=metric, weight_decay=1e-4,
                   patience=3, record_curves=True)
    with fused.using(lib):
        return train(spec, init_params(spec, [(name, s) for s in range(members)], dtype=dtype), data, train_spec=ts,
                     task_weights=mixed_weights(members, k), halt=halt, test=test,
                     lr=torch.logspace(-1, 1.2, members), backend="fused")


def _assert_bitwise(a, b, what):
    for x, y in zip(a.final + a.task_snapshots + a.shared_snapshot, b.final + b.task_snapshots + b.shared_snapshot):
        assert torch.equal(x.nan_to_num(7.0), y.nan_to_num(7.0)), f"{what}: weights differ"
    for field in ("best_halt", "shared_best_halt", "train_loss_curve", "halt_curve", "test_curve"):
        assert torch.equal(getattr(a, field).nan_to_num(7.0), getattr(b, field).nan_to_num(7.0)), f"{what}: {field}"
    for field in ("best_epoch", "shared_best_epoch", "stop_epoch", "diverged", "diverged_epoch"):
        assert torch.equal(getattr(a, field), getattr(b, field)), f"{what}: {field}"
    assert a.stopped_by == b.stopped_by, what


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_build_gives_bitwise_the_same_numbers_on_every_experiment_shape(builds, name):
    assert len(builds) >= 2
    for dtype in (torch.float32, torch.float64):
        results = {b: _run(lib, name, dtype) for b, lib in builds.items()}
        first, *others = results
        for other in others:
            _assert_bitwise(results[first], results[other], f"{name} {dtype}: {first} vs {other}")


def _tree(v: np.ndarray) -> np.ndarray:
    """The declared lane-sum tree, in v's dtype: lanes (l, l + L/2), then (l, l + L/4), ... (l, l + 1)."""
    while v.shape[-1] > 1:
        half = v.shape[-1] // 2
        v = v[..., :half] + v[..., half:]
    return v[..., 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lane_sums_are_the_declared_tree_on_every_build(builds, dtype):
    rng = np.random.default_rng(3)
    lanes = 64 // np.dtype(dtype).itemsize
    for count in (1, 2, 4, 8, 16):
        # magnitudes spread over 2^±20, so any other order of additions would round differently
        v = (rng.standard_normal((count, lanes)) * 2.0 ** rng.integers(-20, 20, (count, lanes))).astype(dtype)
        expected = _tree(v)
        for name, lib in builds.items():
            out = np.zeros(count, dtype)
            fn = lib.mtl_lane_sums_f32 if dtype == np.float32 else lib.mtl_lane_sums_f64
            fn(v.ctypes.data, count, out.ctypes.data)
            assert np.array_equal(out.view(np.uint64 if dtype == np.float64 else np.uint32),
                                  expected.view(np.uint64 if dtype == np.float64 else np.uint32)), (name, count)


def test_activations_are_bitwise_the_same_on_every_build(builds):
    rng = np.random.default_rng(4)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, 88.0, -88.0, 87.5, 200.0, -200.0, 0.625,
               -0.625, 0.62499994, 1e30, -1e30]
    for dtype in (np.float32, np.float64):
        x = np.concatenate([special, rng.standard_normal(4000) * 10, np.linspace(-100, 100, 4003)]).astype(dtype)
        x = np.concatenate([x, np.zeros(-len(x) % 16, dtype)])
        for kind in (0, 1):
            outs = {}
            for name, lib in builds.items():
                buf = x.copy()
                fn = lib.mtl_activate_f32 if dtype == np.float32 else lib.mtl_activate_f64
                fn(buf.ctypes.data, len(buf), kind, 1)
                outs[name] = buf.view(np.uint32 if dtype == np.float32 else np.uint64)
            first, *others = outs
            for other in others:
                assert np.array_equal(outs[first], outs[other]), (dtype, kind, first, other)


def test_float64_activations_are_accurate():
    """float64 uses the kernel's own exp/tanh (not libm): within a few ulps of the exact values."""
    x = torch.linspace(-40, 40, 200003, dtype=torch.float64)
    lib = fused._library()[0]
    for kind, exact in ((0, torch.sigmoid), (1, torch.tanh)):
        buf = np.concatenate([x.numpy(), np.zeros(-len(x) % 8)])
        lib.mtl_activate_f64(buf.ctypes.data, len(buf), kind, 1)
        assert np.abs(buf[:len(x)] - exact(x).numpy()).max() < 5e-16, kind


FORBIDDEN = re.compile(r"\b(v?rcp\w*|v?rsqrt\w*|vscalef\w*|vgetexp\w*|vexp2\w*|vrcp28\w*|vrsqrt28\w*)\b")
LIBM = re.compile(r"\b(exp|expf|exp2|exp2f|log|logf|tanh|tanhf|pow|powf|expm1|expm1f|log1p|log1pf)(@|\b)")


@pytest.mark.skipif(not X86, reason="x86-64 targets")
def test_every_target_compiles_without_estimates_or_libm(builds):
    """Also the AVX-512 build where this CPU cannot run it: no reciprocal / rsqrt estimates, no
    vscalefps / vgetexp, no libm exp/log/tanh calls (the kernel has its own) in any build."""
    import shutil
    if not shutil.which("objdump") or not shutil.which("nm"):
        pytest.skip("binutils not installed")
    paths = [Path(lib.path) for lib in builds.values()]
    if "x86-64-v4" not in builds:
        paths.append(fused_build.ensure_built(fused._SOURCE, "x86-64-v4"))
    for path in paths:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
                             check=True).stdout
        assert not FORBIDDEN.search(asm), (path.name, FORBIDDEN.search(asm).group(0))
        undefined = subprocess.run(["nm", "-D", "--undefined-only", str(path)], capture_output=True, text=True,
                                   check=True).stdout
        assert not LIBM.search(undefined), (path.name, LIBM.search(undefined).group(0))
    v4 = next(p for p in paths if ".x86-64-v4." in p.name or p.name.endswith("x86-64-v4.so"))
    assert "zmm" in subprocess.run(["objdump", "-d", str(v4)], capture_output=True, text=True).stdout


def test_stale_installed_build_is_not_used(builds, tmp_path):
    """An installed file built from another source or with other flags (an edited source under an
    editable install) is ignored; a matching one is used."""
    if "x86-64-v3" not in builds:
        pytest.skip("needs x86-64-v3")
    for build, usable in (("generic", False), ("x86-64-v3", True)):   # one folder each: a loaded file stays mapped
        (tmp_path / build).mkdir()
        (tmp_path / build / fused_build.library_name("x86-64-v3")).write_bytes(Path(builds[build].path).read_bytes())
        assert (fused._installed("x86-64-v3", tmp_path / build) is not None) == usable, build


TINY = 'extern "C" int mtl_tiny() { return 7; }\n'
HOLD = textwrap.dedent("""
    import fcntl, sys, time
    fh = open(sys.argv[1], "a")
    fcntl.flock(fh, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(600)
""")


def _holder(lock: Path) -> subprocess.Popen:
    lock.parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


@pytest.mark.skipif(fused_build.compiler() is None, reason="no C++ compiler")
def test_a_killed_build_lock_holder_does_not_hang_the_next_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTLMECH_CACHE_DIR", str(tmp_path))
    source = tmp_path / "tiny.cpp"
    source.write_text(TINY)
    lock = fused_build.cache_path(source, "generic").with_suffix(".lock")
    child = _holder(lock)
    child.kill()   # SIGKILL while holding the lock (as a killed build would)
    child.wait()
    start = time.monotonic()
    out = fused_build.ensure_built(source, "generic", timeout=20)
    assert out.exists() and time.monotonic() - start < 20
    assert "compiling the fused kernel" in capsys.readouterr().err


@pytest.mark.skipif(fused_build.compiler() is None, reason="no C++ compiler")
def test_a_live_build_lock_holder_makes_the_waiter_say_so_and_give_up(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTLMECH_CACHE_DIR", str(tmp_path))
    source = tmp_path / "tiny.cpp"
    source.write_text(TINY)
    child = _holder(fused_build.cache_path(source, "generic").with_suffix(".lock"))
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            fused_build.ensure_built(source, "generic", timeout=1)
        assert time.monotonic() - start < 10
        assert "waiting for another process that is compiling the fused kernel" in capsys.readouterr().err
    finally:
        child.kill()
        child.wait()


def test_arithmetic_and_provenance_name_the_kernel():
    from mtlmech.pipeline.provenance import provenance
    a = fused.arithmetic()
    assert a["arithmetic"] == fused.ARITHMETIC == "fused-v4" and a["target"] in fused_build.TARGET_FLAGS
    assert a["compiler"] and a["flags"] and "-ffp-contract=off" in a["flags"] and a["cpu"]
    p = provenance(config={}, device="cpu", seeds=[0], wall_seconds=1.0)
    assert p["fused_kernel"]["arithmetic"] == "fused-v4" and p["cpu_model"] == a["cpu"]
    assert p["torch_blas"] and "numpy_blas" in p
