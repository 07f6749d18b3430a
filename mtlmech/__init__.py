"""mtlmech: Caruana-style multitask-learning mechanism experiments, seed-batched and statistically tested.

Modules: inputs, features, tasks (+ problems/) build synthetic problems; nets, training, protocol
train STL and MTL nets many seeds at a time; probes, curves, controls, sharing, trend measure what
they learned; stats, analysis test claims; runner, store, experiment, cli, provenance run and cache
experiments; plots and report make figures and figures/REPORT.md.
"""

import os

# Idle OpenMP threads sleep instead of spinning. With the default (spin, then sleep) two torch
# threads ran the trainer 13-20x slower than one whenever another process used a core (README,
# Speed). libgomp reads this when torch is first imported, so it only acts if mtlmech comes first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
