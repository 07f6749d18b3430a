"""Attribute-selection construction and the input-weight-strength measure."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.measures.probes import input_weight_strength
from mtlmech.problems.tasks import make_problem

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))


@pytest.mark.parametrize("related", ["copies", "orthogonal"])
def test_irrelevant_inputs_are_irrelevant(related):
    p = make_problem("attribute_selection", n_irrelevant=16, n_related=4, noise=0.0, related=related)
    rng = np.random.default_rng(0)
    z = p.inputs.sample(rng, 2000)
    base = p.rows_from(z).y_clean
    z2 = z.copy()
    z2[:, 4:] = rng.uniform(-1, 1, size=z2[:, 4:].shape)   # redraw every irrelevant input
    assert np.array_equal(p.rows_from(z2).y_clean, base)
    for i in range(4):                                      # every relevant input matters to T0
        z3 = z.copy()
        z3[:, i] = -z3[:, i]
        assert not np.array_equal(p.rows_from(z3).y_clean[:, 0], base[:, 0])
    assert p.n_inputs == 20


def test_copies_share_f_with_independent_noise():
    p = make_problem("attribute_selection", n_irrelevant=4, n_related=4, noise=0.2, related="copies")
    d = p.sample(np.random.default_rng(3), 30_000)
    assert all(np.array_equal(d.y_clean[:, 0], d.y_clean[:, j]) for j in range(5))
    flips = (d.y != d.y_clean).astype(float)
    assert np.allclose(flips.mean(axis=0), 0.2, atol=0.01)
    c = np.corrcoef(flips.T)
    assert np.abs(c[np.triu_indices(5, 1)]).max() < 0.03


def test_orthogonal_tasks_are_uncorrelated_with_main():
    p = make_problem("attribute_selection", n_irrelevant=0, n_related=4, related="orthogonal")
    d = p.sample(np.random.default_rng(4), 40_000)
    c = np.corrcoef(d.y_clean.T)[0, 1:]
    assert np.abs(c).max() < 0.03


def test_attribute_selection_rejects_bad_params():
    with pytest.raises(ValueError):
        make_problem("attribute_selection", n_related=5)
    with pytest.raises(ValueError):
        make_problem("attribute_selection", related="random")


def test_input_weight_strength_hand_built():
    w = torch.zeros(2, 5, 3)
    w[0, :2] = 2.0      # relevant rows: norm 2·√3; irrelevant rows: norm 1·√3 → ratio 2
    w[0, 2:] = 1.0
    w[1, :2] = 1.0      # member 1: all equal → ratio 1
    w[1, 2:] = 1.0
    ratio = input_weight_strength([w, torch.zeros(2, 3)], relevant=[0, 1])
    assert ratio.tolist() == pytest.approx([2.0, 1.0])
    with pytest.raises(ValueError):
        input_weight_strength([w], relevant=range(5))


def test_ratio_at_loss_interpolates_at_the_first_crossing():
    import attribute_selection as exp
    pts = [(0.20, 1.0), (0.10, 2.0), (0.12, 5.0), (0.05, 3.0)]
    assert exp.ratio_at_loss(pts, 0.15) == pytest.approx(1.5)       # halfway between the first two points
    assert exp.ratio_at_loss(pts, 0.10) == pytest.approx(2.0)
    assert exp.ratio_at_loss(pts, 0.25) == pytest.approx(1.0)       # already below at the first point
    assert np.isnan(exp.ratio_at_loss(pts, 0.01))
    assert exp.checkpoint_epochs(50, 2.0) == [10, 20, 40]


def test_replay_reproduces_the_snapshot_exactly():
    """The matched-loss reading replays a chosen net with the same data, initial weights and rate:
    trained to its T0 snapshot epoch, its weights equal the snapshot weights of the original run."""
    import dataclasses

    import attribute_selection as exp

    from mtlmech.protocol import train_conditions
    cfg = exp.Config(n_irrelevant=(4,), primary_irrelevant=4, n_train=20, n_halt=20, n_test=20,
                     net=exp.NetConfig(hidden=(4,)), train=exp.TrainSpec(lr=0.5, momentum=0.9, epochs=200, eval_every=10,
                                                                           patience=5, min_delta=1e-3, lr_grid=(0.5, 2.0)))
    problem = exp.problem_for(cfg, 4)
    conds = exp.conditions(problem)[:2]
    key = ("test-replay", 1)
    tr = train_conditions(problem, conds, [0, 1], key=key, n_train=20, n_halt=20, n_test=20, net=cfg.net,
                          train_spec=cfg.train)
    for i, (seed, c) in enumerate(tr.members):
        epoch = int(tr.result.best_epoch[i, 0])
        again = train_conditions(problem, [dataclasses.replace(c, lr_grid=(tr.choices[i]["lr_mult"],))], [seed], key=key,
                                 n_train=20, n_halt=20, n_test=20, net=cfg.net,
                                 train_spec=dataclasses.replace(cfg.train, epochs=epoch, patience=None))
        for snap, final in zip(tr.result.task_params(0), again.result.final):
            assert torch.allclose(snap[i], final[0], atol=1e-6)


def test_quick_end_to_end(tmp_path):
    import attribute_selection as exp
    rc = exp.EXPERIMENT.main(["--profile", "quick", "--seeds", "3", "--out", str(tmp_path), "--train.epochs", "60",
                              "--n-irrelevant", "0", "4", "--primary-irrelevant", "4", "--n-test", "50", "--n-halt", "20",
                              "--net.hidden", "4", "--train.lr-grid", "1", "4", "--no-progress"])
    assert rc == 0
    summary = json.loads((tmp_path / "attribute_selection" / "summary.json").read_text())
    claims = {c["id"]: c for c in summary["claims"]}
    assert list(claims) == ["AS1", "AS1t", "AS1m", "AS1s", "AS1b", "AS1d", "AS1u", "AS1e", "AS1c"]
    assert claims["AS1"]["rule"] == "composite" and claims["AS1c"]["parts"] == ["AS1e"]
    assert np.isfinite(claims["AS1m"]["effect"])      # the matched-loss replay produced ratios
