"""Faults and bad input (issue 16): every bad input is one line naming its flag with exit code 2,
before anything is trained or written; outputs are written as one unit under a folder lock;
cache shards are checked against their unit; --replot checks what it reads and records what the
runs were trained with; saturated nets are flagged; too few runs give no definite verdict."""

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import mtlmech.pipeline.checks
from mtlmech.engine.training import TrainSpec
from mtlmech.pipeline.outputs import COMMIT, MANIFEST, STAGING, FolderLock, OutputSet, recover, verify
from mtlmech.pipeline.runner import Unit, run_units
from mtlmech.pipeline.store import (
    CorruptCacheWarning,
    SeedCache,
    _checksum,
    atomic_write_text,
    clean_stale_tmp,
    skipped,
)
from mtlmech.problems.tasks import make_problem
from mtlmech.protocol import Condition, score_rows, train_conditions
from mtlmech.report import plots

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import compare  # noqa: E402
import parity_tasks  # noqa: E402
from fault_cases import CASES, generic_cases, handled, make_files, run_case  # noqa: E402

import run_all  # noqa: E402

EXPERIMENTS = run_all.discover()
TARGETS = {**{name: e.main for name, e in EXPERIMENTS.items()}, "compare": compare.TOOL.main, "run_all": run_all.main}
TINY = ["--profile", "quick", "--n-train", "16", "32", "--primary-n", "16", "--n-test", "50", "--n-halt", "20",
        "--net.hidden", "4", "--train.lr-grid", "1", "2", "--train.epochs", "200", "--train.eval-every", "5",
        "--train.patience", "3", "--no-progress"]


# ---------------------------------------------------------------------------------------------- bad input

ALL_CASES = CASES + generic_cases(EXPERIMENTS)


@pytest.mark.parametrize("target, args, flag", ALL_CASES, ids=[f"{t}:{' '.join(a)}" for t, a, _ in ALL_CASES])
def test_bad_input_is_one_line_naming_the_flag_exit_2_nothing_written(target, args, flag, tmp_path, monkeypatch):
    monkeypatch.setenv("MTLMECH_DASK_TIMEOUT", "1")
    make_files(tmp_path)
    result = run_case(target, args, tmp_path, TARGETS)
    assert handled(result, flag), result


def test_there_are_at_least_40_cases_across_experiments_and_run_all():
    assert len(CASES) >= 40
    assert {t for t, _, _ in ALL_CASES} >= set(EXPERIMENTS) | {"compare", "run_all"}
    assert all(len([c for c in ALL_CASES if c[0] == name]) >= 2 for name in EXPERIMENTS)


@pytest.mark.parametrize("target", ["parity_tasks", "run_all"])
def test_a_full_disk_is_refused_before_training(target, tmp_path, monkeypatch):
    monkeypatch.setattr(mtlmech.pipeline.checks.shutil, "disk_usage", lambda _: type("U", (), {"free": 1 << 20})())
    result = run_case(target, [], tmp_path, TARGETS)
    assert handled(result, "--out") and "free" in result["lines"][0], result


@pytest.mark.parametrize("plugin, flag", [(None, "--plugin"), ("raises.py", "--plugin"), ("binary.py", "--plugin")])
def test_compare_list_with_a_bad_plugin(plugin, flag, tmp_path, monkeypatch, capsys):
    """``compare.py --list --plugin FILE`` runs outside the driver (the script's ``__main__`` block)."""
    import runpy
    make_files(tmp_path)
    monkeypatch.setattr(sys, "argv", ["compare.py", "--list", "--plugin"] + ([str(tmp_path / plugin)] if plugin else []))
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "experiments" / "compare.py"), run_name="__main__")
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], lines


# ---------------------------------------------------------------------------------------------- atomic writes

