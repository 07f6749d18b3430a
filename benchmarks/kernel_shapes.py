"""Fused-kernel efficiency per net shape: the shapes that carry the v2 full profile's training time,
each trained on one thread for a fixed number of epochs (no patience, so every shape does the same
epochs), in GFLOP/s and as a fraction of the machine's one-thread sgemm rate.

The shapes and their share of the full profile were measured by timing ``fused.run_kernel`` inside
each experiment (10 seeds of its full-profile configuration): controls, data_amplification,
inputs_as_outputs and representation_bias take 70 % of the full profile's training, and almost all
of their time is in these shapes. Short training sets (rows are the vector axis) and narrow layers
run furthest below sgemm; this table is where a faster kernel has to gain.

Each shape runs twice: every member training all K outputs (MTL), and each member training one of
them (STL, ``task_weights`` one-hot; the kernel computes only the outputs a member trains).
FLOPs count multiply-adds twice over the outputs trained (k = K or 1): training 6·n·(dH + Hk) per
epoch (forward, weight gradients, hidden deltas and the output layer's share), halt checks
2·n_halt·(dH + Hk) every ``eval_every`` epochs; exponentials are not counted.

    python benchmarks/kernel_shapes.py [--members 32] [--epochs 1000] [--json out.json]
"""

from __future__ import annotations  # noqa: I001  (mtlmech is imported before torch on purpose)

import mtlmech  # noqa: F401  (before torch: mtlmech's OpenMP wait policy)

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trainer_speed import cpu_name, sgemm_gflops  # noqa: E402

from mtlmech.engine.nets import NetSpec, init_params  # noqa: E402
from mtlmech.engine.training import Batch, TrainSpec, train  # noqa: E402

# (experiment, inputs d, hidden H, outputs K, training rows n, halt rows, eval_every)
SHAPES = (
    ("representation_bias", 6, 8, 2, 36, 12, 10),
    ("representation_bias", 6, 8, 2, 48, 48, 10),
    ("controls", 8, 16, 5, 64, 128, 10),
    ("controls", 8, 256, 5, 64, 128, 10),
    ("controls", 12, 256, 2, 32, 128, 10),
    ("data_amplification", 8, 16, 2, 100, 200, 10),
    ("data_amplification", 8, 16, 2, 1600, 200, 10),
    ("inputs_as_outputs", 22, 256, 3, 50, 1000, 25),
    ("inputs_as_outputs", 21, 16, 2, 50, 1000, 20),
)


def time_shape(d: int, h: int, k: int, n: int, n_halt: int, eval_every: int, *, members: int, epochs: int,
               one_task: bool) -> float:
    """Best of three seconds for ``members`` nets of this shape trained ``epochs`` epochs on one thread,
    each training all K outputs or (``one_task``) one of them, in turn."""
    spec = NetSpec(n_inputs=d, hidden=(h,), n_outputs=k)
    params = init_params(spec, [("kernel_shapes", i) for i in range(members)])
    g = torch.Generator().manual_seed(0)
    data = Batch(torch.rand(n, d, generator=g), (torch.rand(n, k, generator=g) > 0.5).float(), torch.ones(n, k))
    halt = Batch(torch.rand(n_halt, d, generator=g), (torch.rand(n_halt, k, generator=g) > 0.5).float(),
                 torch.ones(n_halt, k))
    ts = TrainSpec(epochs=epochs, lr=0.1, eval_every=eval_every)
    weights = torch.eye(k)[torch.arange(members) % k] if one_task else torch.ones(members, k)

    def run():
        train(spec, params, data, train_spec=ts, task_weights=weights, halt=halt, backend="fused")
    run()   # compile and warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.members < 1 or args.epochs < 1:
        print("kernel_shapes.py: --members and --epochs must be ≥ 1", file=sys.stderr)
        return 2
    from mtlmech.engine import fused
    fused.set_threads(1)
    sgemm = sgemm_gflops(1)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; one thread; sgemm {sgemm:.1f} GFLOP/s; {args.members} members × "
          f"{args.epochs} epochs per shape")
    print(f"{'experiment':<20} {'d-H-K':>9} {'rows':>5} {'halt':>5} {'trained':>8} {'GFLOP/s':>8} {'of sgemm':>9}")
    rows = []
    for name, d, h, k, n, n_halt, every in SHAPES:
        for trained in ("all", "one"):
            seconds = time_shape(d, h, k, n, n_halt, every, members=args.members, epochs=args.epochs,
                                 one_task=trained == "one")
            kt = k if trained == "all" else 1
            flops = args.members * args.epochs * (6 * n * (d * h + h * kt) + 2 * n_halt * (d * h + h * kt) / every)
            gflops = flops / seconds / 1e9
            rows.append(dict(experiment=name, d=d, hidden=h, k=k, rows=n, halt_rows=n_halt, eval_every=every,
                             trained=trained, seconds=round(seconds, 4), gflops=round(gflops, 2),
                             of_sgemm=round(gflops / sgemm, 3)))
            print(f"{name:<20} {f'{d}-{h}-{k}':>9} {n:>5} {n_halt:>5} {trained:>8} {gflops:>8.1f} {gflops / sgemm:>8.0%}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(dict(sgemm_gflops_1_thread=round(sgemm, 1), members=args.members,
                                             epochs=args.epochs, shapes=rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
