"""The fused per-member trainer (mtlmech.engine.fused) against the PyTorch reference trainer.

Every experiment's net shape is trained by both paths from the same initial weights: weights must
agree to 1e-5 in float32. Best epochs, stop epochs, stopping reasons and divergence epochs must be
identical; that is asserted in float64, because in float32 the two paths' halt metrics differ by
rounding (≈ 1e-7) and a genuine near-tie between two evaluation epochs can then go either way.
The fused path must also be bitwise independent of its batch-mates, of its thread count and of
when batch-mates stop, and must fall back (or refuse, with ``backend="fused"``) where it does not apply.
"""

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.engine import fused
from mtlmech.engine.nets import NetSpec, init_params
from mtlmech.engine.training import Batch, TrainSpec, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_trainer  # noqa: E402
from test_trainer import SPEC, make_data  # noqa: E402

# (inputs, hidden, outputs, training rows, halt rows, eval_every, halt metric): the experiments' nets
SHAPES = {name: (*map(int, sizes), metric) for name, *sizes, metric in (line.split() for line in """
    controls                8  16    4   64   128  10  mse
    controls_narrow         8   2    5   64   128  10  mse
    controls_wide           8 256    5   64   128  10  mse
    attribute_selection    68  16    5   60   200  10  mse
    eavesdropping          12  16    2   64   128  10  mse
    inputs_as_outputs      20  64    3   50  1000  25  mse
    inputs_as_outputs_stl  22  64    1   50  1000  25  mse
    overfitting             6   4    4   64    64  10  error
    data_amplification      8  16    2   25   200  10  mse
    representation_bias    10  16    2  128   200  10  mse
    peaks                  60  64  120  500   500  10  mse
    stuck                   5   8    2   24    24  50  mse
    canonical               8  16    4  256   256  10  mse
""".strip().splitlines())}


