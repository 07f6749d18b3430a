"""CS97 F1 / noisy-feature construction and the STD / STD+IN / STD+OUT wiring."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.inputs import BinaryCode
from mtlmech.protocol import Condition, train_conditions
from mtlmech.tasks import Splits, make_problem
from mtlmech.training import TrainSpec

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


def tiny_cfg():
    return io_exp.Config(n_train=20, n_halt=50, n_test=50, epochs=60, eval_every=1, noisy_trials=2,
                          noisy_hidden=8, noisy_epochs=30, noisy_eval_every=1)


def test_same_rows_for_every_condition():
    cfg = tiny_cfg()
    out, inp = io_exp.problem(cfg, "out"), io_exp.problem(cfg, "in")
    rows = io_exp.draw_rows(out, 3, cfg=cfg, stream="F1")
    a, b = io_exp.splits_on(out, rows), io_exp.splits_on(inp, rows)
    np.testing.assert_array_equal(a.train.x, b.train.x[:, :20])
    np.testing.assert_array_equal(a.test.y[:, 0], b.test.y[:, 0])
    assert not np.array_equal(rows[0], io_exp.draw_rows(out, 4, cfg=cfg, stream="F1")[0])


def test_std_out_early_stopping_ignores_f2():
    """Scrambling F2's halt targets changes F2's stopping epoch but never F1's snapshot; STD's F2 output never trains."""
    cfg = tiny_cfg()
    out = io_exp.problem(cfg, "out")
    rows = {s: io_exp.draw_rows(out, s, cfg=cfg, stream="F1") for s in (0, 1)}

    def scrambled(seed):
        s = io_exp.splits_on(out, rows[seed])
        halt = s.halt
        y = halt.y.copy()
        y[:, 1] = np.random.default_rng(seed).permutation(y[:, 1])
        return Splits(s.train, type(halt)(halt.z, halt.x, y, halt.y_clean, halt.mask, halt.features), s.test)

    conds = [Condition("STD", ("F1",)), Condition("STD+OUT", ("F1", "F2"), report=("F1",))]
    spec = TrainSpec(epochs=60, lr=2.0, momentum=0.9)
    runs = [train_conditions(out, conds, [0, 1], key=("t",), n_train=0, n_halt=0, n_test=0, net=dict(hidden=(8,)),
                             train_spec=spec, splits_for=f)
            for f in (lambda s: io_exp.splits_on(out, rows[s]), scrambled)]
    plain, scr = runs[0].result, runs[1].result
    assert torch.equal(plain.best_epoch[:, 0], scr.best_epoch[:, 0])
    for p, q in zip(plain.task_params(0), scr.task_params(0)):
        assert torch.equal(p, q)
    assert not torch.equal(plain.best_epoch[1::2, 1], scr.best_epoch[1::2, 1])   # STD+OUT's F2 did react
    init = runs[0]
    std = [i for i, (_, c) in enumerate(init.members) if c.name == "STD"]
    from mtlmech.nets import NetSpec, init_params
    p0 = init_params(NetSpec(20, 2, (8,)), [("t", s) for s, _ in init.members])
    assert torch.equal(plain.final[2][std, :, 1], p0[2][std, :, 1])               # STD's F2 weights untouched
    assert torch.equal(p0[0][0], p0[0][1])                                          # STD, STD+OUT: same start


@pytest.mark.slow
def test_run_f1_rows_and_crossing():
    cfg = tiny_cfg()
    rec = io_exp.run_f1([0, 1], cfg=cfg, device="cpu")
    conds = sorted(r["condition"] for r in rec[0]["rows"])
    assert conds == ["STD", "STD+IN", "STD+OUT"] and all(r["task"] == "F1" for r in rec[1]["rows"])
    noisy = io_exp.run_noisy([0, 1, 2], cfg=cfg, noise=1.0, device="cpu")
    assert noisy[2]["rows"] == [] and len(noisy[0]["rows"]) == 2
    scales = np.array([0.0, 1.0, 2.0])
    assert io_exp.crossing(np.array([[-1.0, -0.5, 1.5]]), scales) == pytest.approx(1.25)
    assert np.isnan(io_exp.crossing(np.array([[-1.0, -0.5, -0.1]]), scales))
