"""Transfer (experiments/transfer.py): the sequential stage starts from the pre-trained hidden layer,
chooses its own rate from the grid, and freezing it (layer_lr 0 on the first layer) leaves it unchanged."""

import sys
from pathlib import Path

import pytest

from mtlmech.engine.training import TrainSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import transfer  # noqa: E402


def test_sequential_stage_grid_and_freezing():
    cfg = transfer.Config(n_train=24, n_halt=16, n_test=32,
                          train=TrainSpec(lr=0.5, epochs=60, eval_every=2, patience=5, lr_grid=(1.0, 4.0)))
    out = transfer.run_seeds([0, 1], cfg=cfg, key=("t",), device="cpu")
    for seed in (0, 1):
        rows = {r["condition"]: r for r in out[seed]["rows"]}
        assert set(rows) == {"STL", "MTL", "PRE", "SEQ", "SEQ-frozen"}
        assert rows["PRE"]["task"] == "Task2" and all(r["task"] == "Task1" for c, r in rows.items() if c != "PRE")
        assert rows["SEQ-frozen"]["hidden_change"] == 0.0
        assert rows["SEQ"]["hidden_change"] > 0.0
        for c in ("SEQ", "SEQ-frozen"):
            r = rows[c]
            assert r["lr"] in (0.5, 2.0) and r["lr_edge"] in ("low", "high") and r["grid_size"] == 2
            assert r["total_epochs"] == rows["PRE"]["stop_epoch"] + r["stop_epoch"]
            assert r["stopped_by"] in ("patience", "cap", "diverged")


def test_edge_and_config_validation():
    assert transfer.edge(1.0, [1.0, 2.0, 4.0]) == "low" and transfer.edge(4.0, [1.0, 2.0, 4.0]) == "high"
    assert transfer.edge(2.0, [1.0, 2.0, 4.0]) == "" and transfer.edge(2.0, [2.0]) == ""
    with pytest.raises(ValueError):
        transfer.Config(margin=-0.1)
    with pytest.raises(ValueError):
        transfer.Config(train=TrainSpec(patience=None))
