"""run_all.py: listing, bad names, and a quick-profile run that writes REPORT.md and leaves figures/ alone."""

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_quick_suite_covers_every_claim_and_never_touches_committed_figures(tmp_path, capsys):
    """The whole quick suite (4 seeds) runs, and REPORT.md has a verdict for every claim family of docs/CLAIMS.md."""
    before = tree_digest(ROOT / "figures")
    args = ["--profile", "quick", "--seeds", "4", "--out", str(tmp_path), "--no-progress"]
    assert run_all.main(args) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert report.startswith("# mtlmech report (quick profile — preliminary)") and "\n## Claims\n" in report
    assert (tmp_path / "overview.png").exists() and (tmp_path / "parity_tasks" / "README.md").exists()
    claim_ids = ["RB1a", "RB1b", "RB2a", "RB2b", "RB2c", "RB3", "DA1", "DA2", "DA3", "DA4", "AS1", "EV1", "EV2",
                 "OF1", "OF2", "CT1", "CT2", "CT3", "CT4", "CT5", "CT6", "PK1", "PK2", "IO1", "IO2", "TR1"]
    missing = [c for c in claim_ids if f"\n| [{c}" not in report]   # a family: its ID or a part (CT4a)
    assert not missing, f"claims without a verdict: {missing}"
    assert run_all.main(args[:-1] + ["--only", "parity_tasks", "--no-progress"]) == 0
    assert "computed 0, reused 8" in capsys.readouterr().out
    # the cache key names the trainer that runs: the reference trainer is another computation (recomputed)
    assert run_all.main(args[:-1] + ["--only", "peaks", "--backend", "torch", "--no-progress"]) == 0
    assert re.search(r"peaks: computed [1-9]\d*, reused 0", capsys.readouterr().out)
    summary = json.loads((tmp_path / "peaks" / "summary.json").read_text())
    assert summary["provenance"]["backend"] == "torch"
    assert tree_digest(ROOT / "figures") == before


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        run_all.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--profile" in out and "(default: full)" in out and "(default: cpu)" in out
    assert "MTLMECH_PROGRESS_EVERY" in out
