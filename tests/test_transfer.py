"""Transfer (experiments/transfer.py): the sequential stage starts from the pre-trained hidden layer,
and freezing it (layer_lr 0 on the first layer) leaves it unchanged."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import transfer  # noqa: E402


def test_sequential_stage_and_freezing():
    cfg = transfer.Config(n_train=24, n_halt=16, n_test=32, hidden=4, epochs=15, eval_every=1)
    out = transfer.run_seeds([0, 1], cfg=cfg, key=("t",), device="cpu")
    for seed in (0, 1):
        rows = {r["condition"]: r for r in out[seed]["rows"]}
        assert set(rows) == {"STL", "MTL", "SEQ", "SEQ-frozen"}
        assert all(r["task"] == "Task1" for r in rows.values())
        assert rows["SEQ-frozen"]["hidden_change"] == 0.0
        assert rows["SEQ"]["hidden_change"] > 0.0


def test_config_validation():
    import pytest
    with pytest.raises(ValueError):
        transfer.Config(margin=-0.1)
