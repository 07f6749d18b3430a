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
