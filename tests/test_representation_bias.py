"""Representation-bias constructions, the probe classification, the paired switch test and the
experiment's units (experiments/representation_bias.py)."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mtlmech.engine.nets import NetSpec
from mtlmech.measures.probes import agreement, classify, hidden_sensitivity, outputs_on, used_units
from mtlmech.pipeline.cli import RunContext
from mtlmech.problems.representation_bias import FAMILIES, RBConstruction

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import representation_bias as rb_exp  # noqa: E402

KNOB = {"disjoint": 2.0, "overlap": 2.0, "data": 0.5, "silent": 1.0, "fixed": 1.0}


@pytest.mark.parametrize("family", FAMILIES)
def test_alternatives_agree_on_training_rows_and_disagree_on_probes(family):
    rb = RBConstruction(family, KNOB[family])
    data = rb.training_set(np.random.default_rng(0), None)
    a, b, c = (data.features[f] for f in "ABC")
    t_rows, tp_rows = data.mask[:, 0] > 0, data.mask[:, 1] > 0
    assert np.all(tp_rows == (a == c))                      # T' learns only where A = C
    assert np.all(data.y[tp_rows, 1] == a[tp_rows])
    assert np.all(data.y[t_rows, 0] == b[t_rows])           # T's label is B everywhere it is labelled
    if family in ("disjoint", "overlap"):
        assert np.all(t_rows == (a == b)) and np.all(data.y[t_rows, 0] == a[t_rows])
    elif family == "data":                                  # extra T rows where A ≠ B, labelled B
        assert np.all(t_rows[a == b]) and 0 < t_rows[a != b].sum() < (a != b).sum()
    else:                                                   # A independent of T's target on T's rows
        assert np.mean(a[t_rows] == b[t_rows]) == 0.5
        assert len(np.unique(c[t_rows])) == 1               # C constant on T's rows
    assert np.all(rb.probe("T").features["A"] != rb.probe("T").features["B"])
    assert np.all(rb.probe("T'").features["A"] != rb.probe("T'").features["C"])


def test_new_families_keep_the_premises():
    """B and C on disjoint bits; T' has exactly experiment 1's rows and labels (so T' alone is
    indifferent by the A↔C symmetry); T's rows fix C's lines (silent) or C's value (fixed)."""
    exp1 = RBConstruction("data", 0.0)
    ref = exp1.rows(exp1.all_patterns())
    for family in ("silent", "fixed", "data"):
        rb = RBConstruction(family, 1.0)
        assert not set(rb.bits["B"]) & set(rb.bits["C"])
        d = rb.rows(rb.all_patterns(), np.random.default_rng(0))
        assert np.array_equal(d.mask[:, 1], ref.mask[:, 1]) and np.array_equal(d.y[:, 1], ref.y[:, 1])
    silent = RBConstruction("silent").training_set(np.random.default_rng(0), None)
    rows = silent.mask[:, 0] > 0
    assert rows.sum() == 16 and np.all(silent.z[rows][:, 4:6] == 0) and len(silent) == 40
    assert RBConstruction("fixed").training_set(np.random.default_rng(0), None).mask[:, 0].sum() == 32
    with pytest.raises(ValueError):
        RBConstruction("silent", 2.0)


def test_splits_hold_out_the_rest_and_label_a_pattern_the_same_way_everywhere():
    rb = RBConstruction("data", 0.5)
    s = rb.splits(np.random.default_rng(3), 36)
    assert len(s.train) == 36 and len(s.halt) == 12 and len(s.test) == 48
    seen = np.concatenate([s.train.z, s.halt.z])
    assert len(np.unique(seen, axis=0)) == 48               # disjoint, together every trainable pattern
    test_mask = {tuple(z): m for z, m in zip(s.test.z, s.test.mask[:, 0])}
    assert all(test_mask[tuple(z)] == m for z, m in zip(s.train.z, s.train.mask[:, 0]))
    full = rb.splits(np.random.default_rng(3), None)
    assert np.array_equal(full.train.x, full.halt.x)        # nothing to hold out: halt on the training rows
    with pytest.raises(ValueError):
        rb.splits(np.random.default_rng(3), 48)
    assert RBConstruction("data", 0.5).fingerprint() != RBConstruction("data", 1.0).fingerprint()
    assert RBConstruction("silent").fingerprint() != RBConstruction("fixed").fingerprint()


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
    pic = rb_exp.unit_picture(NetSpec(n_inputs=6, n_outputs=1, hidden=(4,)), params, rb, "cpu")
    assert pic["unit_feature"] == ["A", "A", "B", "B"]      # input-weight mass names each unit's feature


