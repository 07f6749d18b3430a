"""run_all.py: listing, bad names, and a quick-profile run that writes REPORT.md and leaves figures/ alone."""

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import run_all  # noqa: E402


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and "cache" not in p.parts:
            h.update(p.relative_to(path).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_list_shows_every_experiment_and_problem(capsys):
    assert run_all.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("parity_tasks", "representation_bias", "data_amplification", "peaks", "controls", "c93_parity"):
        assert name in out
    assert "compare" not in out.split("problems")[0].split()   # the generic tool is not a suite experiment


def test_unknown_experiment_is_an_error(capsys):
    assert run_all.main(["--only", "nonexistent"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_quick_run_writes_report_and_never_touches_committed_figures(tmp_path, capsys):
    before = tree_digest(ROOT / "figures")
    args = ["--profile", "quick", "--only", "parity_tasks", "--seeds", "3", "--out", str(tmp_path), "--no-progress"]
    assert run_all.main(args) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Claims ledger" in report and "| DA4 |" in report and "## parity_tasks" in report
    assert "python run_all.py --profile quick" in report
    assert run_all.main(args) == 0
    assert "computed 0, reused" in capsys.readouterr().out
    assert tree_digest(ROOT / "figures") == before
