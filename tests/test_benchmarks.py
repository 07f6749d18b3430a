"""The kernel-shape benchmark runs end to end on a tiny setting and refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "kernel_shapes.py"


def test_kernel_shapes_reports_every_shape(tmp_path):
    out = tmp_path / "shapes.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--members", "2", "--epochs", "3", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["sgemm_gflops_1_thread"] > 0
    assert len(result["shapes"]) == 18
    assert [row["trained"] for row in result["shapes"][:2]] == ["all", "one"]
    assert all(row["gflops"] > 0 and row["seconds"] > 0 for row in result["shapes"])
    assert {row["experiment"] for row in result["shapes"]} == {
        "representation_bias", "controls", "data_amplification", "inputs_as_outputs"}


def test_kernel_shapes_bad_input_exits_2():
    done = subprocess.run([sys.executable, str(SCRIPT), "--epochs", "0"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--epochs" in done.stderr
