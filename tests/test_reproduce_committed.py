"""Rerunning committed full-profile seeds reproduces the committed rows, for every experiment whose
committed results come from its current construction version: the first seed and the last seed of
the run (the last member of a batch is where position-dependent numbers showed up). Exactly where
this machine computes the arithmetic the rows were saved with (the units' trainer key, e.g.
``fused-v4``: bitwise the same on every x86-64 CPU); otherwise every choice (learning rate, epochs,
stop reason) exactly and every measured number within the documented tolerance
(``mtlmech.pipeline.retraining.close_value``; README, Reproducibility)."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402
from mtlmech.pipeline.retraining import close_value  # noqa: E402

EXPERIMENTS = run_all.discover()
COMMITTED = {name: ROOT / "figures" / name for name in EXPERIMENTS if (ROOT / "figures" / name / "summary.json").exists()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_first_and_last_committed_seeds_reproduce(name, tmp_path):
    folder = COMMITTED[name]
    summary = json.loads((folder / "summary.json").read_text())
    experiment = EXPERIMENTS[name]
    if summary.get("version", 1) != experiment.version:
        pytest.skip(f"committed results are construction v{summary.get('version', 1)}, the code is v{experiment.version}")
    text = {"lr_edge": "string", "stopped_by": "string"}   # all-empty in a few seeds would read as float
    committed = pd.read_csv(folder / "runs.csv", dtype=text)
    seeds = sorted({int(committed["seed"].min()), int(committed["seed"].max())})
    backend = summary["provenance"].get("backend", "torch")   # version-1 results predate the fused trainer
    assert experiment.main(["--seed-ids", *map(str, seeds), "--out", str(tmp_path), "--no-progress",
                            "--backend", backend]) == 0
    fresh = pd.read_csv(tmp_path / name / "runs.csv", dtype=text)
    old = committed[committed["seed"].isin(seeds)]
    keys = [c for c in ("unit", "seed", "condition", "task") if c in old.columns]
    columns = [c for c in old.columns if c not in ("seconds",)]
    old = old.sort_values(keys).reset_index(drop=True)[columns]
    fresh = fresh.sort_values(keys).reset_index(drop=True)[columns]
    assert len(fresh) == len(old) > 0
    saved_arithmetic = {k["backend"] for k in json.loads((folder / "units.json").read_text()).values()}
    arithmetic = {k["backend"] for k in json.loads((tmp_path / name / "units.json").read_text()).values()}
    if arithmetic == saved_arithmetic:
        pd.testing.assert_frame_equal(fresh, old)
        return
    differ = [f"row {i} {c}: {fresh.at[i, c]!r} now, {old.at[i, c]!r} saved" for i in range(len(old)) for c in columns
              if not close_value(c, fresh.at[i, c].item() if hasattr(fresh.at[i, c], "item") else fresh.at[i, c],
                                 old.at[i, c])]
    assert not differ, f"{name} ({sorted(arithmetic)} here, {sorted(saved_arithmetic)} saved): {differ[:5]}"
