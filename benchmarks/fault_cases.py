"""Bad inputs across the experiments and run_all, each with the flag its error line must name.

Shared by ``tests/test_faults.py`` (each case: one ``error:`` line naming the flag, exit code 2,
nothing written, no training started) and ``benchmarks/fault_injection.py`` (the count in the
README). ``{tmp}`` in an argument is a scratch folder holding the files :func:`make_files` writes
(plugins that are broken in different ways, a plain file given as ``--out``).
"""

from __future__ import annotations

from pathlib import Path

# Plugins that break the problem contract: name -> (the factory's body, what the error line must name).
# Each file registers problem ``p_<name>`` on 8 bit inputs; ``{TASKS}`` etc. are filled in by make_files.
_HEAD = """import sys
import numpy as np
from mtlmech.problems.features import Feature, var, xor
from mtlmech.problems.inputs import InputSpace
from mtlmech.problems.tasks import Problem, Task, register_problem
"""
BAD_PLUGINS: dict[str, tuple[str, str]] = {
    "probe_two_columns": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', var(0)), Task('U', var(1))), "
                          "probes={'wide': Feature('wide', lambda z: z[:, :2])})", "probe wide"),
    "no_return": ("Problem(name=NAME, inputs=BITS, tasks=(Task('T', var(0)),))", "returned None"),
    "returns_string": ("return 'a problem'", "returned a str"),
    "factory_raises": ("raise RuntimeError('the factory broke')", "the factory broke"),
    "feature_raises": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', var(0)),), "
                       "features={'boom': Feature('boom', lambda z: 1 / 0)})", "feature boom"),
    "keyboard_interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    "sys_exit": ("sys.exit(0)", "sys.exit(0)"),
    "plain_lambda_target": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', lambda z: z[:, 0]),))",
                            "task T"),
    "zero_argument_lambda": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', Feature('f', lambda: 1)),))",
                             "task T (f)"),
    "var_out_of_range": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', var(9)),))", "task T (x9)"),
    "bool_targets_0_to_3": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', Feature('sum2', "
                            "lambda z: z[:, 0] + 2 * z[:, 1])),))", "task T (sum2)"),
    "misnamed": ("return Problem(name='other', inputs=BITS, tasks=(Task('T', var(0)),))", "named 'other'"),
    "nan_targets": ("return Problem(name=NAME, inputs=BITS, tasks=(Task('T', Feature('gap', "
                    "lambda z: np.where(z[:, 0] > 0.5, np.nan, 0.0))),))", "non-finite"),
}
# a plugin that stops the import itself (not only its factory)
IMPORT_FAULTS = {"import_keyboard_interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
                 "import_sys_exit": ("sys.exit(0)", "sys.exit(0)")}


def bad_plugin_source(name: str) -> str:
    if name in IMPORT_FAULTS:
        return _HEAD + IMPORT_FAULTS[name][0] + "\n"
    body = BAD_PLUGINS[name][0].replace("NAME", repr(f"p_{name}")).replace("BITS", "InputSpace(n_vars=8, kind='bits')")
    return _HEAD + f"\n\n@register_problem('p_{name}')\ndef p_{name}():\n    {body}\n"


