"""Command-line faults of issue 30 and the help of issue 24 §3.

Each bad input: one ``error:`` line naming its flag (or environment variable), exit code 2,
nothing written under the scratch folder (no output folder, no ``.lock``), no training started —
checked before the run lock or output folder exists. Hangs, out-of-memory kills and tracebacks
reported in issue 30 are refused by validation or by a memory estimate made before any work."""

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mtlmech.engine.common import MAX_EPOCHS, TrainSpec
from mtlmech.pipeline import cli
from mtlmech.pipeline.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import compare  # noqa: E402
import eavesdropping  # noqa: E402
import parity_tasks  # noqa: E402
import representation_bias  # noqa: E402
from fault_cases import handled, make_files, run_case  # noqa: E402

import run_all  # noqa: E402

TARGETS = {"parity_tasks": parity_tasks.EXPERIMENT.main, "compare": compare.TOOL.main, "run_all": run_all.main}
QUICK = ["--profile", "quick"]

CASES = [
    # hangs and out-of-memory kills: bounded or estimated before any work
    ("parity_tasks", ["--train.epochs", "99999999999999999999999"], "--train.epochs"),
    ("parity_tasks", ["--train.epochs", "1000000000"], "--train.epochs"),
    ("parity_tasks", ["--train.eval-every", "99999999999999999999999"], "--train.eval-every"),
    ("parity_tasks", ["--n-test", "30000000"], "--n-test"),
    ("parity_tasks", ["--n-test", "100000000000"], "--n-test"),
    ("parity_tasks", ["--n-halt", "100000000000"], "--n-halt"),
    ("parity_tasks", ["--net.hidden", "3000000"], "--net.hidden"),
    ("parity_tasks", ["--net.hidden", "100000000000"], "--net.hidden"),
    ("parity_tasks", ["--n-bits", "1000000000"], "--n-bits"),
    ("parity_tasks", ["--dask", "local:100000"], "--dask"),       # issue 30's local:64 on a small machine
    ("compare", ["--n-train", "100000000000", "--primary-n", "100000000000"], "--n-train"),
    # tracebacks
    ("parity_tasks", ["--n-train", "16", "16"], "--n-train"),
    ("compare", ["--n-train", "16", "16"], "--n-train"),
    ("parity_tasks", ["--train.layer-lr", "1", "1", "1"], "--train.layer-lr"),
    ("parity_tasks", ["--train.layer-lr", "-1", "1"], "--train.layer-lr"),
    ("parity_tasks", ["--train.lr", "1e308"], "--train.lr"),
    ("parity_tasks", ["--train.weight-decay", "1e300"], "--train.weight-decay"),
    ("parity_tasks", ["--out", "{tmp}/" + "x" * 300], "--out"),
    ("parity_tasks", ["--out", "{loop}/a/x"], "--out"),
    ("run_all", ["--out", "{loop}/a/x"], "--out"),
    ("compare", ["--param", "n_bits=1e400"], "--param"),
    ("compare", ["--param", "n_bits=8.5"], "--param"),
    ("compare", ["--param", "n_bits=1e11"], "--param"),
    ("compare", ["--param", "n_bits=100000000000"], "--param"),
    ("compare", ["--param", "n_bits=9", "--param", "n_bits=10"], "--param"),
    # silent or wrong
    ("compare", ["--problem", "../../../escaped"], "--problem"),
    ("compare", ["--problem", "a/b"], "--problem"),
    ("parity_tasks", ["--replot"], "--replot"),
]


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLMECH_DASK_TIMEOUT", "1")
    make_files(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A folder holding two symlinks that point at each other (outside the scratch folder, whose
    snapshot follows links)."""
    folder = tmp_path_factory.mktemp("loop")
    os.symlink(folder / "b", folder / "a")
    os.symlink(folder / "a", folder / "b")
    return folder


@pytest.mark.parametrize("target, args, flag", CASES, ids=[f"{t}:{' '.join(a)[:40]}" for t, a, _ in CASES])
def test_a_bad_flag_is_one_line_naming_it_exit_2_nothing_written(target, args, flag, scratch, loop):
    args = [a.replace("{loop}", str(loop)) for a in args]
    result = run_case(target, (QUICK if target != "run_all" else []) + args, scratch, TARGETS)
    assert handled(result, flag), result


@pytest.mark.skipif(getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
                    reason="this machine has MPS")
def test_device_mps_without_mps(scratch):
    result = run_case("parity_tasks", QUICK + ["--device", "mps"], scratch, TARGETS)
    assert handled(result, "--device"), result


@pytest.mark.parametrize("target", ["parity_tasks", "compare", "run_all"])
@pytest.mark.parametrize("name, value", [("MTLMECH_THREADS", "abc"), ("MTLMECH_THREADS", "2.5"),
                                         ("MTLMECH_THREADS", "0"), ("MTLMECH_ROOT", "/nonexistent"),
                                         ("MTLMECH_DASK_TIMEOUT", "soon")])
def test_a_bad_environment_setting_is_one_line_at_every_entry_point(target, name, value, scratch, monkeypatch):
    monkeypatch.setenv(name, value)
    result = run_case(target, QUICK, scratch, TARGETS)
    assert handled(result, name), result


# ------------------------------------------------------------------------------------ the --dask address

def _listener(answer: bytes | None) -> tuple[socket.socket, int]:
    """A TCP listener that never answers (``None``) or answers every connection with ``answer``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    if answer is not None:
        def serve():
            while True:
                try:
                    conn, _ = sock.accept()
                    conn.sendall(answer)
                except OSError:
                    return
        threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("answer", [None, b"\xff" * 4096], ids=["silent", "junk"])
def test_a_dask_address_that_never_answers_or_answers_junk_is_one_line_within_the_timeout(answer, scratch):
    sock, port = _listener(answer)
    try:
        started = time.time()
        result = run_case("parity_tasks", QUICK + ["--dask", f"tcp://127.0.0.1:{port}"], scratch, TARGETS)
    finally:
        sock.close()
    assert handled(result, "--dask"), result
    assert time.time() - started < 30


# ------------------------------------------------------------------------------------ accepted values

def test_repeated_list_flags_accumulate():
    cfg, _ = cli.parse("compare", compare.__doc__, compare.Config, compare.PROFILES,
                       ["--param", "n_bits=9", "--param", "noise=0.0", "--n-train", "16", "--n-train", "32"])
    assert cfg.param == ("n_bits=9", "noise=0.0") and cfg.n_train == (16, 32)


def test_a_layer_multiplier_of_0_freezes_the_layer_as_documented():
    cfg, _ = cli.parse("p", parity_tasks.__doc__, parity_tasks.Config, parity_tasks.PROFILES,
                       ["--train.layer-lr", "0", "1"])
    assert cfg.train.layer_lr == (0.0, 1.0)
    assert TrainSpec(layer_lr=(0.0, 1.0)).layer_lr == (0.0, 1.0)
    with pytest.raises(ValueError, match="layer_lr"):
        TrainSpec(layer_lr=(-1.0, 1.0))


def test_the_epoch_cap_is_stated_and_enforced_by_the_spec():
    assert TrainSpec(epochs=MAX_EPOCHS).epochs == MAX_EPOCHS
    with pytest.raises(ValueError, match=f"{MAX_EPOCHS:_}"):
        TrainSpec(epochs=MAX_EPOCHS + 1)


def test_each_setting_is_validated_once_by_its_dataclass():
    """A --train.* value is refused by TrainSpec itself (the CLI adds only the flag's name)."""
    from mtlmech.pipeline.checks import check_value
    check_value("train.lr", 0.0)   # not the generic rules' business any more
    with pytest.raises(UsageError, match=r"^--train\.lr 0: lr must be"):
        cli.parse("p", parity_tasks.__doc__, parity_tasks.Config, parity_tasks.PROFILES, ["--train.lr", "0"])


# ------------------------------------------------------------------------------------ Ctrl-C

def test_ctrl_c_is_one_line_and_exit_130(scratch, monkeypatch, capsys):
    import mtlmech.pipeline.experiment as driver

    def interrupted(*_, **__):
        raise KeyboardInterrupt
    monkeypatch.setattr(driver, "run_units", interrupted)
    code = parity_tasks.EXPERIMENT.main(QUICK + ["--n-train", "16", "--primary-n", "16", "--no-progress",
                                                 "--out", str(scratch / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 130
    assert lines[-1] == "interrupted; 0 computed results are kept in the cache"
    from mtlmech.pipeline.outputs import FolderLock
    FolderLock(scratch / "out" / "parity_tasks").acquire().release()   # the run let go of its folder


# ------------------------------------------------------------------------------------ mtlmech list

@pytest.mark.parametrize("text", ["import no_such_module_anywhere\n", "def broken(:\n", "raise RuntimeError('x')\n"])
def test_a_broken_experiment_file_is_one_line_naming_it(text, tmp_path, capsys):
    from mtlmech.console import main
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "broken.py").write_text(text)
    assert main(["--root", str(tmp_path), "list"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "broken.py" in lines[0]


# ------------------------------------------------------------------------------------ --help (issue 24 §3)

def _help(experiment, monkeypatch, capsys, flag="--help") -> str:
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as stop:
        experiment.main([flag])
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("module, expected", [
    (eavesdropping, {"--train.epochs N": "(default: 50000)", "--train.lr X": "(default: 0.5)",
                     "--train.patience N": "(default: 100; quick: 30)",
                     "--train.lr-grid X [X ...]": "(default: 0.25 1 4 16 64 256; quick: 1 4 16)",
                     "--train.eval-every N": "(default: 10)", "--seeds SEEDS": "(default: 200; quick: 12)"}),
    (compare, {"--train.epochs N": "(default: 20000)", "--train.lr X": "(default: 0.5)",
               "--train.patience N": "(default: 50; quick: 20)",
               "--train.lr-grid X [X ...]": "(default: 0.25 0.5 1 2 4 8; quick: 0.5 2)",
               "--train.eval-every N": "(default: 10)", "--seeds SEEDS": "(default: 200; quick: 16)",
               "--list": "list the registered problems"}),
], ids=["eavesdropping", "compare"])
def test_help_shows_the_experiments_own_defaults_and_profile_overrides(module, expected, monkeypatch, capsys):
    experiment = getattr(module, "EXPERIMENT", None) or module.TOOL
    text = _help(experiment, monkeypatch, capsys)
    entries: list[str] = []   # one per option: its line and the help lines wrapped below it
    for line in text.splitlines():
        if line.startswith("  -"):
            entries.append(line.strip())
        elif entries and line.startswith("    ") and line.strip():
            entries[-1] += " " + line.strip()
    for flag, note in expected.items():
        entry = next((e for e in entries if e.startswith(flag)), None)
        assert entry is not None and note in entry, (flag, entry)
    # short: the docstring's first paragraph, and the registration one flag away
    assert module.__doc__.strip().splitlines()[0] in text
    assert "--registration" in text and module.__doc__.strip().split("\n\n")[1][:60] not in text


def test_registration_prints_the_whole_docstring(monkeypatch, capsys):
    text = _help(eavesdropping.EXPERIMENT, monkeypatch, capsys, "--registration")
    assert text.strip() == eavesdropping.__doc__.strip()


def test_show_run_is_a_declared_option(monkeypatch, capsys):
    text = _help(representation_bias.EXPERIMENT, monkeypatch, capsys)
    assert any(line.strip().startswith("--show-run SEED") for line in text.splitlines())


def test_show_run_with_a_bad_value_is_one_line(capsys):
    assert representation_bias.EXPERIMENT.main(["--show-run", "x"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--show-run" in lines[0]
