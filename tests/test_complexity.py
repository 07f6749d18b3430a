"""Complexity (experiments/complexity.py, CX1/CX2): the blocked_family problem, the nested task sets,
the per-seed benefit table and the pairing of rows and initial weights across parity orders."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlmech.engine.training import TrainSpec
from mtlmech.problems.tasks import make_problem
from mtlmech.protocol import draw_splits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import complexity  # noqa: E402


def test_blocked_family_extends_c93():
    fam = make_problem("blocked_family", blockers=(0, 1), parity_bits=(2, 3, 4)).all_patterns()
    c93 = make_problem("c93_parity", parity_bits=(2, 3, 4)).all_patterns()
    np.testing.assert_array_equal(fam.y[:, :4], c93.y)
    x = fam.x > 0.5
    p = x[:, [2, 3, 4]].sum(axis=1) % 2 == 1
    np.testing.assert_array_equal(fam.y[:, 4] > 0.5, x[:, 1] | p)      # T5 = B2 ∨ P
    np.testing.assert_array_equal(fam.y[:, 7] > 0.5, ~x[:, 1] & p)     # T8 = ¬B2 ∧ P
    with pytest.raises(ValueError):
        make_problem("blocked_family", blockers=(0, 2), parity_bits=(2, 3))


def test_conditions_are_nested_and_orders_share_rows():
    cfg = complexity.Config()
    conds = {c.name: c.tasks for c in complexity.conditions(cfg, cfg.tasks_order)}
    assert conds == {"STL": ("T1",), "MTL+1": ("T1", "T2"), "MTL+3": ("T1", "T2", "T3", "T4"),
                     "MTL+7": tuple(f"T{i}" for i in range(1, 9))}
    assert [c.name for c in complexity.conditions(cfg, 2)] == ["STL", "MTL+3"]
    a = draw_splits(complexity.problem(cfg, 2), ("k",), 5, n_train=16, n_halt=8, n_test=8)
    b = draw_splits(complexity.problem(cfg, 4), ("k",), 5, n_train=16, n_halt=8, n_test=8)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    with pytest.raises(ValueError):
        complexity.Config(orders=(2, 4), tasks_order=3)


def test_benefits_table():
    runs = pd.DataFrame({"order": [2, 2, 2, 2, 4, 4], "seed": [0, 0, 1, 1, 0, 0],
                         "condition": ["STL", "MTL+3", "STL", "MTL+3", "STL", "MTL+3"],
                         "test_error": [0.3, 0.1, 0.2, 0.25, 0.5, 0.5]})
    b = complexity.benefits(runs).set_index(["order", "seed"])["benefit"]
    assert b[(2, 0)] == pytest.approx(0.2) and b[(2, 1)] == pytest.approx(-0.05) and b[(4, 0)] == 0


def test_run_seeds_tiny():
    cfg = complexity.Config(n_halt=16, n_test=32, n_train=24,
                            train=TrainSpec(lr=0.5, epochs=40, eval_every=5, patience=3, lr_grid=(1.0, 2.0)))
    out = complexity.run_seeds([0], cfg=cfg, order=3, key=("t",), device="cpu")
    rows = out[0]["rows"]
    assert sorted(r["n_extra"] for r in rows) == [0, 1, 3, 7] and all(r["task"] == "T1" for r in rows)
