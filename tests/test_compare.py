"""experiments/compare.py, the tool for a user's own task: plugin edits never reuse stale results,
targets a sigmoid cannot reach are refused, probe sets are scored, each setting has its own folder."""

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import compare  # noqa: E402

PLUGIN = '''
from mtlmech.problems.features import and_, differs, linear, or_, var, xor
from mtlmech.problems.inputs import InputSpace
from mtlmech.problems.tasks import Problem, Task, register_problem


@register_problem("user_pair")
def user_pair(scale: float = 1.0) -> Problem:
    """A user's pair of tasks sharing an XOR feature."""
    f = xor(var(FIRST, "A"), var(1, "B"))
    return Problem(name="user_pair", inputs=InputSpace(n_vars=5, kind="bits"),
                   tasks=(Task("T", TARGET, kind=KIND), Task("U", or_(f, var(3)))),
                   features={"F": f}, probes={"A≠B": differs(var(FIRST, "A"), var(1, "B"))})
'''

TINY = ["--profile", "quick", "--problem", "user_pair", "--n-train", "16", "--seeds", "2", "--n-test", "40",
        "--n-halt", "20", "--net.hidden", "4", "--train.epochs", "40", "--train.lr-grid", "1", "--no-progress"]


def write(path: Path, first: int = 0, kind: str = "bool", target: str = "and_(f, var(2))") -> Path:
    path.write_text(PLUGIN.replace("FIRST", str(first)).replace("KIND", repr(kind)).replace("TARGET", target))
    return path


def test_editing_the_plugin_never_reuses_stale_results(tmp_path, capsys):
    plugin = write(tmp_path / "user_pair.py", first=0)
    args = TINY + ["--plugin", str(plugin), "--out", str(tmp_path / "out")]
    assert compare.TOOL.main(args) == 0
    assert "computed 2, reused 0" in capsys.readouterr().out
    assert compare.TOOL.main(args) == 0
    assert "computed 0, reused 2" in capsys.readouterr().out
    write(plugin, first=4)                       # same names, the feature now reads another input
    assert compare.TOOL.main(args) == 0
    assert "computed 2, reused 0" in capsys.readouterr().out


def test_probe_sets_are_scored_and_settings_get_their_own_folder(tmp_path, capsys):
    plugin = write(tmp_path / "user_pair.py")
    out = tmp_path / "out"
    assert compare.TOOL.main(TINY + ["--plugin", str(plugin), "--out", str(out), "--probes", "A≠B"]) == 0
    assert compare.TOOL.main(TINY + ["--plugin", str(plugin), "--out", str(out), "--n-halt", "24"]) == 0
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2 and all(f.startswith("compare_user_pair-") for f in folders)
    runs = [pd.read_csv(out / f / "runs.csv") for f in folders]
    with_probe = next(r for r in runs if "probe_A≠B_error" in r.columns)
    assert with_probe["probe_A≠B_error"].between(0, 1).all()


def test_targets_outside_the_sigmoid_range_are_refused(tmp_path, capsys):
    plugin = write(tmp_path / "user_pair.py", kind="real", target="linear({0: 1.5, 2: 1.0})")
    code = compare.TOOL.main(TINY + ["--plugin", str(plugin), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--net.output linear" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
