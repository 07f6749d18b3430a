"""mtlmech: Caruana-style multitask-learning mechanism experiments, seed-batched and statistically tested.

Modules: inputs, features, tasks (+ problems/) build synthetic problems; nets, training, protocol
train STL and MTL nets many seeds at a time; probes, curves, controls, sharing, trend measure what
they learned; stats, analysis test claims; runner, store, experiment, cli, provenance run and cache
experiments; plots and report make figures and figures/REPORT.md; suite, console and paths are the
``mtlmech`` command; results loads saved results (``mtlmech.load``, ``mtlmech.load_claims``); retraining re-trains one
saved run and returns its nets (``mtlmech.retrain``).
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
        from . import results
        return getattr(results, name)
    if name == "retrain":
        from .retraining import retrain
        return retrain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
