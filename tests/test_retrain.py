"""mtlmech.retrain: one saved run (experiment, unit, seed) trained again gives the nets behind its
rows, checked against runs.csv; a tampered row, an unknown unit or seed, and an experiment whose
units cannot be re-trained are clear errors."""

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import mtlmech
from mtlmech.pipeline.retraining import RetrainError, _unit_hash, config_from_dict, same_value
from mtlmech.protocol import Trained, score_rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import compare  # noqa: E402
import parity_tasks  # noqa: E402
from test_compare import TINY, write  # noqa: E402


def resign(folder: Path, name: str) -> None:
    """Record ``name``'s present content in the folder's manifest (a deliberate, recorded edit)."""
    import json

    from mtlmech.pipeline.outputs import MANIFEST, digest
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = digest(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def out(parity_tiny_out):
    return parity_tiny_out


def test_retraining_a_seed_gives_the_nets_behind_its_saved_rows(out):
    runs = pd.read_csv(out / "parity_tasks" / "runs.csv")
    for unit in runs["unit"].unique():
        trained = mtlmech.retrain("parity_tasks", unit, 1, out=out)
        assert isinstance(trained, Trained)
        assert [(s, c.name) for s, c in trained.members] == [(1, c.name) for c in parity_tasks.CONDITIONS]
        assert [ch["lr"] for ch in trained.choices] == runs[(runs["unit"] == unit) & (runs["seed"] == 1)]["lr"].tolist()
        saved = runs[(runs["unit"] == unit) & (runs["seed"] == 1)].reset_index(drop=True)
        n = int(saved["n_train"].iloc[0])
        for new, (_, old) in zip(score_rows(trained, n_train=n)[1]["rows"], saved.iterrows()):
            for column in ("test_error", "test_mse", "train_mse", "best_epoch", "stop_epoch", "lr"):
                assert new[column] == old[column], column     # identical, not close
    again = mtlmech.retrain("parity_tasks", unit[:6], 1, out=out)    # a unique prefix of the hash will do
    for a, b in zip(trained.result.task_snapshots, again.result.task_snapshots):
        assert torch.equal(a, b)


def test_a_row_that_the_code_does_not_reproduce_is_an_error(out, tmp_path):
    copy = tmp_path / "parity_tasks"
    shutil.copytree(out / "parity_tasks", copy, ignore=shutil.ignore_patterns("cache"))
    runs = pd.read_csv(copy / "runs.csv")
    unit = runs["unit"].iloc[0]
    at = runs.index[(runs["unit"] == unit) & (runs["seed"] == 2)][1]
    runs.loc[at, "test_mse"] += 1e-9
    runs.to_csv(copy / "runs.csv", index=False)
    with pytest.raises(RetrainError, match=r"runs.csv differs from the copy manifest.json records"):
        mtlmech.retrain("parity_tasks", unit, 2, out=tmp_path)      # an edit the manifest does not record: refused
    resign(copy, "runs.csv")                                          # as if the code, not the file, had changed
    with pytest.raises(RetrainError, match=r"seed 2 does not reproduce runs.csv: row 1 \(MTL, Task1\): test_mse"):
        mtlmech.retrain("parity_tasks", unit, 2, out=tmp_path)
    assert isinstance(mtlmech.retrain("parity_tasks", unit, 2, out=tmp_path, check=False), Trained)
    mtlmech.retrain("parity_tasks", unit, 1, out=tmp_path)              # the untouched seed still checks


def test_unknown_units_and_seeds_are_clear_errors(out):
    with pytest.raises(RetrainError, match="no unit in .*units.json match 'ffff'"):
        mtlmech.retrain("parity_tasks", "ffff", 0, out=out)
    with pytest.raises(RetrainError, match="no unit in .*units.json match ''"):
        mtlmech.retrain("parity_tasks", "", 0, out=out)
    with pytest.raises(RetrainError, match="2 units in units.json match 'ab'"):
        _unit_hash("ab", {"ab12": {}, "ab34": {}, "cd56": {}}, Path("units.json"))
    unit = pd.read_csv(out / "parity_tasks" / "runs.csv")["unit"].iloc[0]
    with pytest.raises(RetrainError, match=r"no rows for unit .*, seed 7 \(its seeds: 0..2\)"):
        mtlmech.retrain("parity_tasks", unit, 7, out=out)
    with pytest.raises(FileNotFoundError, match="no results for 'nope'"):
        mtlmech.retrain("nope", unit, 0, out=out)


def test_compare_runs_retrain_with_their_probe_scores(tmp_path):
    plugin = write(tmp_path / "user_pair.py")
    out = tmp_path / "out"
    assert compare.TOOL.main(TINY + ["--plugin", str(plugin), "--out", str(out), "--probes", "A≠B"]) == 0
    folder = next(out.iterdir())
    runs = pd.read_csv(folder / "runs.csv")
    assert "probe_A≠B_error" in runs.columns
    trained = mtlmech.retrain(folder.name, runs["unit"].iloc[0], 1, out=out)   # checks the probe columns too
    assert [c.name for _, c in trained.members] == ["STL", "MTL"]


TOY = '''
from dataclasses import dataclass
from mtlmech.pipeline.experiment import Experiment, Findings, unit_key
from mtlmech.pipeline.runner import Unit

@dataclass(frozen=True)
class Config:
    size: int = 2

def compute(seeds):
    return {s: {"rows": [{"value": s * 2}]} for s in seeds}

def make_units(cfg, run):
    return [Unit(key=unit_key("toy", 1, cfg, run), compute=compute)]

EXPERIMENT = Experiment(name="toy", doc="A toy.", config_cls=Config, profiles={"full": dict(seeds=2)},
                        make_units=make_units, analyse=lambda runs, extras, cfg, outdir: Findings(claims=[]))
'''


def test_an_experiment_without_train_says_it_cannot_retrain(tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "toy.py").write_text(TOY)
    from mtlmech.pipeline.retraining import find_experiment
    toy = find_experiment("toy", root=tmp_path)
    assert toy.main(["--out", str(tmp_path / "out"), "--no-progress"]) == 0
    unit = pd.read_csv(tmp_path / "out" / "toy" / "runs.csv")["unit"].iloc[0]
    with pytest.raises(RetrainError, match="toy does not offer re-training yet"):
        mtlmech.retrain("toy", unit, 1, out=tmp_path / "out", root=tmp_path)


def test_config_round_trips_through_the_saved_json():
    import dataclasses
    import json
    cfg = parity_tasks.Config(n_train=(16, 32), primary_n=16)
    assert config_from_dict(parity_tasks.Config, json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    with pytest.raises(RetrainError, match=r"fields \['gone'\]"):
        config_from_dict(parity_tasks.Config, {"gone": 1})
    assert same_value("", float("nan")) and same_value(3, 3.0) and not same_value(0.1, 0.1 + 1e-17 + 1e-16)
    assert same_value(False, False) and not same_value(True, "False")


def test_rows_compare_exactly_under_one_arithmetic_and_within_tolerance_across_arithmetics():
    """Issue 23: bitwise where the arithmetic is the same; across arithmetics the measured numbers
    within the documented tolerance, but what the run chose (rate, epochs, stop reason) exactly."""
    import pandas as pd

    from mtlmech.pipeline.retraining import compare_rows
    saved = pd.DataFrame([{"condition": "STL", "task": "T1", "test_mse": 0.08774830400943756, "lr": 0.5,
                           "stop_epoch": 1140, "stopped_by": "patience"}])
    rounding = [{"condition": "STL", "task": "T1", "test_mse": 0.08774831891, "lr": 0.5, "stop_epoch": 1140,
                 "stopped_by": "patience"}]
    assert compare_rows(rounding, saved) != []                    # same arithmetic: bitwise
    assert compare_rows(rounding, saved, exact=False) == []       # another: within tolerance
    for change in ({"lr": 1.0}, {"stop_epoch": 1150}, {"stopped_by": "cap"}, {"test_mse": 0.0900}):
        moved = [{**rounding[0], **change}]
        assert compare_rows(moved, saved, exact=False) != [], change
