"""The mtlmech command, project-root resolution and progress lines for logs."""

import io
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from mtlmech import console
from mtlmech.pipeline import paths
from mtlmech.pipeline.experiment import default_out
from mtlmech.pipeline.runner import LogProgress, Unit, progress_bar, run_units

ROOT = Path(__file__).resolve().parent.parent


def one_line_error(err: str, text: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], err


def test_list_shows_experiments_problems_and_full_references(capsys):
    assert console.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "parity_tasks" in out and "c93_parity" in out
    assert "Machine Learning 28(1):41–75" in out and "CS97" in out


def test_show_prints_the_claims_of_a_committed_summary(capsys):
    assert console.main(["show", "parity_tasks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("parity_tasks (full profile") and out[1].split()[:2] == ["ID", "verdict"]
    assert out[2].startswith("DA4 ")


def test_unknown_names_and_missing_results_are_one_line_errors(tmp_path, capsys):
    assert console.main(["show", "nope"]) == 2
    one_line_error(capsys.readouterr().err, "no results for 'nope'")
    assert console.main(["run", "nope"]) == 2
    one_line_error(capsys.readouterr().err, "unknown experiment 'nope'; known: ")
    assert console.main(["report", "--out", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "no <experiment>/summary.json under")
    with pytest.raises(SystemExit) as exc:
        console.main(["frobnicate"])
    assert exc.value.code == 2
    one_line_error(capsys.readouterr().err, "invalid choice: 'frobnicate'")


def test_run_then_show_and_report(tmp_path, capsys, parity_tiny):
    assert console.main(["run", "parity_tasks", *parity_tiny, "--seeds", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "parity_tasks" / "units.json").exists()
    assert console.main(["show", "parity_tasks", "--out", str(tmp_path)]) == 0
    assert "DA4" in capsys.readouterr().out
    assert console.main(["report", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert report.startswith("# mtlmech report (quick profile — preliminary)") and "command" not in report
    assert (tmp_path / "parity_tasks" / "README.md").exists() and (tmp_path / "overview.png").exists()


def test_run_all_passes_every_flag_through(capsys):
    with pytest.raises(SystemExit) as exc:
        console.main(["run-all", "--help"])
    assert exc.value.code == 0 and "usage: mtlmech run-all" in capsys.readouterr().out
    assert console.main(["run-all", "--only", "nope"]) == 2
    one_line_error(capsys.readouterr().err, "unknown experiment(s) nope")


def test_root_is_searched_from_the_working_directory_never_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.chdir(ROOT / "docs")                      # a subfolder of the project
    assert paths.project_root() == ROOT and default_out("full") == ROOT / "figures"
    monkeypatch.chdir(tmp_path)                           # not a project
    assert console.main(["list"]) == 2
    one_line_error(capsys.readouterr().err, "no mtlmech project at or above")
    assert console.main(["--root", str(tmp_path), "list"]) == 2
    one_line_error(capsys.readouterr().err, "--root")
    monkeypatch.setenv(paths.ENV, str(tmp_path))
    assert console.main(["list"]) == 2
    one_line_error(capsys.readouterr().err, f"{paths.ENV} {tmp_path.resolve()} is not an mtlmech project")
    monkeypatch.setenv(paths.ENV, str(ROOT))
    assert paths.project_root() == ROOT


def test_a_copied_project_writes_its_own_outputs(tmp_path, monkeypatch, capsys, parity_tiny):
    """An experiment file writes under the project that holds it, wherever mtlmech is installed."""
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "parity_tasks.py", project / "experiments")
    monkeypatch.delenv(paths.ENV, raising=False)
    monkeypatch.setattr(paths, "_chosen", None)          # restored after the test (--root sets it)
    monkeypatch.chdir(project / "experiments")
    assert console.main(["run", "parity_tasks", *parity_tiny, "--seeds", "2"]) == 0
    assert (project / "results" / "quick" / "parity_tasks" / "units.json").exists()
    monkeypatch.chdir(tmp_path)                           # --root from outside the project: same cache
    capsys.readouterr()
    assert console.main(["--root", str(project), "run", "parity_tasks", *parity_tiny, "--seeds", "2"]) == 0
    assert "parity_tasks: computed 0, reused 4" in capsys.readouterr().out


def test_python_dash_m_mtlmech_outside_a_project(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(paths.ENV, None)
    proc = subprocess.run([sys.executable, "-m", "mtlmech", "list"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    one_line_error(proc.stderr, "no mtlmech project at or above")


@pytest.mark.slow
def test_non_editable_install_runs_from_a_fresh_copy(tmp_path, parity_tiny):
    """pip-installed (not editable) into a venv, the console script writes into the project it is run
    in, not into site-packages."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md", "mtlmech", "experiments"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, clone / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(clone),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    # The venv sees this interpreter's packages (torch, pandas, ...) through a .pth file naming its
    # site-packages: `venv --system-site-packages` would give it the *base* interpreter's packages
    # instead, which lack them when the tests run inside a venv (as the README's install makes).
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    venv_site = subprocess.run([tmp_path / "venv" / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(venv_site) / "_mtlmech_test_parent.pth").write_text("".join(f"{d}\n" for d in ours))
    wheel = next((tmp_path / "dist").glob("mtlmech-*.whl"))
    subprocess.run([tmp_path / "venv" / "bin" / "pip", "install", "-q", "--no-deps", wheel], check=True,
                   capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", paths.ENV)}
    where = subprocess.run([tmp_path / "venv" / "bin" / "python", "-c", "import mtlmech; print(mtlmech.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert "site-packages" in where
    run = subprocess.run([tmp_path / "venv" / "bin" / "mtlmech", "run", "parity_tasks", *parity_tiny, "--seeds", "2"],
                         cwd=clone / "experiments", env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (clone / "results" / "quick" / "parity_tasks" / "units.json").exists()
    assert not list((tmp_path / "venv").rglob("results"))


def test_log_progress_prints_done_total_and_eta_lines():
    buffer = io.StringIO()
    with LogProgress(total=10, every=0.05, file=buffer) as bar:
        bar.set_postfix_str("n=16")
        time.sleep(0.12)
        bar.update(4)
        time.sleep(0.12)
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("seeds: 0 % of the work done (seeds 0/10)") and "ETA after the first shard" in lines[0]
    assert lines[0].endswith("[n=16]")
    assert any(line.startswith("seeds: 40 % of the work done (seeds 4/10)") and "ETA " in line
               and "first shard" not in line for line in lines)
    assert lines[-1].startswith("seeds: seeds 4/10 done in ")


def test_log_progress_weighs_shards_by_their_work_and_names_the_run():
    buffer = io.StringIO()
    bar = LogProgress(total=20, every=60, desc="toy", file=buffer, total_work=100.0)
    bar.start("light", 10, 10.0)
    time.sleep(0.05)
    bar.update(10, 10.0)                     # half the seeds, a tenth of the work
    line = bar.line()
    assert line.startswith("toy: 10 % of the work done (seeds 10/20)")
    assert bar.eta() == pytest.approx(9 * bar._busy, rel=1e-6)     # 90 units left at the rate of the first 10
    bar.start("heavy", 10, 90.0)
    assert "[heavy: 10 seeds running for " in bar.line()
    assert bar.eta() <= 9 * bar._busy


def test_run_units_reports_progress_when_output_is_not_a_terminal(tmp_path, capsys):
    def compute(seeds):
        time.sleep(0.1)
        return {s: {"rows": [{"v": s}], "extra": {}} for s in seeds}
    assert isinstance(progress_bar(5, None), LogProgress)        # pytest's stderr is not a terminal
    assert not isinstance(progress_bar(5, False), LogProgress)
    run_units([Unit(key={"k": 1}, compute=compute, label="toy")], range(4), tmp_path, shard_size=1,
              progress_every=0.05)
    err = capsys.readouterr().err
    assert "seeds: seeds 4/4 done in" in err and "[toy: 1 seed running for" in err
    run_units([Unit(key={"k": 2}, compute=compute)], range(4), tmp_path, shard_size=1, progress=False,
              progress_every=0.05)
    assert capsys.readouterr().err == ""
