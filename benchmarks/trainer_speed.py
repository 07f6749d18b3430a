"""Trainer speed: plain per-seed loop vs torch.func vmap ensemble vs the mtlmech batched trainer.

Same net for all three (8 inputs, 16 sigmoid hidden, 4 sigmoid outputs, squared error), 256
patterns per seed, full-batch SGD with momentum, one process, measured back to back in one run so
the ratios are comparable even on a noisy machine. Before timing, each path's first seeds are
checked to agree with the plain loop (prove the batched path is right before calling it fast).

    python benchmarks/trainer_speed.py [--seeds 256] [--epochs 200] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from mtlmech.nets import NetSpec, init_params
from mtlmech.training import Batch, TrainSpec, train

D, H, K, N = 8, 16, 4, 256
LR, MOMENTUM = 0.5, 0.9
FLOPS_PER_SEED_EPOCH = 6 * N * (D * H + H * K)  # forward 2·n·(dH+HK), backward ≈ twice that


def make_model(params, m):
    model = nn.Sequential(nn.Linear(D, H), nn.Sigmoid(), nn.Linear(H, K), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.copy_(params[0][m].T)
        model[0].bias.copy_(params[1][m])
        model[2].weight.copy_(params[2][m].T)
        model[2].bias.copy_(params[3][m])
    return model


def naive_loop(params, x, y, seeds, epochs):
    """One nn.Module + torch.optim.SGD per seed, trained one after another."""
    finals = []
    for m in seeds:
        model = make_model(params, m)
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        for _ in range(epochs):
            opt.zero_grad()
            loss = 0.5 * ((model(x[m]) - y[m]) ** 2).sum() / N
            loss.backward()
            opt.step()
        finals.append(model[0].weight.detach().T.clone())
    return torch.stack(finals)


def vmap_ensemble(params, x, y, seeds, epochs):
    """The PyTorch model-ensembling recipe: stacked parameters, vmap(grad(functional_call))."""
    models = [make_model(params, m) for m in seeds]
    weights, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(w, b, xi, yi):
        return 0.5 * ((functional_call(base, (w, b), (xi,)) - yi) ** 2).sum() / N

    grad_fn = vmap(grad(loss_fn))
    velocity = {k: torch.zeros_like(v) for k, v in weights.items()}
    xs, ys = x[seeds], y[seeds]
    for _ in range(epochs):
        g = grad_fn(weights, buffers, xs, ys)
        with torch.no_grad():
            for k in weights:
                velocity[k].mul_(MOMENTUM).add_(g[k])
                weights[k].sub_(LR * velocity[k])
    return weights["0.weight"].detach().transpose(1, 2)


def mtlmech_trainer(params, x, y, seeds, epochs):
    spec = NetSpec(n_inputs=D, n_outputs=K, hidden=(H,))
    result = train(spec, [p[seeds] for p in params], Batch(x[seeds], y[seeds], torch.ones(len(seeds), N, K)),
                   train_spec=TrainSpec(epochs=epochs, lr=LR, momentum=MOMENTUM), task_weights=torch.ones(len(seeds), K))
    return result.final[0]


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--naive-seeds", type=int, default=32, help="seeds timed in the plain loop (rate is per seed)")
    parser.add_argument("--quick", action="store_true", help="small run (< 1 minute)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.naive_seeds = 256, 60, 16
    if args.seeds < 1 or args.epochs < 1 or args.naive_seeds < 1:
        print("error: --seeds, --epochs and --naive-seeds must be ≥ 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = NetSpec(n_inputs=D, n_outputs=K, hidden=(H,))
    params = init_params(spec, [("bench", s) for s in range(args.seeds)])
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.seeds, N, D, generator=g) > 0.5).float()
    y = (torch.rand(args.seeds, N, K, generator=g) > 0.5).float()
    seeds = list(range(args.seeds))
    naive_seeds = seeds[:min(args.naive_seeds, args.seeds)]

    # correctness first: all three paths agree on the first seeds
    check = seeds[:4]
    ref = naive_loop(params, x, y, check, 20)
    for name, fn in (("vmap", vmap_ensemble), ("mtlmech", mtlmech_trainer)):
        diff = (fn(params, x, y, check, 20) - ref).abs().max().item()
        if diff > 1e-4:
            print(f"error: {name} disagrees with the plain loop by {diff:.2e}", file=sys.stderr)
            return 1
    mtlmech_trainer(params, x, y, seeds, 5)  # warm-up
    vmap_ensemble(params, x, y, seeds, 5)

    _, t_naive = timed(naive_loop, params, x, y, naive_seeds, args.epochs)
    _, t_vmap = timed(vmap_ensemble, params, x, y, seeds, args.epochs)
    _, t_ours = timed(mtlmech_trainer, params, x, y, seeds, args.epochs)
    rate = {"naive_loop": len(naive_seeds) * args.epochs / t_naive,
            "torch_func_vmap": args.seeds * args.epochs / t_vmap,
            "mtlmech": args.seeds * args.epochs / t_ours}
    result = {**{k: round(v, 1) for k, v in rate.items()},
              "ratio_vs_naive": round(rate["mtlmech"] / rate["naive_loop"], 2),
              "ratio_vs_vmap": round(rate["mtlmech"] / rate["torch_func_vmap"], 2),
              "gflops": {k: round(v * FLOPS_PER_SEED_EPOCH / 1e9, 3) for k, v in rate.items()},
              "setup": {"seeds": args.seeds, "epochs": args.epochs, "naive_seeds": len(naive_seeds),
                        "net": f"{D}-{H}-{K} sigmoid", "patterns": N, "threads": torch.get_num_threads(),
                        "torch": torch.__version__}}
    print(f"{'path':18s} {'seed-epochs/s':>14s} {'GFLOP/s':>9s}")
    for k in rate:
        print(f"{k:18s} {rate[k]:14.0f} {result['gflops'][k]:9.2f}")
    print(f"mtlmech vs plain loop: {result['ratio_vs_naive']:.1f}x   mtlmech vs vmap: {result['ratio_vs_vmap']:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
