"""Overfitting (experiments/overfitting.py): snapshot logic on hand-built curves, loss weights."""

import numpy as np
import pytest
import torch

from mtlmech.controls import snapshot_metric
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.tasks import make_problem
from mtlmech.training import TrainSpec


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
    from mtlmech.nets import init_params
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
