"""Overfitting (experiments/overfitting.py): snapshot logic on hand-built curves, loss weights."""

import numpy as np
import pytest
import torch

from mtlmech.engine.training import TrainSpec
from mtlmech.measures.diagnostics import snapshot_metric
from mtlmech.problems.tasks import make_problem
from mtlmech.protocol import Condition, score_rows, train_conditions


def test_snapshot_metric_per_task_and_shared():
    halt = np.array([[[0.5, 0.2], [0.3, 0.4], [0.1, 0.6], [0.2, 0.7]]])      # (1, 4 epochs, 2 tasks)
    test = np.arange(8, dtype=float).reshape(1, 4, 2)
    v, idx = snapshot_metric(halt, test, np.array([[True, True]]), "per_task")
    assert idx.tolist() == [[2, 0]] and v.tolist() == [[4.0, 1.0]]
    # mean halt over both tasks: 0.35, 0.35, 0.35, 0.45 -> first minimum, epoch 0
    v, idx = snapshot_metric(halt, test, np.array([[True, True]]), "shared")
    assert idx.tolist() == [[0, 0]] and v.tolist() == [[0.0, 1.0]]
    # only task 0 trained: the shared point is task 0's own best
    v, idx = snapshot_metric(halt, test, np.array([[True, False]]), "shared")
    assert idx.tolist() == [[2, 2]] and v.tolist() == [[4.0, 5.0]]
    with pytest.raises(ValueError):
        snapshot_metric(halt, test, np.array([[True, True]]), "final")


def test_snapshot_metric_matches_the_trainer():
    p = make_problem("early_late")
    conds = [Condition("STL", ("main",)), Condition("MTL", ("main", "extra"))]
    tr = train_conditions(p, conds, [0, 1], key=("t",), n_train=48, n_halt=32, n_test=64, net=dict(hidden=(6,)),
                          train_spec=TrainSpec(epochs=40, lr=0.5, record_curves=True))
    r = tr.result
    trained = (torch.tensor([[c.weight_of(t) for t in p.task_names] for _, c in tr.members]) > 0).numpy()
    for stopping in ("per_task", "shared"):
        v, idx = snapshot_metric(r.halt_curve.numpy(), r.test_curve.numpy(), trained, stopping)
        rows = score_rows(tr, stopping=stopping)
        for i, (seed, c) in enumerate(tr.members):
            for row in (x for x in rows[seed]["rows"] if x["condition"] == c.name):
                k = p.task_index(row["task"])
                assert row["best_epoch"] == r.curve_epochs[idx[i, k]]
                assert row["test_mse"] == pytest.approx(v[i, k], rel=1e-5)


def test_loss_weight_scales_that_output_only():
    p = make_problem("early_late")
    conds = [Condition("MTL", ("main", "extra")), Condition("MTL-w", ("main", "extra"), loss_weight={"extra": 0.25})]
    assert conds[1].weight_of("extra") == 0.25 and conds[1].weight_of("main") == 1.0 and conds[0].weight_of("x") == 0.0
    tr = train_conditions(p, conds, [0], key=("t",), n_train=32, n_halt=16, n_test=16, net=dict(hidden=(5,)),
                          train_spec=TrainSpec(epochs=1, lr=0.5, momentum=0.0))
    from mtlmech.engine.nets import init_params
    start = init_params(tr.result.spec, [("t", 0), ("t", 0)])
    w_step = tr.result.final[2] - start[2]                     # hidden→output weights (B, H, K)
    torch.testing.assert_close(w_step[1][:, 1], 0.25 * w_step[0][:, 1])
    torch.testing.assert_close(w_step[1][:, 0], w_step[0][:, 0])
    with pytest.raises(ValueError):
        train_conditions(p, [Condition("bad", ("main",), loss_weight={"extra": 0.5})], [0], key=("t",), n_train=8,
                         n_halt=8, n_test=8, net=dict(hidden=(2,)), train_spec=TrainSpec(epochs=1))


def test_early_late_problem():
    p = make_problem("early_late")
    d = p.sample(np.random.default_rng(0), 5000, noisy=True)
    assert abs(np.mean(d.y[:, 1] != d.y_clean[:, 1]) - 0.4) < 0.03
    with pytest.raises(ValueError):
        make_problem("early_late", extra_bit=1)


# --- experiments/overfitting.py (version 2): the window rise and a tiny end-to-end run ---------------------
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import overfitting  # noqa: E402


def test_window_rise_on_hand_built_curves():
    epochs = np.arange(10, 110, 10)                                   # checks at 10..100
    curve = np.array([0.5, 0.3, 0.2, 0.25, 0.3, 0.35, 0.4, np.nan, np.nan, np.nan])
    at, rise, cut = overfitting.window_rise(curve, epochs, 30, 30)      # best at 30, window to 60
    assert (at, round(rise, 10), cut) == (0.2, 0.15, False)
    at, rise, cut = overfitting.window_rise(curve, epochs, 30, 60)      # window to 90: stopped at 70
    assert round(rise, 10) == 0.2 and cut
    assert np.isnan(overfitting.window_rise(np.full(10, np.nan), epochs, 30, 30)[1])
    assert np.isnan(overfitting.window_rise(curve, epochs, 0, 30)[1])   # never improved
    assert overfitting.aligned(curve, epochs, 30, 20, 10) == [0.5, 0.3, 0.2, 0.25, 0.3]
    assert overfitting.aligned(curve, epochs, 70, 20, 20) == [0.3, 0.4, None]


def test_run_seeds_rows_and_window():
    cfg = overfitting.Config(n_halt=32, n_test=64, of1_n_train=24, of2_n_train=24,
                             train=TrainSpec(lr=0.5, epochs=300, eval_every=5, patience=6, lr_grid=(1.0, 4.0),
                                             record_curves=True))
    assert cfg.window == 30
    for part, conds in (("OF1", {"STL", "MTL"}), ("OF2", {"STL", "MTL", "MTL-w"})):
        out = overfitting.run_seeds([0, 1], cfg=cfg, part=part, key=("t", part), device="cpu")
        for seed in (0, 1):
            rows = [r for r in out[seed]["rows"] if r["stopping"] == "per_task"]
            assert {r["condition"] for r in rows} == conds
            for r in rows:
                assert r["lr"] in (0.5, 2.0) and r["stopped_by"] in ("patience", "cap", "diverged")
                if r["stopped_by"] == "patience" and part == "OF1":   # min_delta 0: the whole window is recorded
                    assert not r["window_cut"] and r["stop_epoch"] >= r["curve_best_epoch"] + cfg.window
                assert r["oracle_min_test_mse"] <= r["test_mse_at_best"] + 1e-9
            if part == "OF2":
                assert all(r["extra_best_epoch"] > 0 for r in rows if r["condition"] != "STL")
    with pytest.raises(ValueError):
        overfitting.Config(train=TrainSpec(patience=None, record_curves=True))
    with pytest.raises(ValueError):
        overfitting.Config(of2_extra_weight=1.0)