def problem(d, h, k, n, n_halt, n_members, seed, dtype, *, output="sigmoid", shared_x=False):
    """Binary inputs, targets from a random teacher net plus label noise, masks with gaps."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(d, k, generator=g, dtype=dtype)

    def split(rows):
        x = (torch.rand(n_members, rows, d, generator=g) > 0.5).to(dtype)
        y = ((x - 0.5) @ teacher > 0).to(dtype)
        flip = torch.rand(n_members, rows, k, generator=g) < 0.1
        y = torch.where(flip, 1 - y, y)
        if output == "linear":
            y = y + 0.3 * torch.randn(n_members, rows, k, generator=g, dtype=dtype)
        mask = (torch.rand(n_members, rows, k, generator=g) > 0.15).to(dtype)
        return Batch(x[0] if shared_x else x, y, mask)
    return split(n), split(n_halt), split(n_halt)


def both(spec, keys, data, dtype=torch.float32, **kw):
    out = {}
    for backend in ("fused", "torch"):
        params = init_params(spec, keys, dtype=dtype)
        out[backend] = train(spec, params, data, backend=backend, **kw)
    assert out["fused"].backend == "fused" and out["torch"].backend == "torch"
    return out["fused"], out["torch"]


def assert_same_epochs(a, b):
    assert torch.equal(a.best_epoch, b.best_epoch)
    assert torch.equal(a.shared_best_epoch, b.shared_best_epoch)
    assert torch.equal(a.stop_epoch, b.stop_epoch)
    assert a.stopped_by == b.stopped_by
    assert torch.equal(a.diverged, b.diverged) and torch.equal(a.diverged_epoch, b.diverged_epoch)


def max_diff(xs, ys, rows=slice(None)):
    return max((x[rows] - y[rows]).abs().max().item() for x, y in zip(xs, ys))


def mixed_weights(n_members, k):
    """STL on task 0, STL on task 1 and MTL members, repeating; MTL with a down-weighted task."""
    w = torch.ones(n_members, k)
    for m in range(n_members):
        if m % 3 < 2 and k > 1:
            w[m] = 0
            w[m, m % 3] = 1
        elif k > 1:
            w[m, -1] = 0.5
    return w


@pytest.mark.parametrize("name", list(SHAPES))
def test_fused_matches_reference_on_every_experiment_shape(name):
    d, h, k, n, n_halt, every, metric = SHAPES[name]
    big = name in ("peaks", "controls_wide")
    n_members, epochs = (2, 60) if big else (6, 150)
    spec = NetSpec(n_inputs=d, n_outputs=k, hidden=(h,))
    keys = [(name, s) for s in range(n_members)]
    weights = mixed_weights(n_members, k)
    lr = torch.linspace(0.2, 0.8, n_members)
    for dtype in (torch.float32, torch.float64):
        data, halt, test = problem(d, h, k, n, n_halt, n_members, 1, dtype)
        ts = TrainSpec(epochs=epochs, lr=0.5, eval_every=every, halt_metric=metric, weight_decay=1e-4,
                       patience=None if big else 4, record_curves=True)
        a, b = both(spec, keys, data, dtype, train_spec=ts, task_weights=weights, halt=halt, test=test, lr=lr)
        assert max_diff(a.final, b.final) <= (1e-5 if dtype == torch.float32 else 1e-10), name
        if dtype == torch.float64:
            assert_same_epochs(a, b)
            assert max_diff(a.task_snapshots + a.shared_snapshot, b.task_snapshots + b.shared_snapshot) <= 1e-10
            assert torch.allclose(a.halt_curve, b.halt_curve, atol=1e-10, equal_nan=True)
            assert torch.allclose(a.test_curve, b.test_curve, atol=1e-10, equal_nan=True)
            assert torch.allclose(a.train_loss_curve, b.train_loss_curve, atol=1e-10, equal_nan=True)
            assert a.curve_epochs == b.curve_epochs
        else:  # snapshots where the best epochs agree (float32 near-ties aside)
            same = (a.best_epoch == b.best_epoch).all(dim=1)
            assert same.float().mean() >= 0.5
            assert max_diff(a.task_snapshots, b.task_snapshots, same) <= 1e-5


@pytest.mark.parametrize("variant", ["tanh_linear", "ce_shared_data", "layer_lr_and_decay", "no_halt"])
def test_fused_matches_reference_on_every_feature(variant):
    """Activations, losses, shared data, per-member layer multipliers (0 freezes a layer), decay, no halt set."""
    n_members, dtype = 6, torch.float64
    output = "linear" if variant == "tanh_linear" else "sigmoid"
    spec = NetSpec(n_inputs=8, n_outputs=3, hidden=(12,), activation="tanh" if variant == "tanh_linear" else "sigmoid",
                   output=output)
    data, halt, test = problem(8, 12, 3, 40, 30, n_members, 2, dtype, output=output,
                               shared_x=variant == "ce_shared_data")
    if variant == "ce_shared_data":  # every split shared by all members: (n, d) tensors
        data, halt = (Batch(b.x if b.x.dim() == 2 else b.x[0], b.y[0], b.mask[0]) for b in (data, halt))
    kw = dict(task_weights=mixed_weights(n_members, 3), lr=torch.linspace(0.05, 0.3, n_members),
              halt=None if variant == "no_halt" else halt, test=test)
    ts = dict(epochs=120, lr=0.2, eval_every=3, record_curves=True, loss="ce" if variant == "ce_shared_data" else "mse",
              halt_metric="error" if variant == "ce_shared_data" else "mse")
    if variant == "layer_lr_and_decay":
        kw.update(layer_lr=[[1.0, 2.0], [0.0, 1.0], [3.0, 0.5], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5]],
                  weight_decay=torch.linspace(0, 1e-2, n_members))
        ts.update(patience=3, min_delta=1e-3)
    keys = [(variant, s) for s in range(n_members)]
    a, b = both(spec, keys, data, dtype, train_spec=TrainSpec(**ts), **kw)
    assert_same_epochs(a, b)
    for xs, ys in ((a.final, b.final), (a.task_snapshots, b.task_snapshots), (a.shared_snapshot, b.shared_snapshot)):
        assert max_diff(xs, ys) <= 1e-10
    assert torch.allclose(a.train_loss_curve, b.train_loss_curve, atol=1e-10, equal_nan=True)
    assert torch.allclose(a.test_curve, b.test_curve, atol=1e-10, equal_nan=True)
    if variant == "layer_lr_and_decay":
        init = init_params(spec, keys, dtype=dtype)
        assert torch.equal(a.final[0][1], init[0][1]) and torch.equal(a.final[2][3], init[2][3])  # frozen layers


def test_untrained_outputs_are_skipped_yet_decay_as_in_the_reference():
    """The kernel computes only the outputs a member trains (any subset, in any position); the others
    must still decay, be snapshotted in task order, and (without curves) not be evaluated at all."""
    n_members, k, dtype = 6, 5, torch.float64
    spec = NetSpec(n_inputs=7, n_outputs=k, hidden=(9,))
    data, halt, _ = problem(7, 9, k, 40, 30, n_members, 3, dtype)
    weights = torch.tensor([[0, 0, 0, 0, 1], [0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 1],
                            [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=dtype)
    ts = TrainSpec(epochs=90, lr=0.4, eval_every=3, weight_decay=3e-3, patience=4)
    a, b = both(spec, [("skip", s) for s in range(n_members)], data, dtype, train_spec=ts, task_weights=weights,
                halt=halt)
    assert_same_epochs(a, b)
    for xs, ys in ((a.final, b.final), (a.task_snapshots, b.task_snapshots), (a.shared_snapshot, b.shared_snapshot)):
        assert max_diff(xs, ys) <= 1e-10
    trained = weights > 0
    assert torch.allclose(a.best_halt[trained], b.best_halt[trained], atol=1e-12)
    init = init_params(spec, [("skip", s) for s in range(n_members)], dtype=dtype)
    assert (a.final[2][0, :, :4].abs() < init[2][0, :, :4].abs()).all(), "untrained outputs must decay"


@pytest.mark.parametrize("stopping", ["all_tasks", "per_task"])
def test_stopping_rules_match_reference(stopping):
    """Both stopping rules: v2's (stop when every trained task is stale at once) and the symmetric one
    (each task's snapshot freezes when its own patience runs out): the same best, frozen and stop
    epochs and snapshots as the PyTorch trainer, for STL and MTL members."""
    n_members, k, dtype = 9, 3, torch.float64
    spec = NetSpec(n_inputs=8, n_outputs=k, hidden=(12,))
    data, halt, _ = problem(8, 12, k, 48, 40, n_members, 11, dtype)
    ts = TrainSpec(epochs=400, lr=0.6, eval_every=2, patience=5, stopping=stopping)
    a, b = both(spec, [("stop", s) for s in range(n_members)], data, dtype, train_spec=ts,
                task_weights=mixed_weights(n_members, k), halt=halt, lr=torch.linspace(0.3, 2.0, n_members))
    assert_same_epochs(a, b)
    for xs, ys in ((a.final, b.final), (a.task_snapshots, b.task_snapshots)):
        assert max_diff(xs, ys) <= 1e-10
    if stopping == "per_task":
        assert torch.equal(a.frozen_epoch, b.frozen_epoch)
        mtl = [m for m in range(n_members) if m % 3 == 2]
        froze = a.frozen_epoch[mtl]
        assert (froze[:, :2] > 0).all(), "every trained MTL task freezes before the net stops"
        assert (froze.min(dim=1).values < a.stop_epoch[mtl]).any(), "some task freezes while its net trains on"
    else:
        assert a.frozen_epoch is None and b.frozen_epoch is None


def test_divergence_and_patience_stops_match_reference():
    n = 4
    spec = NetSpec(n_inputs=8, n_outputs=4, hidden=(16,), output="linear")
    data, halt = make_data(n, seed=5), make_data(n, n_rows=48, seed=6)
    data, halt = (Batch(b.x.double(), b.y.double(), b.mask.double()) for b in (data, halt))
    keys = [("div", s) for s in range(n)]
    for patience in (None, 3):
        ts = TrainSpec(epochs=200, lr=0.05, eval_every=2, patience=patience)
        a, b = both(spec, keys, data, torch.float64, train_spec=ts, task_weights=torch.ones(n, 4), halt=halt,
                    lr=torch.tensor([0.05, 1e30, 0.3, 0.05]))
        assert_same_epochs(a, b)
        assert a.diverged.tolist() == [False, True, False, False]
        finite = [0, 2, 3]
        assert max_diff(a.final, b.final, finite) <= 1e-10
    assert a.stopped_by[1] == "diverged" and "patience" in a.stopped_by


def test_fused_result_does_not_depend_on_batch_mates_threads_or_their_stops():
    n = 64
    data, halt = make_data(n), make_data(n, n_rows=48, seed=11)
    keys = [("inv", s) for s in range(n)]
    weights = torch.ones(n, 4)
    weights[::2, 1:] = 0
    lr = torch.linspace(0.05, 2.0, n)   # members stop at very different epochs
    ts = TrainSpec(epochs=300, lr=0.3, weight_decay=1e-3, patience=5, eval_every=2, record_curves=True)

    def run(members, threads=None):
        idx = torch.tensor(members)
        sub, sub_halt = (Batch(b.x[idx], b.y[idx], b.mask[idx]) for b in (data, halt))
        fused.set_threads(threads)
        try:
            return train(SPEC, init_params(SPEC, [keys[i] for i in members]), sub, train_spec=ts,
                         task_weights=weights[idx], halt=sub_halt, lr=lr[idx], backend="fused")
        finally:
            fused.set_threads(None)

    alone = run([5])
    with8 = run(list(range(8)), threads=1)
    with64 = run(list(range(64)), threads=2)
    assert len(set(with64.stop_epoch.tolist())) > 5, "the test needs members that stop at different times"
    for other in (with8, with64):
        for a, b in zip(alone.final + alone.task_snapshots + alone.shared_snapshot,
                        other.final + other.task_snapshots + other.shared_snapshot):
            assert torch.equal(a[0], b[5]), "bitwise equality expected"
        for name in ("best_epoch", "best_halt", "shared_best_epoch", "stop_epoch", "diverged_epoch"):
            assert torch.equal(getattr(alone, name)[0], getattr(other, name)[5]), name
        assert alone.stopped_by[0] == other.stopped_by[5]
        e = alone.halt_curve.shape[1]   # the curves end when the last member stops
        assert torch.equal(alone.halt_curve[0].nan_to_num(-1), other.halt_curve[5, :e].nan_to_num(-1))
        assert other.halt_curve[5, e:].isnan().all()


def test_backend_choice_and_fallback():
    data = make_data(2)
    keys = [("be", s) for s in range(2)]
    w = torch.ones(2, 4)
    ts = TrainSpec(epochs=3)
    assert train(SPEC, init_params(SPEC, keys), data, train_spec=ts, task_weights=w).backend == "fused"
    assert train(SPEC, init_params(SPEC, keys), data, train_spec=ts, task_weights=w, backend="torch").backend == "torch"
    deep = NetSpec(n_inputs=8, n_outputs=4, hidden=(6, 5))
    mini = TrainSpec(epochs=3, batch_size=16)
    for spec, t in ((deep, ts), (SPEC, mini)):
        res = train(spec, init_params(spec, keys), data, train_spec=t, task_weights=w, member_keys=keys)
        assert res.backend == "torch"
        with pytest.raises(ValueError, match="backend='fused' does not apply"):
            train(spec, init_params(spec, keys), data, train_spec=t, task_weights=w, member_keys=keys, backend="fused")
    with pytest.raises(ValueError, match="backend must be one of"):
        train(SPEC, init_params(SPEC, keys), data, train_spec=ts, task_weights=w, backend="numba")
    assert "mini-batches" in fused.unsupported(SPEC, init_params(SPEC, keys), data, mini, w)
    assert "dtype" in fused.unsupported(SPEC, init_params(SPEC, keys, dtype=torch.float64), data, ts, w)


def test_torch_backend_still_matches_plain_pytorch_sgd(monkeypatch):
    """test_trainer's check against a plain per-seed nn.Module + SGD loop (which, through
    ``backend="auto"``, exercises the fused path) repeated on the PyTorch trainer, forced."""
    monkeypatch.setattr(test_trainer, "train", functools.partial(train, backend="torch"))
    test_trainer.test_matches_plain_pytorch_sgd_reference(None)


def test_fast_sigmoid_and_tanh_are_accurate():
    x = torch.linspace(-40, 40, 200001, dtype=torch.float32)
    for act in ("sigmoid", "tanh"):
        z = fused.activate(x.numpy(), act)
        exact = getattr(torch, act)(x.double()).numpy()
        assert np.abs(z - exact).max() < 2e-7, act
    assert np.array_equal(fused.activate(x.numpy(), "linear"), x.numpy())
    z = fused.activate(np.array([np.nan, np.inf, -np.inf], np.float32), "sigmoid")
    assert np.isnan(z[0]) and z[1] == 1 and z[2] < 1e-30


def test_falls_back_visibly_where_the_kernel_cannot_be_built(monkeypatch, capsys):
    why = "the fused kernel could not be built (CalledProcessError: no compiler)"
    monkeypatch.setattr(fused, "_library", lambda: (None, why))
    monkeypatch.setattr(fused, "_announced", set())
    data = make_data(2)
    keys = [("nobuild", s) for s in range(2)]
    res = train(SPEC, init_params(SPEC, keys), data, train_spec=TrainSpec(epochs=3), task_weights=torch.ones(2, 4))
    assert res.backend == "torch"
    assert f"PyTorch trainer (the fused path does not apply: {why})" in capsys.readouterr().err
    with pytest.raises(ValueError, match="could not be built"):
        train(SPEC, init_params(SPEC, keys), data, train_spec=TrainSpec(epochs=3), task_weights=torch.ones(2, 4),
              backend="fused")