def paired_labels(pairs):
    """runs rows for task T' from (STL label, MTL label) pairs, one seed each."""
    rows = []
    for seed, (stl, mtl) in enumerate(pairs):
        rows += [dict(seed=seed, task="T'", condition="STL", label=stl), dict(seed=seed, task="T'", condition="MTL", label=mtl)]
    return pd.DataFrame(rows)


def test_switch_test_counts_only_seeds_where_both_reached_a_minimum():
    towards_c = paired_labels([("A", "C")] * 12 + [("C", "A")] * 1 + [("A", "A")] * 20 + [("mixed", "C")] * 30)
    t = rb_exp.switch_test(towards_c, "T'", "C")
    assert (t["to_C"], t["away_from_C"], t["n_both_reached"]) == (12, 1, 33)
    assert t["p"] < 0.01 and t["p_opposite"] > 0.5 and t["diff"] > 0
    assert t["unconditional"]["only_treatment"] == 42        # the mixed→C seeds count only unconditionally
    away = rb_exp.switch_test(paired_labels([("C", "A")] * 12 + [("A", "C")] * 1), "T'", "C")
    assert away["p"] > 0.5 and away["p_opposite"] < 0.01 and away["diff"] < 0


def test_cache_key_holds_everything_the_computation_receives():
    run = RunContext(stream="pilot", backend="torch")
    base = rb_exp.Config(phase=(), tide=("silent",))
    keys = {u.label: u.key for u in rb_exp.make_units(base, run)}
    for change in (dict(n_examples=3), dict(n_train=30), dict(threshold=0.8),
                   dict(train=replace(base.train, patience=50))):
        other = {u.label: u.key for u in rb_exp.make_units(replace(base, **change), run)}
        shared = set(keys) & set(other)
        assert shared and all(keys[k] != other[k] for k in shared), change
    assert all(k["problems"] for k in keys.values())
    # a sweep list is not in other units' keys: adding a phase point leaves existing units alone
    more = {u.label: u.key for u in rb_exp.make_units(replace(base, phase=("fixed:1:4",)), run)}
    assert all(more[k] == keys[k] for k in keys)


def test_tiny_run_labels_every_net_and_retrains_one_seed_identically():
    cfg = rb_exp.Config(n_examples=1, train=replace(rb_exp.Config().train, epochs=600, patience=10,
                                                     lr_grid=(1.0, 4.0)))
    kw = dict(cfg=cfg, family="data", pref=0.0, hidden=4, all_patterns=False, key=("test",), device="cpu")
    out = rb_exp.run_seeds([0, 1, 2], **kw)
    rows = [r for s in out.values() for r in s["rows"]]
    assert len(rows) == 3 * 8 and {r["label"] for r in rows} <= {"A", "B", "C", "mixed"}
    assert {r["condition"] for r in rows} == {"STL", "MTL", "STL-untuned", "MTL-untuned"}
    assert all(r["lr"] in (1.0, 4.0) and r["stopped_by"] in ("patience", "cap", "diverged") for r in rows)
    assert "input_weights" in out[0]["extra"] and not out[1].get("extra")
    alone = rb_exp.run_seeds([2], **kw)[2]["rows"]           # what --show-run does: one seed, same key
    assert [(r["label"], r["score_A"], r["lr"]) for r in alone] == \
           [(r["label"], r["score_A"], r["lr"]) for r in out[2]["rows"]]


def test_config_rejects_bad_points():
    with pytest.raises(ValueError):
        rb_exp.Config(exp2="data:2")
    with pytest.raises(ValueError):
        rb_exp.Config(phase=("nope:1:8",))
    assert rb_exp.parse_point("silent:1:16", 8) == ("silent", 1.0, 16)


def test_default_training_settings_are_the_preregistered_ones():
    """The docstring pre-registers the grid, patience, min_delta and cap; the Config must run them
    (a first full launch ran an older default grid)."""
    t = rb_exp.Config().train
    assert (t.lr, t.lr_grid) == (1.0, (0.25, 1.0, 4.0, 16.0, 64.0, 256.0))
    assert (t.patience, t.eval_every, t.min_delta, t.epochs) == (100, 10, 1e-3, 20_000)
    assert "1 × {1/4, 1, 4, 16, 64, 256}" in rb_exp.__doc__ and rb_exp.PROFILES["full"]["seeds"] == 1100
