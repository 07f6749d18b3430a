"""Eavesdropping construction and the non-monotonicity measure on hand-built curves."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlmech.curves import is_non_monotonic
from mtlmech.tasks import make_problem

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))


@pytest.mark.parametrize("route", ["hint", "task"])
def test_hard_task_carries_no_low_order_signal_about_f(route):
    p = make_problem("eavesdropping", route=route)
    d = p.all_patterns()
    f = d.features["F"]
    t, t2 = d.y_clean[:, 0], d.y_clean[:, 1]
    assert np.array_equal(f, (d.z[:, :5].sum(axis=1) >= 3).astype(float))
    assert np.array_equal(t2, (f + d.z[:, 5] + d.z[:, 6]) % 2)
    centred = lambda v: v - v.mean()
    for other in (f, d.z[:, 5], d.z[:, 6], (f + d.z[:, 5]) % 2, (f + d.z[:, 6]) % 2, (d.z[:, 5] + d.z[:, 6]) % 2):
        assert abs(np.mean(centred(t2) * centred(other))) < 1e-12   # exactly uncorrelated over all patterns
    if route == "hint":
        assert np.array_equal(t, f)
    else:
        assert np.array_equal(t, np.maximum(f, d.z[:, 7]))
    z2 = d.z.copy()
    z2[:, 8:] = 1 - z2[:, 8:]
    assert np.array_equal(p.rows_from(z2).y_clean, d.y_clean)   # x8, x9 irrelevant


def test_non_monotonic_hand_built_curves():
    curves = np.array([
        [0.25, 0.20, 0.15, 0.10, 0.05, 0.04],   # monotone decrease
        [0.25, 0.24, 0.28, 0.30, 0.15, 0.10],   # dip, rise well above it, then far lower: yes
        [0.25, 0.24, 0.245, 0.238, 0.243, 0.236],  # jitter below tol: no
        [0.25, 0.20, 0.26, 0.21, 0.205, 0.20],  # rise, but never below the earlier best by > tol: no
        [0.25, 0.10, 0.15, 0.20, 0.25, 0.30],   # ordinary overfitting: no
    ])
    assert is_non_monotonic(curves, tol=0.01).tolist() == [False, True, False, False, False]
    assert is_non_monotonic(curves[2:3], tol=0.0).tolist() == [True]   # tol 0 counts jitter
    with pytest.raises(ValueError):
        is_non_monotonic(curves, tol=-1)


def test_rates_count_runs_per_condition():
    import eavesdropping as exp
    runs = pd.DataFrame({"route": "hint", "n_train": 128, "condition": ["STL"] * 4 + ["MTL"] * 4,
                         "nm": [False, False, False, True, True, True, True, False]})
    (row,) = exp.rates(runs, "nm")
    assert (row["k_STL"], row["n_STL"], row["k_MTL"], row["n_MTL"]) == (1, 4, 3, 4)
    assert row["diff"] == pytest.approx(0.5)
    assert row["diff_ci"][0] < 0.5 < row["diff_ci"][1]


def test_quick_end_to_end(tmp_path):
    import eavesdropping as exp
    rc = exp.EXPERIMENT.main(["--profile", "quick", "--seeds", "3", "--out", str(tmp_path), "--epochs", "30",
                              "--n-test", "50", "--n-halt", "20"])
    assert rc == 0
    out = tmp_path / "eavesdropping"
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == ["EV1", "EV1b", "EV2"]
    assert json.loads((out / "extras.json").read_text())   # example curves kept
