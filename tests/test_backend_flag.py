"""``--backend`` reaches the trainer in every experiment: the cache key names the trainer that runs
(found missing in four experiments by ``benchmarks/profile_speed.py``, whose torch and default runs
took the same time)."""

import sys
from pathlib import Path

import pytest

import mtlmech.engine.training

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402

EXPERIMENTS = run_all.discover()
REAL_TRAIN = mtlmech.engine.training.train


class Called(Exception):
    """Raised by the stand-in trainer: nothing is trained."""


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_unit_trains_with_the_requested_backend(name, tmp_path, monkeypatch):
    seen = []

    def stand_in(*args, backend="auto", **kwargs):
        seen.append(backend)
        raise Called

    for module in list(sys.modules.values()):   # wherever the trainer was imported by name
        if getattr(module, "train", None) is REAL_TRAIN:
            monkeypatch.setattr(module, "train", stand_in)
    _, opts, _, units = EXPERIMENTS[name].prepare(["--profile", "quick", "--backend", "torch", "--out", str(tmp_path)])
    assert opts.context.backend == "torch" and units
    for unit in units:
        assert unit.key["backend"].startswith("torch-v")
        with pytest.raises(Called):
            unit.compute([0])
    assert seen == ["torch"] * len(units)
