"""What the fair protocol costs on the parity experiment, measured in one run.

Trains the same seeds of parity_tasks' primary unit (n = 128) three ways, back to back in one
process, and reports wall and CPU seconds and the ratios:

- v1 protocol: STL and MTL at the single rate 0.5, 2000 epochs, no patience, PyTorch trainer;
- v2 protocol, PyTorch trainer: parity_tasks' registered configuration (9-point learning-rate grid
  per condition, untuned controls, patience stopping, 50 000-epoch cap);
- v2 protocol, fused trainer (the default).

    python benchmarks/protocol_cost.py [--seeds 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import parity_tasks  # noqa: E402

from mtlmech.engine.training import TrainSpec  # noqa: E402
from mtlmech.protocol import train_conditions  # noqa: E402


def timed(label: str, conditions, spec: TrainSpec, seeds: list[int], backend: str) -> dict:
    cfg = parity_tasks.Config()
    wall, cpu = time.perf_counter(), time.process_time()
    trained = train_conditions(parity_tasks.problem(cfg), conditions, seeds, key=("protocol-cost", 128), n_train=128,
                               n_halt=cfg.n_halt, n_test=cfg.n_test, net=cfg.net, train_spec=spec, backend=backend)
    out = {"label": label, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
           "nets_trained": len(seeds) * sum(len(c.grid(spec.lr_grid)) for c in conditions),
           "backend": trained.result.backend}
    print(f"{label:34s} {out['wall_s']:8.1f} s wall {out['cpu_s']:8.1f} s CPU  ({out['nets_trained']} nets, {out['backend']})",
          flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    cfg = parity_tasks.Config()
    v1_conditions = [c for c in parity_tasks.CONDITIONS if c.name in ("STL", "MTL")]
    v1_spec = TrainSpec(lr=0.5, momentum=0.9, epochs=2000, eval_every=10)
    runs = [timed("v1 protocol, PyTorch trainer", [replace(c, lr_grid=(1.0,)) for c in v1_conditions], v1_spec, seeds, "torch"),
            timed("v2 protocol, PyTorch trainer", list(parity_tasks.CONDITIONS), cfg.train, seeds, "torch"),
            timed("v2 protocol, fused trainer", list(parity_tasks.CONDITIONS), cfg.train, seeds, "auto")]
    v1, v2_torch, v2_fused = (r["cpu_s"] for r in runs)
    ratios = {"v2_torch_over_v1_cpu": v2_torch / v1, "v2_fused_over_v1_cpu": v2_fused / v1,
              "fused_speedup_on_v2_cpu": v2_torch / v2_fused}
    for k, v in ratios.items():
        print(f"{k:28s} {v:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "runs": runs, **ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
