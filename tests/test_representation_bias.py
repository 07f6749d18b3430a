"""Representation-bias constructions and the probe classification (experiments/representation_bias.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.nets import NetSpec
from mtlmech.probes import agreement, classify, hidden_sensitivity, outputs_on, used_units
from mtlmech.problems.representation_bias import FAMILIES, RBConstruction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import representation_bias as rb_exp  # noqa: E402


@pytest.mark.parametrize("family", FAMILIES)
def test_alternatives_agree_on_training_rows_and_disagree_on_probes(family):
    rb = RBConstruction(family, 0.5 if family == "data" else 2.0)
    data = rb.training_set(np.random.default_rng(0), None)
    a, b, c = (data.features[f] for f in "ABC")
    t_rows, tp_rows = data.mask[:, 0] > 0, data.mask[:, 1] > 0
    assert np.all(tp_rows == (a == c))                      # T' learns only where A = C
    assert np.all(data.y[tp_rows, 1] == a[tp_rows])
    assert np.all(data.y[t_rows, 0] == b[t_rows])           # T's label is B (= A on the A = B rows)
    if family != "data":
        assert np.all(t_rows == (a == b)) and np.all(data.y[t_rows, 0] == a[t_rows])
    else:                                                   # data family: extra T rows where A ≠ B, labelled B
        assert np.all(t_rows[a == b]) and 0 < t_rows[a != b].sum() < (a != b).sum()
    assert np.all((a == b) | (a == c))                       # only trainable patterns
    assert np.all(rb.probe("T").features["A"] != rb.probe("T").features["B"])
    assert np.all(rb.probe("T'").features["A"] != rb.probe("T'").features["C"])


def test_finite_sample_is_distinct_trainable_patterns_and_knobs_scale_inputs():
    rb = RBConstruction("disjoint", 3.0)
    data = rb.training_set(np.random.default_rng(1), 20)
    assert len(np.unique(data.z, axis=0)) == 20
    assert np.allclose(np.abs(data.x[:, 2:4]), 3.0) and np.allclose(np.abs(data.x[:, [0, 1, 4, 5]]), 1.0)
    assert np.allclose(np.abs(RBConstruction("overlap", 3.0).encode(data.z[:, :5]))[:, 3], 3.0)
    with pytest.raises(ValueError):
        rb.training_set(np.random.default_rng(1), 49)
    with pytest.raises(ValueError):
        RBConstruction("data", 2.0)


def xor_net(bits_a, bits_b, w_a, w_b, n_inputs=6):
    """A hand-built 2-layer net whose output is w_a·XOR(bits_a) + w_b·XOR(bits_b) (±1 inputs):
    per feature, unit 1 fires on (+,−), unit 2 on (−,+), each strongly."""
    H = 4
    W1, b1 = torch.zeros(1, n_inputs, H), torch.full((1, H), -10.0)
    W2, b2 = torch.zeros(1, H, 1), torch.zeros(1, 1)
    for u, (bits, w) in enumerate(((bits_a, w_a), (bits_b, w_b))):
        i, j = bits
        W1[0, i, 2 * u], W1[0, j, 2 * u] = 10.0, -10.0
        W1[0, i, 2 * u + 1], W1[0, j, 2 * u + 1] = -10.0, 10.0
        W2[0, 2 * u:2 * u + 2, 0] = w
    b2[0, 0] = -(w_a + w_b) / 2
    return NetSpec(n_inputs=n_inputs, n_outputs=1, hidden=(H,)), [W1, b1, W2, b2]


@pytest.mark.parametrize("w_a, w_b, expected", [(20.0, 0.0, "A"), (0.0, 20.0, "B"), (20.0, 20.0, "mixed")])
def test_hand_built_nets_are_labelled_by_what_they_compute(w_a, w_b, expected):
    rb = RBConstruction("disjoint", 1.0)
    probe = rb.probe("T")
    spec, params = xor_net((0, 1), (2, 3), w_a, w_b)
    score = agreement(outputs_on(spec, params, torch.as_tensor(probe.x)), probe.features["A"])[0, 0].item()
    assert classify(score, first="A", second="B") == expected
    if expected == "mixed":
        assert score == pytest.approx(0.5)
    sens = hidden_sensitivity(spec, params, torch.as_tensor(rb.rows(rb.all_patterns()).x))
    used = used_units(sens)[0, 0].numpy()
    assert used[:2].all() == (w_a > 0) and used[2:].all() == (w_b > 0)


@pytest.mark.slow
def test_quick_config_runs_and_labels_every_run(tmp_path):
    cfg = rb_exp.Config(epochs=300, hidden_grid=(8,), scale_grid=(1.0,), q_grid=(0.0,), phase_seeds=2)
    out = rb_exp.run_seeds([0, 1, 2], cfg=cfg, family="disjoint", pref=1.0, hidden=4, all_patterns=False,
                           replicate=0, key=("test",), device="cpu", examples=True, max_seed=None)
    rows = [r for s in out.values() for r in s["rows"]]
    assert len(rows) == 3 * 4 and {r["label"] for r in rows} <= {"A", "B", "C", "mixed"}
    assert all(r["n_train"] == 36 for r in rows) and "sensitivity" in out[0]["extra"]
    skipped = rb_exp.run_seeds([0, 5], cfg=cfg, family="data", pref=0.0, hidden=4, all_patterns=True,
                               replicate=0, key=("test",), device="cpu", examples=False, max_seed=1)
    assert skipped[5] == {"rows": []} and len(skipped[0]["rows"]) == 4
    with pytest.raises(ValueError):
        rb_exp.Config(strong=(3.0, 3.0, 2.0))
