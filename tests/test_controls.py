"""Controls (experiments/controls.py, mtlmech/controls.py): the shuffle, the lr multiplier, stuck runs."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.controls import scaled_layer_lr, shuffle_rows, shuffled_targets, stuck_runs
from mtlmech.nets import NetSpec, init_params
from mtlmech.protocol import Condition, train_conditions
from mtlmech.tasks import Splits, make_problem
from mtlmech.training import Batch, TrainSpec, train

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import controls  # noqa: E402


def test_shuffle_keeps_marginals_and_breaks_pairing():
    p = make_problem("hint_pair")
    s = p.splits(np.random.default_rng(0), n_train=400, n_halt=200, n_test=100)
    out = shuffled_targets(p, ["hint"])(s, np.random.default_rng(1))
    k, main = p.task_index("hint"), p.task_index("main")
    for name in ("train", "halt"):
        before, after = getattr(s, name), getattr(out, name)
        assert sorted(after.y[:, k]) == sorted(before.y[:, k])                   # marginal kept
        assert np.mean(after.y[:, k] == before.y[:, k]) < 0.8                     # pairing broken
        hint_of_inputs = p.tasks[k].target(before.z)                               # the hint is a function of z
        assert abs(np.mean(after.y_clean[:, k] == hint_of_inputs) - 0.5) < 0.1   # ≈ chance after the shuffle
        np.testing.assert_array_equal(after.y[:, main], before.y[:, main])        # other tasks untouched
        np.testing.assert_array_equal(after.x, before.x)
    assert out.test is s.test


def test_shuffle_moves_target_mask_and_clean_together():
    p = make_problem("hint_pair")
    d = p.sample(np.random.default_rng(0), 50)
    d.mask[:, 1] = np.arange(50) % 2
    out = shuffle_rows(d, [1], np.random.default_rng(3))
    pairs = lambda data: sorted(zip(data.y[:, 1], data.y_clean[:, 1], data.mask[:, 1]))
    assert pairs(out) == pairs(d)                                  # a row's label, clean label and mask move together
    assert not np.array_equal(out.mask[:, 1], d.mask[:, 1])
    assert shuffle_rows(d, [1], np.random.default_rng(3)).y.tolist() == out.y.tolist()   # same rng, same shuffle


def test_shuffle_rejects_bad_arguments():
    p = make_problem("hint_pair")
    with pytest.raises(ValueError):
        shuffled_targets(p, [])
    with pytest.raises(ValueError):
        shuffled_targets(p, ["hint"], splits=("train", "nope"))


def test_layer_lr_multiplier_changes_only_the_named_layer():
    assert scaled_layer_lr(2, 0, 4) == (4.0, 1.0)
    with pytest.raises(ValueError):
        scaled_layer_lr(2, 2, 4)
    spec = NetSpec(n_inputs=3, n_outputs=2, hidden=(4,))
    params = init_params(spec, [("t", 0), ("t", 0)])
    g = torch.Generator().manual_seed(0)
    data = Batch(x=torch.rand(8, 3, generator=g), y=(torch.rand(8, 2, generator=g) > 0.5).float(), mask=torch.ones(8, 2))
    r = train(spec, params, data, train_spec=TrainSpec(epochs=1, lr=0.3, momentum=0.0),
              task_weights=torch.ones(2, 2), layer_lr=[scaled_layer_lr(2, 0, 1.0), scaled_layer_lr(2, 0, 3.0)])
    step = [f - p for f, p in zip(r.final, params)]
    for i in (0, 1):   # input→hidden weights and biases: three times the step
        torch.testing.assert_close(step[i][1], 3 * step[i][0])
    for i in (2, 3):   # hidden→output: unchanged
        torch.testing.assert_close(step[i][1], step[i][0])


def test_stuck_runs_on_hand_built_curves():
    curves = np.array([[0.5, 0.1, 0.0, 0.1], [0.5, 0.2, 0.1, 0.1], [0.3, 0.3, 0.3, 0.0]])
    assert stuck_runs(curves).tolist() == [False, True, False]
    assert stuck_runs(curves, tol=0.1).tolist() == [False, False, False]
    assert stuck_runs(np.array([0.0, 0.02, np.nan])).tolist() == [False, True, True]   # nan = never reached
    with pytest.raises(ValueError):
        stuck_runs(np.zeros((2, 2, 2)))


def test_noise_output_labels_are_coin_flips():
    p = make_problem("noise_output", base="hint_pair")
    d = p.sample(np.random.default_rng(0), 4000)
    k = p.task_index("NOISE")
    assert abs(d.y[:, k].mean() - 0.5) < 0.03
    assert abs(np.corrcoef(d.y[:, k], d.x[:, 0])[0, 1]) < 0.05


def test_shuffled_condition_trains_on_shuffled_rows():
    cfg = controls.Config(n_train=32, n_halt=16, n_test=16, epochs=3, stl_sizes=(2, 16), mtl_sizes=(16, 64))
    conds = controls.conditions(cfg, "hint", cfg.hidden)
    assert {"STL", "STL+NOISE", "MTL", "MTL-shuffled"} == {c.name for c in conds}
    p = controls.problem(cfg, "hint")
    tr = train_conditions(p, conds, [0], key=("t",), n_train=32, n_halt=16, n_test=16, net=dict(hidden=(4,)),
                          train_spec=TrainSpec(epochs=2))
    by = {c.name: s for (_, c), s in zip(tr.members, tr.splits)}
    k, main = p.task_index("hint"), p.task_index("main")
    assert not np.array_equal(by["MTL-shuffled"].train.y[:, k], by["MTL"].train.y[:, k])
    np.testing.assert_array_equal(by["MTL-shuffled"].train.y[:, main], by["MTL"].train.y[:, main])


def test_config_validation():
    with pytest.raises(ValueError):
        controls.Config(mtl_sizes=(4, 16, 64))       # no MTL net larger than all STL nets combined
    with pytest.raises(ValueError):
        controls.Config(lr_factors=(2.0, 8.0))       # must include × number of tasks
