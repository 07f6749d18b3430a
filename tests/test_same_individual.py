"""Same individual (experiments/same_individual.py, SI1): which rows carry which task's labels."""

import sys
from pathlib import Path

import numpy as np
import pytest

from mtlmech.engine.training import TrainSpec
from mtlmech.protocol import draw_splits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import same_individual as si  # noqa: E402


def test_row_masks():
    cfg = si.Config(n_train=5)
    p = si.problem(cfg, "blocking")
    s = draw_splits(p, ("si",), 0, n_train=10, n_halt=4, n_test=4)
    conds = {c.name: c for c in si.conditions(cfg, "blocking")}
    rng = np.random.default_rng(0)
    same = conds["MTL-same"].transform(s, rng).train
    other = conds["MTL-disjoint"].transform(s, rng).train
    assert conds["STL"].transform(s, rng).train.mask.tolist() == same.mask.tolist()
    main, extra = p.task_index("Task1"), p.task_index("Task2")
    assert same.mask[:5, [main, extra]].all() and not same.mask[5:].any()
    assert other.mask[:5, main].all() and not other.mask[5:, main].any()
    assert other.mask[5:, extra].all() and not other.mask[:5, extra].any()
    np.testing.assert_array_equal(same.x, s.train.x)            # inputs untouched: 2n rows for every condition
    assert s.train.mask.all()                                   # the shared draw is not modified
    assert same.mask[:, main].sum() == other.mask[:, main].sum() == other.mask[:, extra].sum() == 5
    with pytest.raises(ValueError):
        si.Config(noise=0.5)


def test_run_seeds_tiny():
    cfg = si.Config(n_train=12, n_halt=16, n_test=32,
                    train=TrainSpec(lr=0.5, epochs=40, eval_every=5, patience=3, lr_grid=(1.0, 2.0)))
    for part, task in (("blocking", "Task1"), ("noisy", "T1")):
        rows = si.run_seeds([0, 1], cfg=cfg, part=part, key=("t", part), device="cpu")[1]["rows"]
        assert [r["condition"] for r in rows] == list(si.ORDER) and all(r["task"] == task for r in rows)
        assert all(r["lr"] in (0.5, 1.0) for r in rows)
