"""Fault injection on tiny configs: kills, corruptions, bad inputs (the README's fault table).

    python benchmarks/fault_injection.py [--kills N] [--seed S] [--json out.json]

1. **kill -9**: a tiny parity_tasks run is killed at N random moments and at chosen ones (after
   its first cache shard is written; while it stages its outputs; at the commit point; a
   ``--force`` rerun over committed outputs while it stages; during ``--replot``), then run again
   to completion. Counted as survived when the folder it left held
   one consistent set of outputs (its manifest matches, no partial figure), the resumed run's
   runs.csv is byte-identical to an uninterrupted reference run and it left no temporary file.
2. **corruption**: each kind of damage to a cache shard (torn, garbage, edited, forged with a
   recomputed checksum) or to the saved outputs is applied to a copy of the reference folder;
   counted as detected when a shard is reported and set aside and the rerun reproduces the
   reference runs.csv byte for byte, or when ``--replot`` refuses the damaged outputs (exit 2) or
   sets a damaged manifest / commit point aside with one line (never moving a file out of the folder);
   and each damage to a saved file is refused by every reader (``mtlmech.load``, ``load_claims``,
   ``mtlmech report``: an OutputsError naming the file, or one line with exit 2).
3. **bad input**: every case of ``benchmarks/fault_cases.py`` (and a full disk), counted as
   handled when it gives one ``error:`` line naming the flag, exit code 2, nothing written and no
   training.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TINY = ["--profile", "quick", "--n-train", "16", "32", "48", "--primary-n", "16", "--n-test", "50", "--n-halt", "20",
        "--net.hidden", "4", "--train.lr-grid", "1", "2", "--train.epochs", "300", "--train.eval-every", "5",
        "--train.patience", "20", "--seeds", "6", "--no-progress"]


def script(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "experiments" / "parity_tasks.py"), *TINY, "--out", str(out), *extra]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def consistent(folder: Path) -> bool:
    """The folder holds one run's outputs as its manifest lists them (or none yet), no partial PNG."""
    from mtlmech.pipeline.outputs import MANIFEST, verify
    if not (folder / MANIFEST).exists():
        return not (folder / "summary.json").exists()
    rows = sum(1 for _ in open(folder / "runs.csv", encoding="utf-8")) - 1
    names = json.loads((folder / MANIFEST).read_text())["files"]
    return verify(folder, names, rows=rows) == [] and all(
        (folder / n).read_bytes().startswith(b"\x89PNG") for n in names if n.endswith(".png"))


def kill_when(cmd: list[str], out: Path, when) -> bool:
    """Start ``cmd`` and SIGKILL it once ``when(elapsed)`` is true; False if it finished first."""
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.perf_counter()
    while proc.poll() is None:
        if when(time.perf_counter() - start):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    return proc.wait() == -signal.SIGKILL


def kills(n_random: int, rng: random.Random, reference: bytes, duration: float, work: Path) -> dict:
    folder_of = lambda out: out / "parity_tasks"  # noqa: E731
    staged = lambda out: (folder_of(out) / ".staging").exists()  # noqa: E731
    moments = [(f"random {t:.2f} s", lambda e, t=t, out=None: e >= t) for t in
               sorted(rng.uniform(0.2, duration) for _ in range(n_random))]
    chosen = {
        "after the first cache shard": lambda out: any(folder_of(out).glob("cache/*/seeds-*.json")),
        "while staging outputs": staged,
        "at the commit point": lambda out: (folder_of(out) / ".commit.json").exists() or (
            staged(out) and any((folder_of(out) / ".staging" / "parity_tasks").glob("summary.json"))),
    }
    results = []
    for i, (label, cond) in enumerate(moments + [(k, None) for k in chosen]):
        out = work / f"kill{i}"
        test = (lambda e, c=cond: c(e)) if cond is not None else (lambda e, k=label, o=out: chosen[k](o))
        killed = kill_when(script(out), out, test)
        ok_after_kill = consistent(folder_of(out)) if folder_of(out).exists() else True
        subprocess.run(script(out), env=env(), check=True, capture_output=True)
        same = (folder_of(out) / "runs.csv").read_bytes() == reference
        results.append({"moment": label, "killed": killed, "consistent_after_kill": ok_after_kill,
                        "identical_resume": same, "no_tmp_left": not any(folder_of(out).rglob("*.tmp"))})
    # a --force rerun over committed outputs, killed while it stages: the old outputs stay whole
    out = work / "kill-rerun"
    subprocess.run(script(out), env=env(), check=True, capture_output=True)
    killed = kill_when(script(out, "--force"), out, lambda e, o=out: (folder_of(o) / ".staging").exists())
    ok = consistent(folder_of(out)) and (folder_of(out) / "runs.csv").read_bytes() == reference
    subprocess.run(script(out), env=env(), check=True, capture_output=True)
    results.append({"moment": "--force rerun over committed outputs, while staging", "killed": killed,
                    "consistent_after_kill": ok, "identical_resume": (folder_of(out) / "runs.csv").read_bytes() == reference})
    # a kill during --replot: the figures and summary stay whole
    out = work / "kill-replot"
    subprocess.run(script(out), env=env(), check=True, capture_output=True)
    killed = kill_when(script(out, "--replot"), out, lambda e, o=out: (folder_of(o) / ".staging").exists())
    ok = consistent(folder_of(out))
    subprocess.run(script(out, "--replot"), env=env(), check=True, capture_output=True)
    results.append({"moment": "during --replot", "killed": killed, "consistent_after_kill": ok,
                    "identical_resume": (folder_of(out) / "runs.csv").read_bytes() == reference})
    done = [r for r in results if r["killed"]]   # a chosen moment the run passed too fast to hit is not a kill
    return {"runs": results, "survived": sum(r["consistent_after_kill"] and r["identical_resume"]
                                             and r.get("no_tmp_left", True) for r in done),
            "total": len(done), "missed": len(results) - len(done)}