def test_figures_are_written_atomically_and_respect_the_umask(tmp_path, monkeypatch):
    target = tmp_path / "fig.png"
    fig, ax = plots.new_figure()
    ax[0, 0].plot([0, 1], [0, 1])
    old = os.umask(0o027)
    try:
        plots.save(fig, target)
    finally:
        os.umask(old)
    good = target.read_bytes()
    assert good.startswith(b"\x89PNG") and (target.stat().st_mode & 0o777) == 0o640
    fig, ax = plots.new_figure()

    def killed(fh, **kwargs):      # a kill half-way through writing the PNG
        fh.write(b"\x89PNG partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(fig, "savefig", killed)
    with pytest.raises(KeyboardInterrupt):
        plots.save(fig, target)
    assert target.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_atomic_text_writes_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_outputs_commit_as_one_unit_and_a_kill_at_either_side_of_the_commit_point_recovers(tmp_path):
    out = tmp_path / "exp"
    first = OutputSet(out)
    stage = first.begin()
    for name, text in (("runs.csv", "a\n1\n"), ("summary.json", '{"n_runs": 1}')):
        (stage / name).write_text(text)
    first.commit(rows=1)
    assert verify(out, ["runs.csv", "summary.json"], rows=1) == [] and not (out / STAGING).exists()
    # killed before the commit point: the staged files are discarded, the old ones untouched
    second = OutputSet(out)
    stage = second.begin()
    (stage / "runs.csv").write_text("a\n1\n2\n")
    assert "discarded" in recover(out)
    assert (out / "runs.csv").read_text() == "a\n1\n" and verify(out, ["runs.csv", "summary.json"], rows=1) == []
    # killed after the commit point, half-way through the renames: rolled forward
    third = OutputSet(out)
    stage = third.begin()
    (stage / "runs.csv").write_text("a\n1\n2\n")
    (stage / "summary.json").write_text('{"n_runs": 2}')
    manifest = {"format": 1, "rows": 2, "files": {n: __import__("mtlmech.pipeline.outputs").pipeline.outputs.digest(stage / n)
                                                   for n in ("runs.csv", "summary.json")}}
    (out / COMMIT).write_text(json.dumps(manifest))
    os.replace(stage / "runs.csv", out / "runs.csv")          # one rename done, then the kill
    assert "finished" in recover(out)
    assert json.loads((out / "summary.json").read_text()) == {"n_runs": 2}
    assert verify(out, ["runs.csv", "summary.json"], rows=2) == [] and json.loads((out / MANIFEST).read_text())["rows"] == 2


def test_a_run_killed_while_writing_outputs_leaves_the_previous_run_intact(tmp_path, monkeypatch):
    args = TINY + ["--seeds", "2", "--out", str(tmp_path)]
    assert parity_tasks.EXPERIMENT.main(args) == 0
    folder = tmp_path / "parity_tasks"
    before = {n: (folder / n).read_bytes() for n in ("runs.csv", "summary.json", "units.json", MANIFEST)}

    def killed(self, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(OutputSet, "commit", killed)
    # Ctrl-C ends the run with one line and exit code 130 (issue 30), the outputs untouched
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "3", "--out", str(tmp_path)]) == 130
    assert {n: (folder / n).read_bytes() for n in before} == before
    monkeypatch.undo()
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "3", "--out", str(tmp_path)]) == 0
    assert not (folder / STAGING).exists() and verify(folder, rows=len(pd.read_csv(folder / "runs.csv"))) == []
    assert pd.read_csv(folder / "runs.csv")["seed"].nunique() == 3


def test_a_second_run_into_a_locked_folder_stops_with_one_line(tmp_path, capsys):
    folder = tmp_path / "parity_tasks"
    with FolderLock(folder):
        assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --out") and "in use by another run" in err[0]
        assert "pid" in err[0] and sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(tmp_path)]) == 0   # free again


# ---------------------------------------------------------------------------------------------- cache trust

def fake_unit(calls):
    def compute(seeds):
        calls.append(list(seeds))
        return {s: {"rows": [{"test_error": 0.1 * s, "condition": "STL"}, {"test_error": 0.2, "condition": "MTL"}],
                    "extra": {}} for s in seeds}
    return Unit(key={"k": "fault"}, compute=compute, label="fake")


def rewrite(shard: Path, edit) -> None:
    """Edit a shard's payload and recompute its checksum (a forged but well-formed file)."""
    doc = json.loads(shard.read_text())
    edit(doc["payload"])
    doc.update(format=1, checksum=_checksum(doc["payload"]))   # format 1 is still read
    shard.write_text(json.dumps(doc))


