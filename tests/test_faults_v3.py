"""Faults v3 (issue 30): nothing read from a results file is trusted.

- retrain resolves an experiment name only in the project's registry, never as a path;
- a plugin problem's fingerprint covers its source, so an edit on a few inputs is never reused
  (built-in fingerprints, part of the committed cache keys, unchanged);
- a planted ``.commit.json`` never moves a file outside its folder;
- a garbage manifest or commit point is set aside before training; readers (``load``,
  ``load_claims``, ``mtlmech show``/``report``, ``--replot``, ``retrain``) check every file against
  the manifest, refuse a half-committed folder, and turn every unreadable file into one line
  (CLI, exit 2) or an ``OutputsError`` (a ValueError naming the file);
- temp files no live process owns are cleaned at once; a failed write (full disk, read-only) is one line.
(The bad plugins of issue 31 are cases of ``benchmarks/fault_cases.py``, run by ``tests/test_faults.py``.)
"""

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import mtlmech
from mtlmech.console import main as mtlmech_main
from mtlmech.pipeline.outputs import (
    COMMIT,
    MANIFEST,
    STAGING,
    OutputsError,
    UnverifiedOutputsWarning,
    digest,
    safe_name,
)
from mtlmech.pipeline.retraining import RetrainError
from mtlmech.pipeline.store import clean_stale_tmp, temp_path
from mtlmech.problems.tasks import load_plugin, make_problem, problem_names

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import compare  # noqa: E402
import parity_tasks  # noqa: E402

TINY = ["--profile", "quick", "--n-train", "16", "32", "--primary-n", "16", "--n-test", "50", "--n-halt", "20",
        "--net.hidden", "4", "--train.lr-grid", "1", "2", "--train.epochs", "40", "--no-progress"]


@pytest.fixture
def out(parity_tiny_out, tmp_path):
    """A fresh copy of a tiny trained output root (3 seeds, with its cache)."""
    shutil.copytree(parity_tiny_out / "parity_tasks", tmp_path / "out" / "parity_tasks")
    return tmp_path / "out"


