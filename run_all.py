"""Run every registered experiment and regenerate the figures and REPORT.md.

    python run_all.py                      # full profile → figures/ and figures/REPORT.md
    python run_all.py --profile quick      # small and fast → results/quick/ (never touches figures/)
    python run_all.py --only parity_tasks --seeds 50
    python run_all.py --list

An experiment is any ``experiments/<name>.py`` that defines ``EXPERIMENT``. Cached runs are reused.
The same runs as ``mtlmech run-all``; the logic lives in :mod:`mtlmech.suite`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mtlmech.suite import discover as discover_in
from mtlmech.suite import run_all

ROOT = Path(__file__).resolve().parent


def discover() -> dict:
    """name → Experiment for every experiment script next to this file."""
    return discover_in(ROOT)


def main(argv: list[str] | None = None) -> int:
    return run_all(argv, root=ROOT, prog="run_all.py", command="python run_all.py")


if __name__ == "__main__":
    sys.exit(main())