@pytest.mark.parametrize("what, edit", [
    ("empty rows", lambda p: p["1"].update(rows=[])),
    ("wrong seed field", lambda p: p["1"]["rows"][0].update(seed=7)),
    ("wrong unit field", lambda p: p["1"]["rows"][0].update(unit="0" * 16)),
    ("wrong type", lambda p: p["1"]["rows"][0].update(test_error="0.1")),
    ("rows not records", lambda p: p["1"].update(rows="abc")),
    ("seed outside the file's range", lambda p: p.update({"9": p.pop("2")})),
    ("row count unlike the unit's other seeds", lambda p: p["1"]["rows"].pop()),
])
def test_a_forged_shard_that_does_not_fit_its_unit_is_set_aside_and_recomputed(tmp_path, what, edit):
    calls = []
    unit = fake_unit(calls)
    run_units([unit], range(3), tmp_path)
    run_units([unit], range(3, 6), tmp_path)     # a second shard: the unit's other seeds
    shard = SeedCache(tmp_path, unit.hash).dir / "seeds-000000-000002.json"
    rewrite(shard, edit)
    with pytest.warns(CorruptCacheWarning):
        report = run_units([unit], range(6), tmp_path)
    assert (report.computed, report.reused) == (3, 3) and calls[-1] == [0, 1, 2]
    assert shard.with_name(shard.name + ".corrupt").exists()
    assert report.records[unit.hash][1]["rows"][0]["seed"] == 1


def test_seeds_a_unit_does_not_run_are_kept_as_skipped_not_corrupt(tmp_path, recwarn):
    """A unit that runs only its first seeds (inputs_as_outputs' arms) records the others as skipped:
    reused from the cache, never set aside, and not counted against the other seeds' row count."""
    calls = []
    base = fake_unit(calls)

    def compute(seeds):
        done = base.compute([s for s in seeds if s < 2])
        return {s: done.get(s, skipped()) for s in seeds}
    unit = Unit(key={"k": "first-two"}, compute=compute, label="first two")
    run_units([unit], range(5), tmp_path)
    report = run_units([unit], range(5), tmp_path)
    assert (report.computed, report.reused) == (0, 5)
    assert not [w for w in recwarn if issubclass(w.category, CorruptCacheWarning)]
    assert report.records[unit.hash][4]["skipped"] and len(report.records[unit.hash][1]["rows"]) == 2


def test_mixed_types_across_shards_are_caught(tmp_path):
    calls = []
    unit = fake_unit(calls)
    for start in (0, 3, 6):
        run_units([unit], range(start, start + 3), tmp_path)
    shard = SeedCache(tmp_path, unit.hash).dir / "seeds-000003-000005.json"
    rewrite(shard, lambda p: [r["rows"][1].update(condition=5) for r in p.values()])   # consistent inside, not with the unit
    with pytest.warns(CorruptCacheWarning, match="value types"):
        assert run_units([unit], range(9), tmp_path).computed == 3


def test_a_second_corruption_keeps_the_first_corrupt_copy(tmp_path):
    unit = fake_unit([])
    shard = SeedCache(tmp_path, unit.hash).dir / "seeds-000000-000002.json"
    copies = []
    for i in range(3):
        run_units([unit], range(3), tmp_path)
        shard.write_text(f"garbage {i}")
        copies.append(f"garbage {i}")
        with pytest.warns(CorruptCacheWarning):
            run_units([unit], range(3), tmp_path)
    kept = sorted(p.read_text() for p in shard.parent.glob("*.corrupt*"))
    assert kept == copies


def test_stale_temporary_files_of_our_own_pattern_are_cleaned(tmp_path):
    old = time.time() - 3600
    ours_old = tmp_path / "cache" / ".seeds-000000-000002.json.ab12_xyz.tmp"
    ours_new = tmp_path / ".runs.csv.cd34efgh.tmp"
    foreign = tmp_path / ".notes.tmp"
    for p in (ours_old, ours_new, foreign):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    for p in (ours_old, foreign):
        os.utime(p, (old, old))
    assert clean_stale_tmp(tmp_path) == [ours_old]
    assert ours_new.exists() and foreign.exists()


def test_the_driver_cleans_a_killed_runs_tmp_files(tmp_path):
    stray = tmp_path / "parity_tasks" / "cache" / ".seeds-000000-000001.json.k1ll3d00.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"format": 1, "unit": "')
    os.utime(stray, (time.time() - 3600,) * 2)
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(tmp_path)]) == 0
    assert not stray.exists()


# ---------------------------------------------------------------------------------------------- --replot

