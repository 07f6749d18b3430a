"""mtlmech: Caruana-style multitask-learning mechanism experiments, seed-batched and statistically tested.

Modules: inputs, features, tasks (+ problems/) build synthetic problems; nets, training, protocol
train STL and MTL nets many seeds at a time; probes, curves, controls, sharing, trend measure what
they learned; stats, analysis test claims; runner, store, experiment, cli, provenance run and cache
experiments; plots and report make figures and figures/REPORT.md.
"""

__version__ = "0.1.0"