# (target, arguments, what the one error line must contain); target: an experiment name, "compare" or "run_all"
CASES: list[tuple[str, list[str], str]] = [
    # the fair-protocol flags (nested --train.* / --net.*), on parity_tasks
    ("parity_tasks", ["--train.lr", "0"], "--train.lr"),
    ("parity_tasks", ["--train.lr", "-1"], "--train.lr"),
    ("parity_tasks", ["--train.lr", "nan"], "--train.lr"),
    ("parity_tasks", ["--train.lr", "inf"], "--train.lr"),
    ("parity_tasks", ["--train.momentum", "5"], "--train.momentum"),
    ("parity_tasks", ["--train.epochs", "0"], "--train.epochs"),
    ("parity_tasks", ["--train.eval-every", "0"], "--train.eval-every"),
    ("parity_tasks", ["--train.lr-grid", "1", "nan"], "--train.lr-grid"),
    ("parity_tasks", ["--train.lr-grid", "1", "inf"], "--train.lr-grid"),
    ("parity_tasks", ["--train.lr-grid", "0", "1"], "--train.lr-grid"),
    ("parity_tasks", ["--train.lr-grid", "2", "2"], "--train.lr-grid"),
    ("parity_tasks", ["--train.patience", "0"], "--train.patience"),
    ("parity_tasks", ["--train.min-delta", "-1"], "--train.min-delta"),
    ("parity_tasks", ["--train.weight-decay", "-0.1"], "--train.weight-decay"),
    ("parity_tasks", ["--train.loss", "hinge"], "--train.loss"),
    ("parity_tasks", ["--net.hidden", "0"], "--net.hidden"),
    ("parity_tasks", ["--net.activation", "relu"], "--net.activation"),
    ("parity_tasks", ["--net.init-scale", "0"], "--net.init-scale"),
    ("parity_tasks", ["--seed-ids", "-1"], "--seed-ids"),
    ("parity_tasks", ["--seed-ids", "3", "3"], "--seed-ids"),
    ("parity_tasks", ["--seeds", "0"], "--seeds"),
    ("parity_tasks", ["--seeds", "abc"], "--seeds"),
    ("parity_tasks", ["--seeds", "1000000000000"], "--seeds"),
    ("parity_tasks", ["--parity-bits", "-1"], "--parity-bits"),
    ("parity_tasks", ["--parity-bits", "-8"], "--parity-bits"),
    ("parity_tasks", ["--parity-bits", "0"], "--parity-bits"),
    ("parity_tasks", ["--n-bits", "1"], "--n-bits"),
    ("parity_tasks", ["--n-train", "0"], "--n-train"),
    ("parity_tasks", ["--primary-n", "7"], "--primary-n"),
    ("parity_tasks", ["--profile", "huge"], "--profile"),
    ("parity_tasks", ["--backend", "cuda"], "--backend"),
    ("parity_tasks", ["--bogus"], "--bogus"),
    ("parity_tasks", ["--dask", "local:0"], "--dask"),
    ("parity_tasks", ["--dask", "local:-1"], "--dask"),
    ("parity_tasks", ["--dask", "local:x"], "--dask"),
    ("parity_tasks", ["--dask", "udp://127.0.0.1:8786"], "--dask"),
    ("parity_tasks", ["--dask", "tcp://127.0.0.1"], "--dask"),
    ("parity_tasks", ["--dask", "tcp://127.0.0.1:1"], "--dask"),          # nothing listens there
    ("parity_tasks", ["--device", "tpu"], "--device"),
    ("parity_tasks", ["--out", ""], "--out"),
    ("parity_tasks", ["--out", "{tmp}/a_file"], "--out"),
    ("parity_tasks", ["--out", "/proc/mtlmech-out"], "--out"),            # cannot be created
    # problem and config parameters of the other experiments (version-1 flat flags included)
    ("representation_bias", ["--n-irrelevant", "40"], "--n-irrelevant"),  # 2^46 patterns: refused by estimate
    ("representation_bias", ["--n-irrelevant", "-1"], "--n-irrelevant"),
    ("representation_bias", ["--used-fraction", "-1"], "--used-fraction"),
    ("representation_bias", ["--n-examples", "-1"], "--n-examples"),
    ("representation_bias", ["--threshold", "2"], "--threshold"),
    ("representation_bias", ["--headline", "nope"], "--headline"),
    ("attribute_selection", ["--lr", "0"], "--lr"),
    ("attribute_selection", ["--momentum", "5"], "--momentum"),
    ("attribute_selection", ["--epochs", "0"], "--epochs"),
    ("attribute_selection", ["--eval-every", "0"], "--eval-every"),
    ("controls", ["--lr", "-1"], "--lr"),
    ("controls", ["--stuck-epochs", "0"], "--stuck-epochs"),
    ("data_amplification", ["--parity-bits", "-1"], "--parity-bits"),
    ("data_amplification", ["--noise-levels", "0.2", "0.9"], "--noise-levels"),
    ("eavesdropping", ["--n-bits", "0"], "--n-bits"),
    ("inputs_as_outputs", ["--noisy-trials", "-1"], "--noisy-trials"),
    ("inputs_as_outputs", ["--noisy-lr", "nan"], "--noisy-lr"),
    ("overfitting", ["--momentum", "1"], "--momentum"),
    ("peaks", ["--epochs", "0"], "--epochs"),
    ("peaks", ["--hidden", "-3"], "--hidden"),
    ("transfer", ["--lr", "inf"], "--lr"),
    # the tool for a user's own task
    ("compare", ["--param", "bogus=1"], "--param"),
    ("compare", ["--param", "noequals"], "--param"),
    ("compare", ["--problem", "nope"], "--problem"),
    ("compare", ["--main-task", "Z"], "--main-task"),
    ("compare", ["--probes", "nope"], "--probes"),
    ("compare", ["--plugin", "{tmp}/missing.py"], "--plugin"),
    ("compare", ["--plugin", "{tmp}/syntax_error.py"], "--plugin"),
    ("compare", ["--plugin", "{tmp}/binary.py"], "--plugin"),
    ("compare", ["--plugin", "{tmp}/not_python.txt"], "--plugin"),
    ("compare", ["--plugin", "{tmp}/raises.py"], "--plugin"),
    # a user's plugin that breaks the problem contract (faults v3 / issue 31): one line naming the task,
    # feature or probe at fault, checked when the problem is built (mtlmech.problems.tasks.Problem.check)
    *[("compare", ["--plugin", f"{{tmp}}/p_{name}.py", "--problem", f"p_{name}", "--net.output", "linear"], says)
      for name, (_, says) in sorted({**BAD_PLUGINS, **IMPORT_FAULTS}.items())],
    # the suite
    ("run_all", ["--bogus"], "--bogus"),
    ("run_all", ["--seeds", "x"], "--seeds"),
    ("run_all", ["--seeds", "0"], "--seeds"),
    ("run_all", ["--seeds", "1000000000000"], "--seeds"),
    ("run_all", ["--profile", "x"], "--profile"),
    ("run_all", ["--only", "nonexistent"], "nonexistent"),
    ("run_all", ["--device", "tpu"], "--device"),
    ("run_all", ["--dask", "foo"], "--dask"),
    ("run_all", ["--dask", "local:0"], "--dask"),
    ("run_all", ["--dask", "tcp://127.0.0.1:1"], "--dask"),
    ("run_all", ["--out", ""], "--out"),
    ("run_all", ["--out", "{tmp}/a_file"], "--out"),
]