@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def trained(trained_once, tmp_path):
    """A fresh copy of one tiny trained output folder."""
    import shutil
    shutil.copytree(trained_once / "parity_tasks", tmp_path / "parity_tasks")
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "drop rows", "edit a value"])
def test_replot_refuses_runs_csv_that_differs_from_the_record(trained, damage, capsys):
    runs = trained / "parity_tasks" / "runs.csv"
    text = runs.read_text()
    lines = text.splitlines(keepends=True)
    runs.write_text({"truncate": text[: len(text) // 2], "drop rows": "".join(lines[:-3]),
                     "edit a value": text.replace("STL", "MTL", 1)}[damage])
    summary = (trained / "parity_tasks" / "summary.json").read_bytes()
    capsys.readouterr()
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(trained)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--replot" in err[0] and "runs.csv" in err[0]
    assert (trained / "parity_tasks" / "summary.json").read_bytes() == summary


def test_replot_without_a_manifest_checks_the_summary_row_count(trained, capsys):
    folder = trained / "parity_tasks"
    (folder / MANIFEST).unlink()    # results written before manifests
    runs = folder / "runs.csv"
    runs.write_text("".join(runs.read_text().splitlines(keepends=True)[:-2]))
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(trained)]) == 2
    assert "summary.json records" in capsys.readouterr().err


def test_replot_records_what_the_runs_were_trained_with(trained, capsys):
    folder = trained / "parity_tasks"
    before = json.loads((folder / "summary.json").read_text())["provenance"]
    args = ["--profile", "quick", "--replot", "--net.hidden", "99", "--train.lr", "0.01", "--out", str(trained)]
    assert parity_tasks.EXPERIMENT.main(args) == 0
    assert "differ from it" in capsys.readouterr().err
    prov = json.loads((folder / "summary.json").read_text())["provenance"]
    for key in ("command", "config", "seeds", "device", "stream", "backend", "git_commit", "compute_seconds"):
        assert prov[key] == before[key], key
    assert prov["config"]["net"]["hidden"] == [4] and "--replot" not in prov["command"]
    assert "--replot" in prov["replot"]["command"]
    assert prov["replot"]["overrides"] == {"net.hidden": [99], "train.lr": 0.01}
    assert verify(folder, rows=len(pd.read_csv(folder / "runs.csv"))) == []   # the replot committed a manifest too


# ---------------------------------------------------------------------------------------------- divergence

def test_a_net_blown_into_saturation_is_flagged_though_its_loss_is_finite():
    problem = make_problem("c93_parity", n_bits=6, parity_bits=(1, 2, 3))
    main = problem.task_names[0]
    conditions = [Condition("STL", (main,)), Condition("MTL", tuple(problem.task_names), report=(main,))]
    rows = {}
    for lr in (0.5, 500.0):
        spec = TrainSpec(lr=lr, momentum=0.9, epochs=100, eval_every=10)
        trained = train_conditions(problem, conditions, [0, 1, 2], key=("faults", lr), n_train=32, n_halt=16,
                                   n_test=32, net={"hidden": (4,)}, train_spec=spec)
        rows[lr] = [r for rec in score_rows(trained).values() for r in rec["rows"]]
    assert not any(r["saturated"] for r in rows[0.5])
    assert all(r["saturated"] and not r["diverged"] for r in rows[500.0])


def test_saturation_is_counted_in_the_training_record():
    from mtlmech.pipeline.experiment import training_record
    runs = pd.DataFrame({"unit": "u", "seed": [0, 0, 1, 2], "condition": "STL", "trained_tasks": "T",
                         "task": ["T", "T2", "T", "T"], "saturated": [False, True, None, False],
                         "diverged": False, "stopped_by": "patience"})
    record = training_record(runs)
    assert record["n_saturated"] == 1 and record["n_diverged"] == 0 and record["n"] == 3


def test_one_or_two_seeds_never_give_a_definite_verdict(tmp_path):
    for seeds in ("1", "2"):
        assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", seeds, "--out", str(tmp_path / seeds)]) == 0
        claims = json.loads((tmp_path / seeds / "parity_tasks" / "summary.json").read_text())["claims"]
        assert claims and all(c["verdict"] == "inconclusive" for c in claims)
        assert any("too few runs" in c["verdict_reason"] for c in claims)


def test_a_claim_without_a_declared_rule_is_refused():
    from mtlmech.stats import ClaimResult
    with pytest.raises(ValueError, match="declare its rule"):
        ClaimResult(id="V", statement="", source="", test="", effect=0.1, ci=(0.05, 0.2), p_value=None, n=3)


# ---------------------------------------------------------------------------------------------- Dask

@pytest.mark.slow
def test_the_local_cluster_serves_no_dashboard():
    import urllib.error
    import urllib.request

    from mtlmech.pipeline.experiment import make_client
    client = make_client("local:1")
    try:
        port = client.cluster.scheduler.http_server.port
        assert port != 8787
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5)
    finally:
        client.close()
        client.cluster.close()
