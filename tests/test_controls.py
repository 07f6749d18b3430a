"""Controls (experiments/controls.py, mtlmech/measures/diagnostics.py): the shuffle, the lr multiplier, stuck runs,
live units, gradient norms, the per-seed width choice and the decay range."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mtlmech.engine.nets import NetConfig, NetSpec, init_params
from mtlmech.engine.training import Batch, TrainSpec, train
from mtlmech.measures.diagnostics import (
    gradient_norm,
    live_units,
    masked_spearman,
    ratio_of_means_ci,
    scaled_layer_lr,
    shuffle_rows,
    shuffled_targets,
    stuck_runs,
)
from mtlmech.problems.tasks import make_problem
from mtlmech.protocol import train_conditions

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
    pairs = lambda data: sorted(zip(data.y[:, 1], data.y_clean[:, 1], data.mask[:, 1]))  # noqa: E731
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
    p = make_problem("noise_output", base="eavesdropping", route="hint")
    d = p.sample(np.random.default_rng(0), 4000)
    k = p.task_index("NOISE")
    assert p.task_names == ["T", "T'", "NOISE"]
    assert abs(d.y[:, k].mean() - 0.5) < 0.03
    assert abs(np.corrcoef(d.y[:, k], d.x[:, 0])[0, 1]) < 0.05


def tiny_net():
    """One member, 2 inputs → 3 hidden → 2 outputs: unit 0 normal, unit 1 has no outgoing weight,
    unit 2 is saturated (constant over the inputs)."""
    spec = NetSpec(n_inputs=2, n_outputs=2, hidden=(3,))
    w1 = torch.tensor([[[2.0, 1.0, 0.0], [-1.0, 1.0, 0.0]]])
    b1 = torch.tensor([[0.0, 0.0, 50.0]])
    w2 = torch.tensor([[[1.0, -2.0], [0.0, 0.0], [3.0, 1.0]]])
    b2 = torch.zeros(1, 2)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    return spec, [w1, b1, w2, b2], x


def test_live_units_drop_silent_and_constant_units():
    spec, params, x = tiny_net()
    assert live_units(spec, params, x).tolist() == [[True, False, False]]
    params[2][0, 1] = torch.tensor([0.5, 0.5])                  # unit 1 now feeds the outputs
    assert live_units(spec, params, x).tolist() == [[True, True, False]]


def test_masked_spearman_uses_only_kept_units():
    a = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    b = np.array([[1.0, 2.0, 3.0, 4.0, -100.0], [4.0, 3.0, 2.0, 1.0, 0.0]])
    keep = np.array([[True, True, True, True, False], [True, True, False, False, False]])
    out = masked_spearman(a, b, keep)
    assert out[0] == pytest.approx(1.0)          # the dead unit (5th) would have made it negative
    assert np.isnan(out[1])                      # fewer than 3 live units
    assert masked_spearman(a, b, np.ones_like(keep))[1] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        masked_spearman(a, b[:, :3], keep)


def test_gradient_norm_matches_autograd():
    spec, params, x = tiny_net()
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    got = gradient_norm(spec, params, x, y, np.array([[1.0, 0.0]]))[0]
    leaves = [p.clone().requires_grad_(True) for p in params]
    h = torch.sigmoid(x @ leaves[0][0] + leaves[1][0])
    out = torch.sigmoid(h @ leaves[2][0] + leaves[3][0])
    loss = (0.5 * (out[:, 0] - y[:, 0]) ** 2).mean()           # task 1 only, mean over rows
    grads = torch.autograd.grad(loss, leaves)
    want = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    assert got == pytest.approx(want, rel=1e-5)
    assert gradient_norm(spec, params, x, y, np.array([[0.0, 1.0]]))[0] != pytest.approx(want, rel=1e-3)


def test_ratio_of_means_ci():
    num = np.array([1.0, 2.0, 3.0, 2.0])
    den = np.array([2.0, 4.0, 6.0, 4.0])
    r, lo, hi = ratio_of_means_ci(num, den)
    assert r == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    den = rng.normal(1.0, 0.3, 400)
    r, lo, hi = ratio_of_means_ci(0.7 * den + rng.normal(0, 0.1, 400), den)
    assert lo < 0.7 < hi and hi - lo < 0.1


def test_conditions_of_each_part():
    cfg = controls.Config()
    c93 = {c.name: c for c in controls.conditions(cfg, "c93", 16)}
    assert set(c93) == {"STL", "STL+NOISE", "MTL", "MTL-shuffled", "BLK", "BLK-shuffled", "STL-hid×4", "STL-hid"}
    assert c93["STL-hid"].hidden_lr_grid == cfg.hidden_lr_grid and c93["STL-hid×4"].hidden_lr_grid == (4.0,)
    assert c93["MTL"].tasks == ("Task1", "Task2", "Task3", "Task4") and c93["BLK"].tasks == ("Task1", "Task2")
    assert {c.name for c in controls.conditions(cfg, "width", 256)} == {"MTL-h256"}
    assert {c.name for c in controls.conditions(cfg, "width", 8)} == {"STL-h8"}
    assert {c.name for c in controls.conditions(cfg, "over", 256)} == {"STL", "STL+NOISE"}
    stuck = controls.conditions(cfg, "stuck", 4 * cfg.stuck_hidden)
    assert [(c.name, c.lr, c.lr_grid) for c in stuck] == [("STL-wide", cfg.stuck_lr[1], (1.0,)),
                                                          ("MTL", cfg.stuck_lr[2], (1.0,))]
    assert [c.name for c in controls.conditions(cfg, "stuck", cfg.stuck_hidden)] == ["STL"]
    assert ("width", 256) in controls.units_of(cfg) and ("width", 16) not in controls.units_of(cfg)


def test_shuffled_condition_trains_on_shuffled_rows():
    cfg = controls.Config()
    conds = controls.conditions(cfg, "hint", 16)
    assert {"STL", "STL+NOISE", "MTL", "MTL-shuffled"} == {c.name for c in conds}
    p = controls.problem(cfg, "hint")
    tr = train_conditions(p, conds, [0], key=("t",), n_train=32, n_halt=16, n_test=16, net=NetConfig(hidden=(4,)),
                          train_spec=TrainSpec(epochs=2))
    by = {c.name: s for (_, c), s in zip(tr.members, tr.splits)}
    k, main = p.task_index("T"), p.task_index("T'")
    assert not np.array_equal(by["MTL-shuffled"].train.y[:, k], by["MTL"].train.y[:, k])
    np.testing.assert_array_equal(by["MTL-shuffled"].train.y[:, main], by["MTL"].train.y[:, main])


def test_best_stl_width_is_chosen_per_seed_on_halt():
    cfg = controls.Config(stl_sizes=(2, 16, 32), mtl_sizes=(16, 64))
    rows = []
    for seed, halts in ((0, {2: 0.3, 16: 0.1, 32: 0.2}), (1, {2: 0.05, 16: 0.05, 32: 0.3})):
        for h, halt in halts.items():
            part, cond = ("c93", "STL") if h == 16 else ("width", f"STL-h{h}")
            rows.append(dict(part=part, task="Task1", seed=seed, hidden=h, condition=cond, halt_best=halt,
                             test_error=h / 1000))
        rows.append(dict(part="c93", task="Task1", seed=seed, hidden=16, condition="MTL", halt_best=0.0, test_error=0.0))
        rows.append(dict(part="c93", task="Task1", seed=seed, hidden=16, condition="STL-hid", halt_best=0.0, test_error=0.0))
    df = controls.with_best_stl(pd.DataFrame(rows), cfg)
    best = df[df["condition"] == "STL-best"].set_index("seed")["hidden"]
    assert best.to_dict() == {0: 16, 1: 2}                          # lowest halt; the tie goes to the smaller width
    assert {"STL-h16", "MTL-h16", "STL-h2", "STL-h32", "STL-best"} == set(df["condition"])   # STL-hid left out


def test_useful_decays_stop_at_the_first_harmful_decay():
    cfg = controls.Config(decays=(0.0, 1e-4, 1e-3, 1e-2), decay_tolerance=0.002)
    dec = pd.DataFrame({"weight_decay": [0.0, 1e-4, 1e-3, 1e-2] * 2,
                        "halt_best": [0.20, 0.199, 0.203, 0.25, 0.20, 0.201, 0.203, 0.25]})
    assert controls.useful_decays(dec, cfg) == [0.0, 1e-4]
    assert controls.useful_decays(dec, controls.Config(decays=cfg.decays, decay_tolerance=0.01)) == [0.0, 1e-4, 1e-3]


def test_equivalence_claim_uses_the_margin():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(60):
        base = rng.uniform(0.1, 0.3)
        for cond, shift in (("STL", 0.0), ("MTL-shuffled", rng.normal(0.001, 0.003)), ("MTL", -0.05)):
            rows.append(dict(part="copies", task="T1", seed=seed, condition=cond, test_error=base + shift, diverged=False))
    runs = pd.DataFrame(rows)
    kw = dict(id="CT11a", statement="s", test="t", figure="f.png")
    wide_margin = controls.equivalence_claim(runs, "copies", "MTL-shuffled", "STL", 0.01, **kw)
    narrow = controls.equivalence_claim(runs, "copies", "MTL-shuffled", "STL", 0.0005, **kw)
    assert wide_margin.rule == "equivalence" and wide_margin.margin == (-0.01, 0.01)
    assert wide_margin.p_value < 1e-6 < narrow.p_value
    assert wide_margin.compared == ("MTL-shuffled", "STL") and wide_margin.where == {"part": ["copies"], "task": ["T1"]}


def test_config_validation():
    with pytest.raises(ValueError):
        controls.Config(mtl_sizes=(4, 16, 64))       # no MTL net larger than all STL nets combined
    with pytest.raises(ValueError):
        controls.Config(hidden_lr_grid=(1.0, 2.0, 8.0))   # must include × number of tasks
    with pytest.raises(ValueError):
        controls.Config(parts=("copies", "nope"))
    with pytest.raises(ValueError):
        controls.Config(tost_margin=(0.01, 0.01, 0.01))
