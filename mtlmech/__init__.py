"""mtlmech: Caruana-style multitask-learning mechanism experiments, seed-batched and statistically tested.

The library is in layers; each imports only the layers above it in this list (``tests/test_layers.py``
checks it by reading every import):

- ``engine/``: nets, the two trainers (PyTorch reference and fused C++ kernel), seeding
- ``problems/``: tasks, input spaces, features and the problem families
- ``protocol``: learning-rate grids chosen on the halt set, STL/MTL conditions
- ``measures/``: probes, sharing, curves, the controls' diagnostics
- ``stats/``: statistical tests, claims and their judgement, paired comparisons, trends
- ``pipeline/``: command line, experiment driver, runner and cache, outputs, loading and re-training
- ``report/``: the markdown report, figures, citations
- ``suite``, ``console``: ``run_all.py`` and the ``mtlmech`` command

``mtlmech.load`` / ``mtlmech.load_claims`` load saved results; ``mtlmech.retrain`` re-trains one saved
run and returns its nets.
"""

import os

# Idle OpenMP threads sleep instead of spinning. With the default (spin, then sleep) two torch
# threads ran the trainer 13-20x slower than one whenever another process used a core (README,
# Speed). libgomp reads this when torch is first imported, so it only acts if mtlmech comes first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["load", "load_claims", "retrain"]


def __getattr__(name: str):
    """``mtlmech.load``, ``mtlmech.load_claims`` and ``mtlmech.retrain`` (imported on first use: pandas
    and torch load only then)."""
    if name in ("load", "load_claims"):
        from .pipeline import results
        return getattr(results, name)
    if name == "retrain":
        from .pipeline.retraining import retrain
        return retrain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
