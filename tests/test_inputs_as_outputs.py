"""CS97 F1 / noisy-feature construction and the STD / STD+IN / STD+OUT wiring."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.engine.nets import NetConfig, NetSpec, init_params
from mtlmech.engine.training import TrainSpec, train
from mtlmech.pipeline.cli import RunContext
from mtlmech.problems.inputs import BinaryCode
from mtlmech.problems.inputs_as_outputs import hide_extra_inputs
from mtlmech.problems.tasks import Splits, as_batch, make_problem
from mtlmech.protocol import train_conditions

spec = importlib.util.spec_from_file_location("io_exp", Path(__file__).parent.parent / "experiments" / "inputs_as_outputs.py")
io_exp = importlib.util.module_from_spec(spec)
sys.modules["io_exp"] = io_exp
spec.loader.exec_module(io_exp)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_f1_f2_generation():
    out, inp = make_problem("inputs_as_outputs", variant="out"), make_problem("inputs_as_outputs", variant="in")
    z = np.array([[-5.0, 5.0], [1.3, -2.2], [4.99, 0.0]])
    d_out, d_in = out.rows_from(z), inp.rows_from(z)
    assert out.task_names == ["F1", "F2"] and inp.task_names == ["F1"]
    np.testing.assert_allclose(d_out.y_clean[:, 0], sigmoid(z[:, 0] + z[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(d_out.y_clean[:, 1], sigmoid(z[:, 0] - z[:, 1]), rtol=1e-6)
    code = BinaryCode(10, -5.0, 5.0)
    assert d_out.x.shape == (3, 20) and d_in.x.shape == (3, 21)
    np.testing.assert_array_equal(d_out.x, code.encode(z).reshape(3, 20))
    np.testing.assert_array_equal(d_in.x[:, :20], d_out.x)
    np.testing.assert_allclose(d_in.x[:, 20], sigmoid(z[:, 0] - z[:, 1]), rtol=1e-6)
    np.testing.assert_array_equal(d_out.x[1, :10], [1, 0, 1, 0, 0, 0, 0, 1, 0, 1])   # A = 1.3: bin 645
    assert np.abs(code.decode(code.encode(z)) - z).max() <= 5 / 1024 + 1e-12


def test_noisy_features():
    zero, ten = (make_problem("inputs_as_outputs", variant="out", extra="EF", noise=s) for s in (0.0, 10.0))
    rng = np.random.default_rng(0)
    z = zero.inputs.sample(rng, 1000)
    assert z.shape == (1000, 4) and np.abs(z[:, 2:]).max() <= 1 and zero.n_inputs == 20
    assert ten.task_names == ["F1", "EF(A)", "EF(B)"]
    y0, y10 = zero.rows_from(z).y_clean, ten.rows_from(z).y_clean
    np.testing.assert_allclose(y0[:, 1], (z[:, 0] + 5) / 10, atol=1e-6)              # s = 0: A itself
    np.testing.assert_allclose(y10[:, 2], (z[:, 1] + 10 * z[:, 3] + 15) / 30, atol=1e-6)
    assert 0 <= y10.min() and y10.max() <= 1
    np.testing.assert_array_equal(zero.rows_from(z).x, ten.rows_from(z).x)          # noise draws are never inputs
    assert make_problem("inputs_as_outputs", variant="in", extra="EF", noise=2.0).n_inputs == 22
    with pytest.raises(ValueError):
        make_problem("inputs_as_outputs", extra="F2", noise=1.0)


def test_both_variant_and_hiding():
    both = make_problem("inputs_as_outputs", variant="both")
    ef = make_problem("inputs_as_outputs", variant="both", extra="EF", noise=2.0)
    assert both.task_names == ["F1", "F2"] and both.n_inputs == 21
    assert ef.task_names == ["F1", "EF(A)", "EF(B)"] and ef.n_inputs == 22
    rng = np.random.default_rng(1)
    s = Splits(*(both.rows_from(both.inputs.sample(rng, 30)) for _ in range(3)))
    np.testing.assert_allclose(s.train.x[:, 20], s.train.y[:, 1])               # F2 is input 21 and output 2
    hidden = hide_extra_inputs(s, n_extra=1)
    signed = hide_extra_inputs(s, n_extra=1, signed=True)
    for a, b, c in zip((s.train, s.halt, s.test), (hidden.train, hidden.halt, hidden.test), (signed.train, signed.halt, signed.test)):
        np.testing.assert_array_equal(b.x[:, :20], a.x[:, :20])
        assert (b.x[:, 20] == 0).all() and (c.x[:, 20] == 0).all() and a.x[:, 20].std() > 0
        np.testing.assert_array_equal(c.x[:, :20], 2 * a.x[:, :20] - 1)
        np.testing.assert_array_equal(b.y, a.y)
    assert (s.train.x[:, 20] != 0).all()                                          # the original is untouched


def tiny_cfg(**kw):
    return io_exp.Config(n_train=20, n_halt=50, n_test=50, net=NetConfig(hidden=(6,)),
                         train=TrainSpec(lr=1.0, momentum=0.9, epochs=60, eval_every=2, patience=5, lr_grid=(0.5, 1.0)),
                         arm_trials=2, noisy_trials=2, noise_scales=(0.0, 1.0), noisy_net=NetConfig(hidden=(8,)),
                         noisy_train=TrainSpec(lr=0.5, epochs=30, eval_every=2, patience=4, lr_grid=(1.0, 2.0)),
                         noisy_rates="grid", **kw)


RUN = RunContext(device="cpu", stream="test", backend="torch")


def test_std_is_exactly_the_20_input_net_from_the_shared_draw():
    """STD inside the shared 21-16-2 shape = a 20-input net started from the same draw's first 20
    input rows and trained on the same rows; STD+IN starts from the very same weights."""
    cfg = tiny_cfg()
    prob = io_exp.problem(cfg)
    rows = io_exp.draw_rows(prob, 0, cfg=cfg, key=("t",))
    conds = io_exp.conditions(prob, "main", cfg)
    spec = TrainSpec(lr=1.0, momentum=0.9, epochs=40, eval_every=40)
    shared = train_conditions(prob, conds, [0], key=("t",), n_train=0, n_halt=0, n_test=0, net=cfg.net,
                              train_spec=spec, splits_for=lambda s: io_exp.splits_on(prob, rows), backend="torch")
    small = make_problem("inputs_as_outputs", variant="out")
    p0 = init_params(NetSpec(21, 2, (6,)), [("t", 0)])
    start = [p0[0][:, :20], p0[1], p0[2], p0[3]]
    data = io_exp.splits_on(small, rows)
    alone = train(NetSpec(20, 2, (6,)), [p.clone() for p in start], as_batch([data.train]), train_spec=spec,
                  task_weights=torch.tensor([[1.0, 0.0]]), backend="torch")
    std = [i for i, (_, c) in enumerate(shared.members) if c.name == "STD"][0]
    torch.testing.assert_close(shared.result.final[0][std, :20], alone.final[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared.result.final[2][std], alone.final[2][0], atol=1e-5, rtol=1e-5)
    assert torch.equal(shared.result.final[0][std, 20], p0[0][0, 20])            # input 21: no gradient
    stdin = [i for i, (_, c) in enumerate(shared.members) if c.name == "STD+IN"][0]
    assert not torch.equal(shared.result.final[0][stdin, 20], p0[0][0, 20])      # STD+IN uses input 21


def test_std_out_early_stopping_ignores_f2():
    """Scrambling F2's halt targets changes F2's stopping epoch but never F1's snapshot; STD's F2 output never trains."""
    cfg = tiny_cfg()
    prob = io_exp.problem(cfg)
    rows = {s: io_exp.draw_rows(prob, s, cfg=cfg, key=("t",)) for s in (0, 1)}

    def scrambled(seed):
        s = io_exp.splits_on(prob, rows[seed])
        halt = s.halt
        y = halt.y.copy()
        y[:, 1] = np.random.default_rng(seed).permutation(y[:, 1])
        return Splits(s.train, type(halt)(halt.z, halt.x, y, halt.y_clean, halt.mask, halt.features), s.test)

    conds = [c for c in io_exp.conditions(prob, "main", cfg) if c.name != "STD+IN"]
    spec = TrainSpec(epochs=60, lr=2.0, momentum=0.9)
    runs = [train_conditions(prob, conds, [0, 1], key=("t",), n_train=0, n_halt=0, n_test=0, net=dict(hidden=(8,)),
                             train_spec=spec, splits_for=f, backend="torch")
            for f in (lambda s: io_exp.splits_on(prob, rows[s]), scrambled)]
    plain, scr = runs[0].result, runs[1].result
    assert torch.equal(plain.best_epoch[:, 0], scr.best_epoch[:, 0])
    for p, q in zip(plain.task_params(0), scr.task_params(0)):
        assert torch.equal(p, q)
    assert not torch.equal(plain.best_epoch[1::2, 1], scr.best_epoch[1::2, 1])   # STD+OUT's F2 did react
    p0 = init_params(NetSpec(21, 2, (8,)), [("t", s) for s, _ in runs[0].members])
    std = [i for i, (_, c) in enumerate(runs[0].members) if c.name == "STD"]
    assert torch.equal(plain.final[2][std, :, 1], p0[2][std, :, 1])               # STD's F2 weights untouched
    assert torch.equal(p0[0][0], p0[0][1])                                          # STD, STD+OUT: same start


def test_arms_share_the_draw_and_scale_it():
    cfg = tiny_cfg(arm_init_scale=4.0, arm_out_weight=0.1)
    prob = io_exp.problem(cfg)
    names = [c.name for c in io_exp.conditions(prob, "arms", cfg)]
    assert names == ["STD ±1 code", "STD+OUT ±1 code", "STD+OUT extra weight 0.1"]
    weighted = io_exp.conditions(prob, "arms", cfg)[2]
    assert weighted.weight_of("F2") == pytest.approx(0.1) and weighted.weight_of("F1") == 1.0
    a = init_params(NetSpec(21, 2, (6,), init_scale=1.0), [("k", 3)])
    b = init_params(NetSpec(21, 2, (6,), init_scale=4.0), [("k", 3)])
    for p, q in zip(a, b):
        torch.testing.assert_close(4 * p, q)
    wide = io_exp.conditions(prob, "wide", cfg)
    assert [c.name for c in wide] == ["STD (wide grid)", "STD+IN (wide grid)", "STD+OUT (wide grid)"]
    assert wide[0].grid(cfg.train.lr_grid) == [(m, 1.0) for m in (0.0625, 0.125, 0.5, 1.0)]
    with pytest.raises(ValueError):
        io_exp.conditions(prob, "nonsense", cfg)


@pytest.mark.slow
def test_units_rows_and_crossing():
    cfg = tiny_cfg()
    rec = io_exp.run_f1([0, 1, 2], cfg=cfg, which="main", run=RUN)
    assert sorted(r["condition"] for r in rec[0]["rows"]) == ["STD", "STD+IN", "STD+OUT"]
    assert all(r["task"] == "F1" and r["lr"] in (0.5, 1.0) for r in rec[1]["rows"])
    arms = io_exp.run_f1([0, 1, 2], cfg=cfg, which="init", run=RUN)
    assert arms[2]["rows"] == [] and {r["condition"] for r in arms[0]["rows"]} == {"STD init ×4", "STD+OUT init ×4"}
    noisy = io_exp.run_noisy([0, 1, 2], cfg=cfg, noise=1.0, rates="grid", run=RUN)
    assert noisy[2]["rows"] == [] and len(noisy[0]["rows"]) == 2
    with pytest.raises(ValueError):
        io_exp.noisy_grid(cfg, "STD+IN", 123.0, "fixed")
    scales = np.array([0.0, 1.0, 2.0])
    assert io_exp.crossing(np.array([[-1.0, -0.5, 1.5]]), scales) == pytest.approx(1.25)
    assert np.isnan(io_exp.crossing(np.array([[-1.0, -0.5, -0.1]]), scales))