def _forge(edit):
    """Edit the payload and re-sign it (format 1 is still read): a well-formed but wrong shard."""
    from mtlmech.pipeline.store import _checksum

    def apply(path: Path) -> None:
        doc = json.loads(path.read_text())
        edit(doc["payload"])
        doc.update(format=1, checksum=_checksum(doc["payload"]))
        path.write_text(json.dumps(doc))
    return apply


def _text(fn):
    return lambda path: path.write_text(fn(path.read_text()))


def _first(payload: dict) -> dict:
    return payload[sorted(payload, key=int)[1]]


SHARD_DAMAGE = {
    "truncated to half": _text(lambda t: t[: len(t) // 2]),
    "last byte cut": _text(lambda t: t[:-1]),
    "emptied": _text(lambda t: ""),
    "text garbage": _text(lambda t: "not json at all"),
    "binary garbage": lambda p: p.write_bytes(os.urandom(512)),
    "invalid UTF-8": lambda p: p.write_bytes(p.read_bytes()[:100] + b"\xff\xfe" + p.read_bytes()[102:]),
    "a digit changed": _text(lambda t: t.replace("0.", "9.", 1)),
    "a value edited (valid JSON)": _text(lambda t: t.replace('"STL"', '"MTL"', 1)),
    "unit header changed": _text(lambda t: t.replace('"unit": "', '"unit": "0', 1)),
    "unknown format": _text(lambda t: t.replace('"format": 2', '"format": 7', 1)),
    "payload removed": lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                          if k != "payload"})),
    "forged: rows emptied": _forge(lambda p: _first(p).update(rows=[])),
    "forged: a row names another seed": _forge(lambda p: _first(p)["rows"][0].update(seed=999)),
    "forged: a row names another unit": _forge(lambda p: _first(p)["rows"][0].update(unit="0" * 16)),
    "forged: a number as text": _forge(lambda p: _first(p)["rows"][0].update(test_error="0.25")),
    "forged: rows not a list": _forge(lambda p: _first(p).update(rows={"a": 1})),
    "forged: a row not a record": _forge(lambda p: _first(p)["rows"].__setitem__(0, [1, 2])),
    "forged: a row dropped": _forge(lambda p: _first(p)["rows"].pop()),
    "forged: a row duplicated": _forge(lambda p: _first(p)["rows"].append(dict(_first(p)["rows"][0]))),
    "forged: a seed moved outside the file's range": _forge(lambda p: p.update({"99": p.pop(sorted(p, key=int)[-1])})),
    "forged: a negative seed": _forge(lambda p: p.update({"-1": p.pop(sorted(p, key=int)[0])})),
    "forged: a seed that is not a number": _forge(lambda p: p.update({"x": p.pop(sorted(p, key=int)[0])})),
    "forged: extra of the wrong type": _forge(lambda p: _first(p).update(extra=[1])),
    "forged: a text value where the unit has numbers": _forge(
        lambda p: [r["rows"][0].update(train_mse="high") for r in p.values()]),
}


def _flip_n_runs(folder: Path) -> None:
    """summary.json with one digit of ``n_runs`` changed (still valid JSON)."""
    import re
    _text(lambda t: re.sub(r'("n_runs": )(\d)', lambda m: m.group(1) + str((int(m.group(2)) % 9) + 1), t, count=1))(
        folder / "summary.json")


