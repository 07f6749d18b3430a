"""docs/tutorial.py (the notebook, kept as a percent-format script) runs at small sizes and prints
what the notebook shows, and docs/tutorial.ipynb is its current rendering, committed executed
(``jupytext --to ipynb docs/tutorial.py && jupyter nbconvert --to notebook --execute --inplace
docs/tutorial.ipynb``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT, NOTEBOOK = ROOT / "docs" / "tutorial.py", ROOT / "docs" / "tutorial.ipynb"


def percent_cells(text: str) -> list[tuple[str, str]]:
    """(cell type, source) of each ``# %%`` cell of a percent-format script, as jupytext renders them."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        out.append((kind, "\n".join(lines).strip("\n")))
    return out


@pytest.mark.slow   # about 100 s on 2 cores (more under load): the default run skips it
def test_the_tutorial_runs_at_small_sizes():
    env = {**os.environ, "MTLMECH_TUTORIAL_SMALL": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "small sizes: 12 seeds" in out
    assert "trained 24 chosen nets (of 48)" in out                 # 12 seeds × STL, MTL; 2 rates each
    assert "rank correlation of Task1's hidden-unit reliance" in out
    assert "found P: MTL " in out and "p_less" in out and "test_error" in out   # the tables are printed too
    assert "DA4" in out and "committed rows" in out                 # the committed results were loaded
    if (ROOT / "figures" / "parity_tasks" / "units.json").exists():   # a committed run re-trained exactly
        assert "re-trained unit" in out and "its rows match runs.csv" in out
    else:
        assert "predate units.json" in out


def test_the_notebook_is_the_rendering_of_the_script():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    rendered = [(c["cell_type"], "".join(c["source"]).strip("\n")) for c in notebook["cells"]]
    assert rendered == percent_cells(SCRIPT.read_text(encoding="utf-8")), \
        "docs/tutorial.ipynb is stale: run jupytext --to ipynb docs/tutorial.py"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "docs/tutorial.ipynb is not executed (see the module doc)"
    shown = [c for c in code if c.get("outputs")]
    assert len(shown) >= len(code) - 1, f"{len(code) - len(shown)} code cells without output"
    text = json.dumps(notebook)
    assert "found P: MTL " in text and "image/png" in text