def resign(folder: Path, *names: str) -> None:
    """Record the present content of ``names`` in the folder's manifest (an edit the manifest accepts)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in names:
        manifest["files"][name] = digest(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def cli(argv, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = mtlmech_main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def one_line(code, lines, *says):
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (code, lines)
    assert all(s in lines[0] for s in says), lines


# ---------------------------------------------------------------------------------------------- critical

@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_retrain_never_imports_a_file_a_results_folder_names(out, tmp_path, how):
    project = tmp_path / "a" / "proj"                       # the project retrain resolves names in
    (project / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "parity_tasks.py", project / "experiments")
    evil = tmp_path / "a" / "sec" / "evil.py"               # <project>/experiments/../../sec/evil.py
    evil.parent.mkdir(parents=True)
    marker = tmp_path / "owned"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    folder = out / "parity_tasks"
    summary = json.loads((folder / "summary.json").read_text())
    summary["experiment"] = "../../sec/evil" if how == "relative" else str(evil.with_suffix(""))
    (folder / "summary.json").write_text(json.dumps(summary))
    resign(folder, "summary.json")                          # even a summary the manifest vouches for
    unit = json.loads((folder / "units.json").read_text()).popitem()[0]
    with pytest.raises(RetrainError, match="no registered experiment"):
        mtlmech.retrain("parity_tasks", unit, 0, out=out, root=project)
    assert not marker.exists()


def test_an_unrecorded_summary_edit_is_refused_before_retraining(out):
    folder = out / "parity_tasks"
    (folder / "summary.json").write_text((folder / "summary.json").read_text().replace('"parity_tasks"', '"evil"', 1))
    with pytest.raises(RetrainError, match="summary.json differs from the copy manifest.json records"):
        mtlmech.retrain("parity_tasks", "0", 0, out=out)


RARE_PLUGIN = '''
from mtlmech.problems.features import Feature, var
from mtlmech.problems.inputs import InputSpace
from mtlmech.problems.tasks import Problem, Task, register_problem
from rare_helper import EDGE


@register_problem("rare_edit")
def rare_edit() -> Problem:
    """Its main task differs between versions only where all 12 bits are on (1 input in 4096)."""
    def target(z):
        return (z[:, 0] + (z.sum(axis=1) == 12) * FLIP) % 2
    return Problem(name="rare_edit", inputs=InputSpace(n_vars=12, kind="bits"),
                   tasks=(Task("T", Feature("T", target)), Task("U", var(1))))
'''


def test_a_plugin_edited_on_few_inputs_gets_a_new_fingerprint(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "rare_helper.py").write_text("EDGE = 1\n")
    plugin = tmp_path / "rare_edit.py"
    prints, sampled = [], []
    for flip in (0, 1):
        plugin.write_text(RARE_PLUGIN.replace("FLIP", str(flip)))
        load_plugin(plugin)
        problem = make_problem("rare_edit")
        prints.append(problem.fingerprint())
        sampled.append(dataclasses.replace(problem, source="").fingerprint())
    assert sampled[0] == sampled[1]          # the sampled rows alone miss this edit ...
    assert prints[0] != prints[1]            # ... the source does not
    (tmp_path / "rare_helper.py").write_text("EDGE = 2\n")    # what the plugin imports from outside the library
    sys.modules.pop("rare_helper", None)
    load_plugin(plugin)
    assert make_problem("rare_edit").fingerprint() not in prints


BUILTIN_FINGERPRINTS = {   # before faults v3: part of the committed results' cache keys, must never change
    "amp_blocking_pair": "828143d765a19ace", "amp_noisy_copies": "816ad7a7de567c61",
    "amp_readout_pair": "26e91eeec1990f05", "amp_sampling_pair": "722de81eb7b647b4",
    "attribute_selection": "00b5fe1f12661f8a", "blocked_family": "60c9e12f962d7f3a",
    "c93_parity": "c6b24e31e465f99c", "early_late": "b55d365e16334eed", "eavesdropping": "b2735c9232e15533",
    "hint_pair": "153a005265cbdd32", "inputs_as_outputs": "411bdcef5e9e78ab", "noise_output": "8db2cb95be5ef5ca",
    "noisy_copies": "be9d0c6de2045f01", "peaks": "67d6f3275961f3be"}


def test_builtin_fingerprints_are_unchanged():
    assert {n: make_problem(n).fingerprint() for n in problem_names() if n in BUILTIN_FINGERPRINTS} \
        == BUILTIN_FINGERPRINTS
    assert make_problem("c93_parity").source == ""


def test_a_planted_commit_point_never_moves_a_file_outside_its_folder(out, capsys):
    folder = out / "parity_tasks"
    bait = folder / "planted" / "owned.sh"                  # <staging>/../../planted/owned.sh
    bait.parent.mkdir()
    bait.write_text("#!/bin/sh\necho owned\n")
    (folder / STAGING / "parity_tasks").mkdir(parents=True)
    (folder / COMMIT).write_text(json.dumps({"format": 1, "rows": 1, "files": {"../../planted/owned.sh": digest(bait)}}))
    before = (folder / "runs.csv").read_bytes()
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)]) == 0
    assert "outside its folder" in capsys.readouterr().err
    assert bait.exists() and not (out.parent / "planted").exists()
    assert (folder / (COMMIT + ".corrupt")).exists() and (folder / "runs.csv").read_bytes() == before


@pytest.mark.parametrize("name, ok", [("runs.csv", True), ("figs/a.png", True), ("../x", False), ("/etc/passwd", False),
                                      ("a/../../b", False), (".lock", False), ("a\\..\\b", False), ("", False),
                                      (5, False), ("a//b", False)])
def test_safe_names(name, ok):
    assert safe_name(name) is ok


# ---------------------------------------------------------------------------------------------- wedged folders

@pytest.mark.parametrize("damaged, extra", [(MANIFEST, []), (COMMIT, []), (MANIFEST, ["--force"])])
def test_a_garbage_manifest_or_commit_point_is_set_aside_before_training(out, capsys, damaged, extra):
    folder = out / "parity_tasks"
    (folder / damaged).write_text("{garbage")
    if damaged == COMMIT:
        (folder / STAGING / "parity_tasks").mkdir(parents=True)
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "3", "--out", str(out), *extra]) == 0
    err = capsys.readouterr().err
    assert f"set aside {folder / damaged} is unreadable" in err
    assert (folder / (damaged + ".corrupt")).read_text() == "{garbage"
    assert not (folder / STAGING).exists() and not (folder / COMMIT).exists()
    assert len(mtlmech.load("parity_tasks", out=out)) > 0      # a consistent, verified folder again


# ---------------------------------------------------------------------------------------------- silent reads

def _drop5(t):
    return "".join(t.splitlines(True)[:-5])


def _swap_header(t):
    head, rest = t.split("\n", 1)
    cols = head.split(",")
    i, j = cols.index("test_error"), cols.index("test_mse")
    cols[i], cols[j] = cols[j], cols[i]
    return ",".join(cols) + "\n" + rest


READ_DAMAGE = {
    "runs.csv: 5 lines dropped": ("runs.csv", _drop5),
    "runs.csv: truncated mid-line": ("runs.csv", lambda t: t[: len(t) // 2 + 7]),
    "runs.csv: header columns swapped": ("runs.csv", _swap_header),
    "units.json: edited": ("units.json", lambda t: t.replace('"quick"', '"full"', 1)),
}


@pytest.mark.parametrize("kind", list(READ_DAMAGE))
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_load_checks_what_it_reads(out, kind, manifest):
    folder = out / "parity_tasks"
    name, damage = READ_DAMAGE[kind]
    (folder / name).write_text(damage((folder / name).read_text()))
    if not manifest:    # removed: summary.json's own record of the data files is checked instead
        (folder / MANIFEST).unlink()
    with pytest.raises(OutputsError, match=name.replace(".", r"\.") + " differs from the copy"):
        mtlmech.load("parity_tasks", out=out)


def test_outputs_without_any_record_are_said_once_to_be_unverified(out):
    folder = out / "parity_tasks"
    (folder / MANIFEST).unlink()
    summary = json.loads((folder / "summary.json").read_text())
    del summary["files"]
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.warns(UnverifiedOutputsWarning, match="cannot be verified"):
        mtlmech.load("parity_tasks", out=out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mtlmech.load("parity_tasks", out=out)                  # once per folder


def _flip_digit(path: Path) -> None:
    text = path.read_text()
    at = text.index('"effect": ') + len('"effect": ') + 3
    at = next(i for i in range(at, len(text)) if text[i].isdigit())
    path.write_text(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1:])


def test_a_flipped_digit_in_summary_json_is_refused_by_every_reader(out, capsys):
    folder = out / "parity_tasks"
    _flip_digit(folder / "summary.json")
    with pytest.raises(OutputsError, match="summary.json differs"):
        mtlmech.load_claims("parity_tasks", out=out)
    one_line(*cli(["show", "parity_tasks", "--out", str(out)], capsys), "summary.json differs")
    one_line(*cli(["report", "--out", str(out)], capsys), "summary.json differs")
    assert not (out / "REPORT.md").exists()


def test_replot_without_a_manifest_and_an_edited_runs_csv_is_refused(out, capsys):
    folder = out / "parity_tasks"
    (folder / MANIFEST).unlink()
    (folder / "runs.csv").write_text((folder / "runs.csv").read_text().replace(",STL,", ",MTL,", 1))
    summary = (folder / "summary.json").read_bytes()
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs.csv differs from the copy summary.json records" in err[0]
    assert (folder / "summary.json").read_bytes() == summary


# ---------------------------------------------------------------------------------------------- tracebacks

SUMMARY_DAMAGE = {
    "garbage": lambda p: p.write_text("not json"),
    "truncated": lambda p: p.write_text(p.read_text()[:200]),
    "empty object": lambda p: p.write_text("{}"),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("kind", list(SUMMARY_DAMAGE))
@pytest.mark.parametrize("command", ["report", "show"])
@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "not-recorded"])
def test_report_and_show_on_a_broken_summary_are_one_line(out, capsys, kind, command, recorded):
    folder = out / "parity_tasks"
    SUMMARY_DAMAGE[kind](folder / "summary.json")
    if recorded and kind != "a folder":
        resign(folder, "summary.json")       # the manifest agrees: the parse itself must fail cleanly
    before = snapshot(folder)
    argv = [command] + (["parity_tasks"] if command == "show" else []) + ["--out", str(out)]
    one_line(*cli(argv, capsys), "summary.json")
    assert snapshot(folder) == before and not (out / "REPORT.md").exists()


def test_replot_with_garbage_extras_is_one_line(out, capsys):
    folder = out / "parity_tasks"
    (folder / "extras.json").write_text("[1, 2")
    resign(folder, "extras.json")
    before = snapshot(folder)
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "extras.json is unreadable" in err[0]
    assert snapshot(folder) == before


@pytest.mark.parametrize("what", ["cache", ".lock", ".staging"])
def test_a_folder_entry_of_the_wrong_kind_is_one_line(tmp_path, capsys, what):
    folder = tmp_path / "parity_tasks"
    folder.mkdir()
    (folder / what).mkdir() if what == ".lock" else (folder / what).write_text("x")
    code = parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --out") and what in err[0], err
    assert sorted(p.name for p in folder.iterdir()) == [what]


@pytest.mark.parametrize("content, says", [("[]", "units.json is not a table"), ("garbage", "units.json is unreadable")])
def test_load_on_a_units_json_that_is_not_a_table(out, content, says):
    folder = out / "parity_tasks"
    (folder / "units.json").write_text(content)
    resign(folder, "units.json")
    with pytest.raises(OutputsError, match=says):
        mtlmech.load("parity_tasks", out=out)


@pytest.mark.parametrize("content", [b"", b"\x89\xff\xfe\x00binary\x00" * 20])
def test_load_on_an_empty_or_binary_runs_csv_names_it(out, content):
    folder = out / "parity_tasks"
    (folder / "runs.csv").write_bytes(content)
    resign(folder, "runs.csv")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["rows"] = None
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OutputsError, match=r"runs\.csv is unreadable"):
        mtlmech.load("parity_tasks", out=out)


# ---------------------------------------------------------------------------------------------- readers during a kill

def test_readers_refuse_a_folder_killed_between_its_renames_and_the_next_run_finishes_it(out, tmp_path, capsys):
    folder = out / "parity_tasks"
    newer = tmp_path / "newer"                      # the same run with more seeds, committed by hand up to a kill
    assert parity_tasks.EXPERIMENT.main(TINY + ["--seeds", "4", "--out", str(newer)]) == 0
    stage = folder / STAGING / "parity_tasks"
    stage.mkdir(parents=True)
    names = [n for n in json.loads((newer / "parity_tasks" / MANIFEST).read_text())["files"]]
    for name in names:
        shutil.copy(newer / "parity_tasks" / name, stage / name)
    shutil.copy(newer / "parity_tasks" / MANIFEST, folder / COMMIT)
    os.replace(stage / "runs.csv", folder / "runs.csv")      # one rename done, then the kill
    with pytest.raises(OutputsError, match="interrupted while it committed"):
        mtlmech.load("parity_tasks", out=out)
    with pytest.raises(OutputsError, match="interrupted while it committed"):
        mtlmech.load_claims("parity_tasks", out=out)
    one_line(*cli(["report", "--out", str(out)], capsys), COMMIT)
    assert parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)]) == 0
    assert "finished writing" in capsys.readouterr().err
    assert mtlmech.load("parity_tasks", out=out)["seed"].nunique() == 4


def test_temp_files_of_a_dead_writer_are_cleaned_at_once_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    orphan = tmp_path / "cache" / f".seeds-000000-000002.json.p{pid}-ab12_xyz.tmp"
    orphan.parent.mkdir()
    orphan.write_text("{")
    fd, mine = temp_path(tmp_path / "runs.csv")             # this process's own, being written
    os.close(fd)
    assert Path(mine).name.startswith(f".runs.csv.p{os.getpid()}-")
    assert clean_stale_tmp(tmp_path) == [orphan] and Path(mine).exists()
    old = time.time() - 3 * 86400                               # a pid since reused by another process
    os.utime(mine, (old, old))
    assert clean_stale_tmp(tmp_path) == [Path(mine)]


# ---------------------------------------------------------------------------------------------- failed writes

def _enospc(*_, **__):
    raise OSError(errno.ENOSPC, "No space left on device", "runs.csv")


@pytest.mark.parametrize("where", ["outputs", "cache"])
def test_a_full_disk_mid_run_is_one_line_and_keeps_the_committed_outputs(out, capsys, monkeypatch, where):
    folder = out / "parity_tasks"
    before = {n: p for n, p in snapshot(folder).items() if not n.startswith("cache")}
    if where == "outputs":
        monkeypatch.setattr("mtlmech.pipeline.experiment.atomic_write_text", _enospc)
        args = TINY + ["--seeds", "3", "--out", str(out)]
    else:
        monkeypatch.setattr("mtlmech.pipeline.store.atomic_write_text", _enospc)
        args = TINY + ["--seeds", "4", "--out", str(out)]     # a new seed: a cache shard to write
    assert parity_tasks.EXPERIMENT.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "unchanged" in err[0], err
    assert {n: p for n, p in snapshot(folder).items() if not n.startswith("cache")} == before
    assert not (folder / STAGING).exists()


def test_report_into_a_folder_it_cannot_write_is_one_line(out, capsys, monkeypatch):
    def read_only(path, text):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr("mtlmech.pipeline.store.atomic_write_text", read_only)
    one_line(*cli(["report", "--out", str(out)], capsys), str(out), "Permission denied")   # the first file it writes


# ---------------------------------------------------------------------------------------------- compare folders

@pytest.mark.slow
def test_an_edited_plugin_gets_its_own_compare_folder(tmp_path, capsys):
    from test_compare import TINY as CMP
    from test_compare import write
    plugin = write(tmp_path / "user_pair.py", first=0)
    args = CMP + ["--plugin", str(plugin), "--out", str(tmp_path / "out")]
    assert compare.TOOL.main(args) == 0
    first = {p.name: (p / "runs.csv").read_bytes() for p in (tmp_path / "out").iterdir()}
    write(plugin, first=4)
    assert compare.TOOL.main(args) == 0
    folders = {p.name: (p / "runs.csv").read_bytes() for p in (tmp_path / "out").iterdir()}
    assert len(folders) == 2 and all(folders[k] == v for k, v in first.items())
