"""Shared test settings."""

import mtlmech  # noqa: F401, I001  (first, before torch loads: its OpenMP wait policy, mtlmech/__init__.py)
import pytest

# A parity_tasks run small enough for a test (a second or two): two sizes, tiny nets, two rates.
PARITY_TINY = ["--profile", "quick", "--n-train", "16", "32", "--primary-n", "16", "--train.epochs", "40",
               "--n-test", "50", "--n-halt", "20", "--net.hidden", "4", "--train.lr-grid", "1", "2", "--no-progress"]


@pytest.fixture(scope="session")
def parity_tiny() -> list[str]:
    """Flags for a tiny parity_tasks run (add --seeds and --out)."""
    return list(PARITY_TINY)


@pytest.fixture(scope="session")
def parity_tiny_out(tmp_path_factory, parity_tiny):
    """An output root holding a tiny parity_tasks run (3 seeds), shared by the tests that only read it."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
    import parity_tasks
    root = tmp_path_factory.mktemp("parity_tiny_out")
    assert parity_tasks.EXPERIMENT.main([*parity_tiny, "--seeds", "3", "--out", str(root)]) == 0
    return root
