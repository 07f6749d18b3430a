"""benchmarks/work_accounting.py on a tiny parity_tasks setting: the split adds up."""

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import work_accounting  # noqa: E402

from mtlmech.protocol import record_work  # noqa: E402


def test_accounting_split_adds_up(tmp_path, parity_tiny):
    sys.path.insert(0, str(ROOT / "experiments"))
    import parity_tasks
    _, _, _, units = parity_tasks.EXPERIMENT.prepare([*parity_tiny, "--seeds", "2", "--out", str(tmp_path / "o")])
    with record_work() as records:
        units[0].train([0, 1])
    (record,) = records
    acc = work_accounting.account(record)
    stops = record["stop_epoch"].astype(int)
    assert sum(acc[f"epochs_{p}"] for p in work_accounting.PARTS) == stops.sum()
    chosen = set(record["chosen"])
    assert acc["epochs_chosen_to_best"] + acc["epochs_chosen_overhang"] == sum(stops[i] for i in chosen)
    dup = [i for i, j in enumerate(record["source"]) if i != j]
    assert len(dup) == 4 and acc["shared_epochs"] == stops[dup].sum()
    assert acc["trained_members"] == 8 and acc["members"] == 12
    assert all(acc[f"flops_{p}"] >= 0 for p in work_accounting.FLOP_PARTS) and acc["flops_test_curves"] == 0

    out = tmp_path / "work.json"
    settings = shlex.join(parity_tiny[2:])   # the tiny flags after "--profile quick"
    assert work_accounting.main(["--only", "parity_tasks", "--profile", "quick", "--seeds", "2", "--units", "1",
                                 "--no-peak", "--set", settings, "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["experiments"]
    assert row["epochs_total"] == stops.sum() == sum(row[f"epochs_{p}"] for p in work_accounting.PARTS)
    assert row["flops_total"] == pytest.approx(sum(row[f"flops_{p}"] for p in work_accounting.FLOP_PARTS))
    assert row["flops_total"] == pytest.approx(sum(acc[f"flops_{p}"] for p in work_accounting.FLOP_PARTS))
    assert 0 < row["shared_flops"] < row["flops_total"] and np.isfinite(row["gflops_per_s"])
