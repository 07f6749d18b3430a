"""Results store, caching and the experiment command line, end to end on a tiny parity_tasks run."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mtlmech.pipeline.runner import Unit, run_units
from mtlmech.pipeline.store import CorruptCacheWarning, SeedCache, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import parity_tasks  # noqa: E402

TINY = ["--profile", "quick", "--n-train", "16", "32", "--primary-n", "16", "--train.epochs", "40", "--n-test", "50",
        "--n-halt", "20", "--net.hidden", "4", "--train.lr-grid", "1", "2"]


def fake_unit(calls):
    def compute(seeds):
        calls.append(list(seeds))
        return {s: {"rows": [{"value": s * 10}], "extra": {}} for s in seeds}
    return Unit(key={"k": 1}, compute=compute, label="fake")


def test_cache_reuses_and_extends(tmp_path):
    calls = []
    unit = fake_unit(calls)
    r1 = run_units([unit], range(4), tmp_path)
    assert (r1.computed, r1.reused) == (4, 0)
    r2 = run_units([unit], range(6), tmp_path)
    assert (r2.computed, r2.reused) == (2, 4) and calls[-1] == [4, 5]
    r3 = run_units([unit], range(3), tmp_path)
    assert (r3.computed, r3.reused) == (0, 3)
    r4 = run_units([unit], range(3), tmp_path, force=True)
    assert r4.computed == 3
    assert r3.records[unit.hash][2]["rows"][0] == {"value": 20, "unit": unit.hash, "seed": 2}


def test_shards_are_saved_separately(tmp_path):
    calls = []
    run_units([fake_unit(calls)], range(10), tmp_path, shard_size=4)
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_corrupt_shard_is_reported_moved_aside_and_recomputed(tmp_path):
    calls = []
    unit = fake_unit(calls)
    run_units([unit], range(3), tmp_path)
    shard = next(SeedCache(tmp_path, unit.hash).dir.glob("seeds-*.json"))
    shard.write_text(shard.read_text()[:-20])   # truncated
    with pytest.warns(CorruptCacheWarning):
        report = run_units([unit], range(3), tmp_path)
    assert report.computed == 3
    assert shard.with_name(shard.name + ".corrupt").exists()   # kept, never deleted
    # a shard whose content was edited (valid JSON) fails its checksum
    shard = next(SeedCache(tmp_path, unit.hash).dir.glob("seeds-*.json"))
    doc = json.loads(shard.read_text())
    doc["payload"]["0"]["rows"][0]["value"] = 999
    shard.write_text(json.dumps(doc))
    with pytest.warns(CorruptCacheWarning):
        assert run_units([unit], range(3), tmp_path).computed == 3


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # write() fails midway
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_experiment_end_to_end_and_rerun_reuses(tmp_path, capsys):
    args = TINY + ["--seeds", "3", "--out", str(tmp_path)]
    assert parity_tasks.EXPERIMENT.main(args) == 0
    assert "computed 6, reused 0" in capsys.readouterr().out
    out = tmp_path / "parity_tasks"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 * 2 * 4 and set(runs["condition"]) == {"STL", "MTL", "STL-untuned", "MTL-untuned"}
    assert set(runs["stopped_by"]) <= {"patience", "cap", "diverged"} and set(runs["lr"]) <= {0.5, 1.0}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["claims"][0]["id"] == "DA4" and summary["claims"][0]["n"] == 3
    assert summary["provenance"]["seeds"] == [0, 3] and "git_commit" in summary["provenance"]
    assert (out / "error_vs_n.png").exists()
    assert parity_tasks.EXPERIMENT.main(args[:-4] + ["--seeds", "4", "--out", str(tmp_path)]) == 0
    assert "computed 2, reused 6" in capsys.readouterr().out


def test_same_numbers_on_rerun_and_in_a_bigger_batch(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(a)]) == 0
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "5", "--out", str(b)]) == 0
    ra = pd.read_csv(a / "parity_tasks" / "runs.csv")
    rb = pd.read_csv(b / "parity_tasks" / "runs.csv")
    rb = rb[rb["seed"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb)


@pytest.mark.parametrize("bad, message", [
    (["--seeds", "-1"], "--seeds must be a positive"),
    (["--bogus"], "unrecognized arguments"),
    (["--n-train", "0"], "must be ≥ 1"),
    (["--primary-n", "7"], "must be one of"),
    (["--profile", "huge"], "invalid choice"),
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
])
def test_bad_input_gives_one_line_error_exit_2_and_writes_nothing(tmp_path, bad, message):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "parity_tasks.py"), "--out", str(tmp_path), *bad],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_replot_needs_saved_results(tmp_path, capsys):
    assert parity_tasks.EXPERIMENT.main(TINY + ["--replot", "--out", str(tmp_path)]) == 2