OUTPUT_DAMAGE = {
    "runs.csv truncated": lambda f: _text(lambda t: t[: len(t) // 2])(f / "runs.csv"),
    "runs.csv rows dropped": lambda f: _text(lambda t: "".join(t.splitlines(True)[:-3]))(f / "runs.csv"),
    "runs.csv a value edited": lambda f: _text(lambda t: t.replace("STL", "MTL", 1))(f / "runs.csv"),
    "runs.csv emptied": lambda f: (f / "runs.csv").write_text(""),
    "extras.json edited": lambda f: (f / "extras.json").write_text('{"x": 1}\n'),
    "units.json edited": lambda f: _text(lambda t: t.replace("parity", "parjty", 1))(f / "units.json"),
    "no manifest, runs.csv rows dropped": lambda f: ((f / "manifest.json").unlink(),
                                                    _text(lambda t: "".join(t.splitlines(True)[:-3]))(f / "runs.csv")),
    "no manifest, runs.csv a value edited": lambda f: ((f / "manifest.json").unlink(),
                                                      _text(lambda t: t.replace("STL", "MTL", 1))(f / "runs.csv")),
    "summary.json a digit flipped": _flip_n_runs,
    "summary.json garbage": lambda f: (f / "summary.json").write_text("garbage"),
}

# damage that a run or --replot sets aside with one line and recovers from (exit 0, nothing moved out)
SET_ASIDE_DAMAGE = {
    "manifest.json corrupt": lambda f: (f / "manifest.json").write_text("{"),
    "manifest.json a list": lambda f: (f / "manifest.json").write_text("[]"),
    ".commit.json garbage": lambda f: ((f / ".staging" / f.name).mkdir(parents=True), (f / ".commit.json").write_text("{")),
    ".commit.json naming a file outside the folder": lambda f: (
        (f / "planted").mkdir(), (f / "planted" / "owned.sh").write_text("echo owned\n"),
        (f / ".staging" / f.name).mkdir(parents=True),
        (f / ".commit.json").write_text(json.dumps({"format": 1, "rows": 1, "files": {
            "../../planted/owned.sh": __import__("mtlmech.pipeline.outputs").pipeline.outputs.digest(
                f / "planted" / "owned.sh")}}))),
}

# damage the readers of the damaged file must refuse: kind -> (damage, the readers that read that file)
_DATA, _SUMMARY, _ALL = ("load",), ("load_claims", "report"), ("load", "load_claims", "report")
READ_DAMAGE = {
    "runs.csv 5 lines dropped": (lambda f: _text(lambda t: "".join(t.splitlines(True)[:-5]))(f / "runs.csv"), _DATA),
    "runs.csv truncated mid-line": (lambda f: _text(lambda t: t[: len(t) // 2 + 7])(f / "runs.csv"), _DATA),
    "runs.csv header columns swapped": (lambda f: _text(
        lambda t: t.replace("test_error", "@@", 1).replace("test_mse", "test_error", 1).replace("@@", "test_mse", 1))(
        f / "runs.csv"), _DATA),
    "units.json edited": (lambda f: _text(lambda t: t.replace('"quick"', '"full"', 1))(f / "units.json"), _DATA),
    "summary.json a digit flipped": (_flip_n_runs, _SUMMARY),
    "summary.json garbage": (lambda f: (f / "summary.json").write_text("garbage"), _SUMMARY),
    "no manifest, runs.csv edited": (lambda f: ((f / "manifest.json").unlink(),
                                                _text(lambda t: t.replace("STL", "MTL", 1))(f / "runs.csv")), _DATA),
    "half-committed (.commit.json left by a kill)": (lambda f: (f / ".commit.json").write_text(
        (f / "manifest.json").read_text()), _ALL),
}


def corruptions(reference_dir: Path, reference: bytes, work: Path) -> dict:
    import parity_tasks

    from mtlmech.pipeline.store import CorruptCacheWarning
    results = []
    for kind, damage in SHARD_DAMAGE.items():
        out = work / ("shard-" + str(len(results)))
        shutil.copytree(reference_dir, out / "parity_tasks")
        shard = sorted((out / "parity_tasks" / "cache").glob("*/seeds-*.json"))[0]
        damage(shard)
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("always")
            code = parity_tasks.EXPERIMENT.main(TINY + ["--out", str(out)])
        reported = any(issubclass(w.category, CorruptCacheWarning) for w in caught)
        aside = any(shard.parent.glob(shard.name + ".corrupt*"))
        same = code == 0 and (out / "parity_tasks" / "runs.csv").read_bytes() == reference
        results.append({"kind": "shard: " + kind, "detected": reported and aside and same})
    for kind, damage in OUTPUT_DAMAGE.items():
        out = work / ("out-" + str(len(results)))
        shutil.copytree(reference_dir, out / "parity_tasks")
        damage(out / "parity_tasks")
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)])
        results.append({"kind": "outputs: " + kind, "detected": code == 2 and err.getvalue().startswith("error:")})
    for kind, damage in SET_ASIDE_DAMAGE.items():
        out = work / ("aside-" + str(len(results)))
        shutil.copytree(reference_dir, out / "parity_tasks")
        damage(out / "parity_tasks")
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = parity_tasks.EXPERIMENT.main(["--profile", "quick", "--replot", "--out", str(out)])
        folder = out / "parity_tasks"
        results.append({"kind": "set aside: " + kind, "detected": code == 0 and "set aside" in err.getvalue()
                        and any(folder.glob("*.corrupt")) and consistent(folder) and not (work / "planted").exists()
                        and not (out / "planted").exists()})
    for kind, (damage, readers) in READ_DAMAGE.items():
        out = work / ("read-" + str(len(results)))
        shutil.copytree(reference_dir, out / "parity_tasks")
        damage(out / "parity_tasks")
        results.append({"kind": "readers: " + kind, "detected": refused_by_readers(out, readers)})
    return {"kinds": results, "detected": sum(r["detected"] for r in results), "total": len(results)}


def refused_by_readers(out: Path, readers: tuple[str, ...]) -> bool:
    """Each of ``readers`` refuses the folder: ``load`` / ``load_claims`` with an OutputsError,
    ``mtlmech report`` with one ``error:`` line and exit code 2 (and no REPORT.md)."""
    import mtlmech
    from mtlmech.console import main as console
    from mtlmech.pipeline.outputs import OutputsError
    refused = []
    for name in readers:
        if name == "report":
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = console(["report", "--out", str(out)])
            lines = err.getvalue().strip().splitlines()
            refused.append(code == 2 and len(lines) == 1 and lines[0].startswith("error:")
                           and not (out / "REPORT.md").exists())
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                getattr(mtlmech, name)("parity_tasks", out=out)
            refused.append(False)
        except OutputsError:
            refused.append(True)
    return all(refused)


def bad_inputs(work: Path) -> dict:
    import compare
    from fault_cases import CASES, handled, make_files, run_case

    import mtlmech.pipeline.checks
    import run_all
    targets = {**{n: e.main for n, e in run_all.discover().items()}, "compare": compare.TOOL.main,
               "run_all": run_all.main}
    os.environ.setdefault("MTLMECH_DASK_TIMEOUT", "1")
    results = []
    for i, (target, args, flag) in enumerate(CASES + [("parity_tasks", ["<full disk>"], "--out")]):
        tmp = work / f"input{i}"
        tmp.mkdir()
        make_files(tmp)
        real = mtlmech.pipeline.checks.shutil.disk_usage
        if args == ["<full disk>"]:
            args = []
            mtlmech.pipeline.checks.shutil.disk_usage = lambda _: type("Usage", (), {"free": 1 << 20})()
        try:
            result = run_case(target, args, tmp, targets)
        finally:
            mtlmech.pipeline.checks.shutil.disk_usage = real
        results.append({"target": target, "args": args, "handled": handled(result, flag),
                        "line": (result["lines"] or [""])[0]})
    return {"cases": results, "handled": sum(r["handled"] for r in results), "total": len(results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kills at random moments (plus 5 chosen ones)")
    parser.add_argument("--seed", type=int, default=16, help="seed of the random kill moments")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mtlmech-faults-"))
    try:
        ref_out = work / "reference"
        start = time.perf_counter()
        subprocess.run(script(ref_out), env=env(), check=True, capture_output=True)
        duration = time.perf_counter() - start
        ref_dir = ref_out / "parity_tasks"
        reference = (ref_dir / "runs.csv").read_bytes()
        print(f"reference run: {duration:.1f} s, {len(reference.splitlines()) - 1} rows", flush=True)
        out = {"kills": kills(args.kills, random.Random(args.seed), reference, duration, work)}
        print(f"kill -9 survived with byte-identical resume: {out['kills']['survived']}/{out['kills']['total']}"
              f" ({out['kills']['missed']} moments passed before the kill landed)", flush=True)
        out["corruptions"] = corruptions(ref_dir, reference, work)
        print(f"corruptions detected: {out['corruptions']['detected']}/{out['corruptions']['total']}", flush=True)
        out["bad_inputs"] = bad_inputs(work)
        print(f"bad inputs handled: {out['bad_inputs']['handled']}/{out['bad_inputs']['total']}", flush=True)
        for section, key, label in (("kills", "runs", "moment"), ("corruptions", "kinds", "kind"),
                                    ("bad_inputs", "cases", "args")):
            for r in out[section][key]:
                if r.get("killed", True) and not all(v for k, v in r.items() if isinstance(v, bool)):
                    print(f"  not handled ({section}): {r[label]} {r}")
        if args.json:
            args.json.write_text(json.dumps(out, indent=2) + "\n")
        ok = all(out[s][k] == out[s]["total"] for s, k in (("kills", "survived"), ("corruptions", "detected"),
                                                           ("bad_inputs", "handled")))
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