def make_files(tmp: Path) -> None:
    """The files the cases refer to under ``{tmp}``."""
    tmp = Path(tmp)
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "syntax_error.py").write_text("def broken(:\n    pass\n")
    (tmp / "binary.py").write_bytes(bytes(range(256)))
    (tmp / "not_python.txt").write_text("from mtlmech.problems.tasks import register_problem\n")
    (tmp / "raises.py").write_text("x = 1\nraise RuntimeError('a plugin that fails on import')\n")
    for name in {**BAD_PLUGINS, **IMPORT_FAULTS}:
        (tmp / f"p_{name}.py").write_text(bad_plugin_source(name))


def argv_of(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in Path(folder).rglob("*")}


def run_case(target: str, args: list[str], tmp: Path, targets: dict) -> dict:
    """Run one case in this process with training disabled; ``targets`` maps names to a callable
    ``main(argv) -> int`` (the experiments, "compare", "run_all"). Returns the exit code, the
    stderr lines, the paths written under ``tmp`` and whether training started."""
    import contextlib
    import io
    import os

    import mtlmech.pipeline.experiment as driver
    argv = argv_of(args, tmp)
    if "--out" not in argv:
        argv += ["--out", str(Path(tmp) / "out")]
    before = _snapshot(tmp)
    started: list[bool] = []

    def no_training(*_, **__):
        started.append(True)
        raise RuntimeError("training started")
    real, driver.run_units = driver.run_units, no_training
    cwd = os.getcwd()
    err = io.StringIO()
    try:
        os.chdir(tmp)   # an empty --out would write here
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = targets[target](argv)
            except SystemExit as exc:
                code = exc.code
            except RuntimeError as exc:
                if not started:
                    raise
                code = f"trained ({exc})"
    finally:
        driver.run_units = real
        os.chdir(cwd)
    after = _snapshot(tmp)
    written = sorted(p for p in after if p not in before or after[p] != before[p])
    return {"code": code, "lines": err.getvalue().strip().splitlines(), "written": written, "trained": bool(started)}


def handled(result: dict, flag: str) -> bool:
    """One line ``error: ...`` naming ``flag``, exit code 2, nothing written, no training."""
    lines = result["lines"]
    return (result["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0]
            and not result["written"] and not result["trained"])


def generic_cases(experiments: dict) -> list[tuple[str, list[str], str]]:
    """Per experiment (so new ones are covered without editing :data:`CASES`): a seed count of 0,
    and -1 for the first config field whose generic value rule (:mod:`mtlmech.pipeline.checks`) refuses it."""
    from mtlmech.pipeline.checks import _rule
    from mtlmech.pipeline.cli import _config_fields
    out = []
    for name, experiment in sorted(experiments.items()):
        out.append((name, ["--seeds", "0"], "--seeds"))
        for dest, elem, kind, _, _ in _config_fields(experiment.config_cls):
            rule = _rule(dest.rsplit(".", 1)[-1])
            if kind in ("scalar", "tuple") and elem in (int, float) and rule and not rule[0](-1):
                flag = "--" + dest.replace("_", "-")
                out.append((name, [flag, "-1"], flag))
                break
    return out
