"""Eavesdropping construction and the non-monotonicity measure on hand-built curves."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlmech.measures.curves import is_non_monotonic
from mtlmech.problems.tasks import make_problem

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


def test_timing_measures_on_hand_built_curves():
    import eavesdropping as exp
    epochs = np.array([10, 20, 30, 40, 50])
    curves = np.array([[0.25, 0.21, 0.19, 0.10, 0.05],
                       [0.25, 0.25, 0.25, 0.25, 0.25],
                       [0.10, np.nan, np.nan, np.nan, np.nan]])
    e = exp.first_below(curves, epochs, 0.2)
    assert e[0] == 30 and np.isnan(e[1]) and e[2] == 10
    held = exp.hold_last(curves)
    assert held[2].tolist() == [0.10] * 5 and held[0].tolist() == curves[0].tolist()
    assert exp.coincides([30, 30, 100, np.nan], [10, 40, 10, 10], 8.0).tolist() == [True, False, False, False]


def test_timing_table_pairs_stl_with_its_seeds_mtl_e_f():
    import eavesdropping as exp
    cfg = exp.Config()
    rows = []
    for seed, (ef, tp_mtl, tp_stl, err_stl) in enumerate([(100, 600, 700, 0.0), (100, 600, 2000, 0.0), (100, 600, 700, 0.4)]):
        for c, e_f, tp, err in (("MTL", ef, tp_mtl, 0.0), ("MTL-untuned", ef, tp_mtl, 0.0), ("STL", np.nan, tp_stl, err_stl),
                                ("STL-untuned", np.nan, tp_stl, err_stl)):
            rows.append({"seed": seed, "route": "hint", "task": "T'", "condition": c, "e_F": e_f, "e_Tp": tp,
                         "test_error": err})
    t = exp.timing_table(pd.DataFrame(rows), cfg)
    assert t["coincide_MTL-untuned"].tolist() == [True, True, True]
    assert t["coincide_STL-untuned"].tolist() == [True, False, True]      # 2000 > 8 × 100
    assert t["learned_STL-untuned"].tolist() == [True, True, False]


def test_quick_end_to_end(tmp_path):
    import eavesdropping as exp
    rc = exp.EXPERIMENT.main(["--profile", "quick", "--seeds", "3", "--out", str(tmp_path), "--train.epochs", "60",
                              "--n-test", "50", "--n-halt", "20", "--net.hidden", "4", "--train.lr-grid", "1", "4",
                              "--no-progress"])
    assert rc == 0
    out = tmp_path / "eavesdropping"
    summary = json.loads((out / "summary.json").read_text())
    claims = {c["id"]: c for c in summary["claims"]}
    assert list(claims) == ["EV1", "EV1b", "EV1u", "EV2t", "EV2m", "EV2", "EV2n"]
    assert claims["EV2"]["parts"] == ["EV2t", "EV2m"] and claims["EV2t"]["rule"] == "threshold"
    assert json.loads((out / "extras.json").read_text())   # example curves kept
