"""Constructions of the data-amplification problems and the trend measures (mtlmech.stats.trend)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mtlmech.problems.amplification import same_labels_as
from mtlmech.problems.tasks import make_problem
from mtlmech.stats.trend import level_contrast, matched_size, matched_size_bootstrap, per_seed_benefit, slope_test

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))


def test_blocking_pair_blocks_f_where_a_is_on_and_off():
    p = make_problem("amp_blocking_pair", n_bits=8, parity_bits=(1, 2, 3, 4))
    d = p.all_patterns()
    a, f = d.features["A"], d.features["F"]
    t, t2 = d.y_clean[:, p.task_index("T")], d.y_clean[:, p.task_index("T'")]
    assert np.array_equal(f, d.z[:, 1:5].sum(axis=1) % 2)
    # where A = 1, T is always 1 whatever F is: no information about F
    assert np.all(t[a == 1] == 1) and set(f[a == 1]) == {0, 1}
    # where A = 0, T = F exactly; and T' mirrors this
    assert np.array_equal(t[a == 0], f[a == 0])
    assert np.all(t2[a == 0] == 1) and np.array_equal(t2[a == 1], f[a == 1])
    # together they inform F on every pattern: F = T ∧ T'
    assert np.array_equal(np.minimum(t, t2), f)


def test_blocking_pair_rejects_bad_bits():
    with pytest.raises(ValueError):
        make_problem("amp_blocking_pair", n_bits=8, parity_bits=(0, 1))
    with pytest.raises(ValueError):
        make_problem("amp_blocking_pair", n_bits=4, parity_bits=(1, 2, 4))


def test_noisy_copies_have_independent_noise_and_clean_test():
    p = make_problem("amp_noisy_copies", noise=0.3)
    d = p.sample(np.random.default_rng(1), 40_000)
    assert np.array_equal(d.y_clean[:, 0], d.y_clean[:, 1])
    assert np.array_equal(d.y_clean[:, 0], d.features["F"])
    flips = (d.y != d.y_clean).astype(float)
    assert np.allclose(flips.mean(axis=0), 0.3, atol=0.01)
    assert abs(np.corrcoef(flips[:, 0], flips[:, 1])[0, 1]) < 0.02  # independent flips
    # flips are not tied to the inputs either
    assert abs(np.corrcoef(flips[:, 0], d.z[:, 0])[0, 1]) < 0.02
    test = p.splits(np.random.default_rng(2), n_train=10, n_halt=10, n_test=500).test
    assert np.array_equal(test.y, test.y_clean)


def test_noisy_copies_irrelevant_bits_do_not_matter():
    p = make_problem("amp_noisy_copies", noise=0.0)
    d = p.all_patterns()
    z2 = d.z.copy()
    z2[:, 6:] = 1 - z2[:, 6:]
    assert np.array_equal(p.rows_from(z2).y_clean, d.y_clean)


def test_sampling_pair_windows():
    p = make_problem("amp_sampling_pair")
    d = p.all_patterns()
    f, x6, x7 = d.features["F"], d.z[:, 6], d.z[:, 7]
    t, t2 = d.y_clean[:, 0], d.y_clean[:, 1]
    assert np.array_equal(t, f * x6) and np.array_equal(t2, np.maximum(f, x7))
    assert np.all(t[x6 == 0] == 0) and np.all(t2[x7 == 1] == 1)
    shows_f = (x6 == 1) | (x7 == 0)
    assert shows_f.mean() == pytest.approx(0.75)


def test_slope_test_detects_trend_and_not_flat():
    rng = np.random.default_rng(0)
    x = np.repeat([0.0, 0.1, 0.2, 0.3], 50)
    up = slope_test(x, 0.2 * x + rng.normal(0, 0.01, len(x)), "greater")
    assert up["p"] < 1e-6 and up["ci"][0] < 0.2 < up["ci"][1] and up["p_opposite"] > 0.99
    flat = slope_test(x, rng.normal(0, 0.01, len(x)), "greater")
    assert flat["p"] > 0.01
    with pytest.raises(ValueError):
        slope_test([1, 1], [0, 1])


def test_matched_size_interpolates_in_log_size():
    sizes, errors = [64, 128, 256], [0.2, 0.1, 0.05]
    assert matched_size(sizes, errors, 0.1) == pytest.approx(128)
    assert matched_size(sizes, errors, 0.075) == pytest.approx(np.sqrt(128 * 256))
    assert np.isnan(matched_size(sizes, errors, 0.01))
    control = {64: np.full(30, 0.2), 128: np.full(30, 0.1), 256: np.full(30, 0.05)}
    boot = matched_size_bootstrap(control, np.full(30, 0.1), n_resamples=50)
    assert boot["size"] == pytest.approx(128) and boot["ci"][0] == pytest.approx(128)


def test_per_seed_benefit_is_control_minus_treatment():
    import pandas as pd
    runs = pd.DataFrame({"seed": [0, 0, 1, 1], "condition": ["STL", "MTL"] * 2, "task": "T", "x": 1,
                         "test_error": [0.3, 0.1, 0.2, 0.25]})
    b = per_seed_benefit(runs, metric="test_error", treatment="MTL", control="STL", by=["x"])
    assert b["benefit"].tolist() == pytest.approx([0.2, -0.05])


@pytest.mark.slow
def test_readout_pair_reads_f_on_every_row_without_blocking():
    p = make_problem("amp_readout_pair")
    d = p.all_patterns()
    f, x6, x7 = d.features["F"], d.z[:, 6], d.z[:, 7]
    t, t2 = d.y_clean[:, p.task_index("T")], d.y_clean[:, p.task_index("T'")]
    assert np.array_equal(t, (f + x6) % 2) and np.array_equal(t2, (f + x7) % 2)
    # no blocking: on every row each task together with its read-out bit determines F
    assert np.array_equal((t + x6) % 2, f) and np.array_equal((t2 + x7) % 2, f)
    # neither task is an easy route to F: each is uncorrelated with F over all patterns
    for task in (t, t2):
        assert abs(np.mean((task - task.mean()) * (f - f.mean()))) < 1e-12


def test_same_labels_as_copies_the_main_tasks_noise_on_train_and_halt_only():
    p = make_problem("amp_noisy_copies", noise=0.3)
    s = p.splits(np.random.default_rng(5), n_train=400, n_halt=300, n_test=200)
    assert not np.array_equal(s.train.y[:, 0], s.train.y[:, 1])        # independent flips before
    out = same_labels_as(p, "T", ("T'",))(s, np.random.default_rng(0))
    for name in ("train", "halt"):
        a, b = getattr(out, name), getattr(s, name)
        assert np.array_equal(a.y[:, 1], b.y[:, 0]) and np.array_equal(a.y[:, 0], b.y[:, 0])
        assert np.array_equal(a.x, b.x)
    assert np.array_equal(out.test.y, s.test.y)
    assert not np.array_equal(s.train.y[:, 0], s.train.y[:, 1])        # the input splits are not modified
    with pytest.raises(ValueError):
        same_labels_as(p, "T", ("T",))


def test_level_contrast_detects_a_step_and_not_a_flat_line():
    rng = np.random.default_rng(0)
    step = {0.0: np.zeros(100), 0.1: rng.normal(0.02, 0.05, 100), 0.2: rng.normal(0.02, 0.05, 100)}
    up = level_contrast(step, high=[0.1, 0.2], low=[0.0], direction="greater")
    assert up["p"] < 1e-3 and up["ci"][0] > 0 and up["p_opposite"] > 0.99 and up["n"] == 300
    flat = {0: rng.normal(0, 0.05, 100), 4: rng.normal(0, 0.05, 100)}
    fit = level_contrast(flat, high=[4], low=[0], direction="greater")
    assert fit["p"] > 0.01 and fit["ci"][0] < 0 < fit["ci"][1]
    exact = level_contrast({0: np.zeros(5), 1: np.full(5, -0.1)}, high=[1], low=[0], direction="greater")
    assert exact["p"] == 1.0 and exact["p_opposite"] == 0.0 and exact["effect"] == pytest.approx(-0.1)
    with pytest.raises(ValueError):
        level_contrast(flat, high=[4], low=[4])


def test_quick_end_to_end(tmp_path):
    import data_amplification as exp
    rc = exp.EXPERIMENT.main(["--profile", "quick", "--seeds", "3", "--out", str(tmp_path), "--train.epochs", "30",
                              "--da3-train.epochs", "30", "--n-test", "50", "--n-halt", "20", "--net.hidden", "4",
                              "--train.lr-grid", "1", "4", "--da3-train.lr-grid", "1", "4", "--no-progress"])
    assert rc == 0
    summary = json.loads((tmp_path / "data_amplification" / "summary.json").read_text())
    ids = [c["id"] for c in summary["claims"]]
    assert ids == ["DA1", "DA1t", "DA1h", "DA1s", "DA1u", "DA1b", "DA1c", "DA2t", "DA2c", "DA2", "DA3", "DA3u",
                   "DA5", "DA5u"]
    by_id = {c["id"]: c for c in summary["claims"]}
    assert by_id["DA1"]["rule"] == "composite" and by_id["DA1c"]["rule"] == "equivalence"
    assert by_id["DA1b"]["details"]["benefit_at_noise_0_all_zero"]   # same-noise MTL = MTL at noise 0
    assert set(by_id["DA1h"]["training"]) == {"MTL", "STL-h2"}
    assert (tmp_path / "data_amplification" / "amplification.png").exists()
