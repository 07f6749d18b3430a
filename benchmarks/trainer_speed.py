"""Trainer speed: plain per-seed loop, torch.func vmap ensemble, the mtlmech PyTorch trainer and
the fused per-member trainer (mtlmech.engine.fused), on one net, measured back to back in one run.

Net: 8 inputs, 16 sigmoid hidden, 4 sigmoid outputs, squared error, 256 patterns per seed,
full-batch SGD with momentum, 256 seeds. Two settings:

- as in the first version of this benchmark (no halt set, loss every epoch): plain loop, vmap
  ensemble and the PyTorch trainer (``ratio_vs_naive``, ``ratio_vs_vmap``);
- the canonical training run (a 256-row halt set checked every 10 epochs, per-task snapshots):
  the PyTorch trainer (``backend="torch"``) and the fused trainer (``ratio_fused_vs_torch``).

Before timing, every path is checked against the plain loop, and the fused trainer against the
PyTorch trainer on the canonical run (weights ≤ 1e-5). Then the machine's sgemm rate is measured
(a large ``torch.mm``) and the fused trainer's share of it reported; finally both trainers are timed
again while a second process busy-loops on one core (the loaded-machine run).

    python benchmarks/trainer_speed.py [--seeds 256] [--epochs 200] [--quick] [--threads N] [--json out.json]
"""

from __future__ import annotations  # noqa: I001  (mtlmech is imported before torch on purpose)

import mtlmech  # noqa: F401  (before torch: mtlmech's OpenMP wait policy)

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from mtlmech.engine import fused
from mtlmech.engine.nets import NetSpec, init_params
from mtlmech.engine.training import Batch, TrainSpec, train

D, H, K, N = 8, 16, 4, 256
LR, MOMENTUM = 0.5, 0.9
EVAL_EVERY = 10
# multiply-adds ×2: forward 2·N·(DH+HK), weight gradients 2·N·(DH+HK), hidden deltas 2·N·HK
FLOPS_PER_SEED_EPOCH = 4 * N * (D * H + H * K) + 2 * N * H * K
FLOPS_HALT_CHECK = 2 * N * (D * H + H * K)      # one forward pass over the halt rows


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
    """The PyTorch trainer as in the first version of this benchmark (no halt set)."""
    spec = NetSpec(n_inputs=D, n_outputs=K, hidden=(H,))
    result = train(spec, [p[seeds] for p in params], Batch(x[seeds], y[seeds], torch.ones(len(seeds), N, K)),
                   train_spec=TrainSpec(epochs=epochs, lr=LR, momentum=MOMENTUM), task_weights=torch.ones(len(seeds), K),
                   backend="torch")
    return result.final[0]


def canonical(backend, params, data, halt, seeds, epochs):
    """The canonical training run: halt set checked every EVAL_EVERY epochs, per-task snapshots."""
    spec = NetSpec(n_inputs=D, n_outputs=K, hidden=(H,))
    idx = torch.tensor(seeds)
    sub = [Batch(b.x[idx], b.y[idx], b.mask[idx]) for b in (data, halt)]
    return train(spec, [p[idx] for p in params], sub[0], halt=sub[1], task_weights=torch.ones(len(seeds), K),
                 train_spec=TrainSpec(epochs=epochs, lr=LR, momentum=MOMENTUM, eval_every=EVAL_EVERY), backend=backend)


def sgemm_gflops(threads: int, size: int = 2048, seconds: float = 1.0) -> float:
    """The machine's float32 matrix-multiply rate with ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(size, size), torch.rand(size, size)
        out = torch.empty(size, size)
        torch.mm(a, b, out=out)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b, out=out)
            count += 1
        return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(before)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and the fused trainer (default: theirs; the PyTorch trainer uses 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per path, interleaved; the best is kept")
    parser.add_argument("--no-load", action="store_true", help="skip the loaded-machine run")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.naive_seeds = 256, 60, 16
    if min(args.seeds, args.epochs, args.naive_seeds, args.repeats, args.threads or 1) < 1:
        print("error: --seeds, --epochs, --naive-seeds, --repeats and --threads must be ≥ 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
        fused.set_threads(args.threads)
    spec = NetSpec(n_inputs=D, n_outputs=K, hidden=(H,))
    params = init_params(spec, [("bench", s) for s in range(args.seeds)])
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.seeds, N, D, generator=g) > 0.5).float()
    y = (torch.rand(args.seeds, N, K, generator=g) > 0.5).float()
    data = Batch(x, y, torch.ones(args.seeds, N, K))
    halt = Batch((torch.rand(args.seeds, N, D, generator=g) > 0.5).float(), y, torch.ones(args.seeds, N, K))
    seeds = list(range(args.seeds))
    naive_seeds = seeds[:min(args.naive_seeds, args.seeds)]
    load_start = os.getloadavg()[0]

    # correctness first: every path agrees with the plain loop, the fused trainer with the PyTorch trainer
    check = seeds[:4]
    ref = naive_loop(params, x, y, check, 20)
    for name, fn in (("vmap", vmap_ensemble), ("mtlmech", mtlmech_trainer)):
        diff = (fn(params, x, y, check, 20) - ref).abs().max().item()
        if diff > 1e-4:
            print(f"error: {name} disagrees with the plain loop by {diff:.2e}", file=sys.stderr)
            return 1
    check = seeds[:16]
    a, b = (canonical(backend, params, data, halt, check, 100) for backend in ("fused", "torch"))
    diff = max((p - q).abs().max().item() for p, q in zip(a.final, b.final))
    same_epochs = (a.best_epoch == b.best_epoch).float().mean().item()
    if a.backend != "fused" or diff > 1e-5:
        print(f"error: the fused trainer ({a.backend}) disagrees with the PyTorch trainer by {diff:.2e}", file=sys.stderr)
        return 1
    print(f"checked: fused vs PyTorch trainer, {len(check)} seeds × 100 epochs: max weight difference {diff:.1e}, "
          f"best epochs identical for {same_epochs:.0%} of (seed, task)")
    mtlmech_trainer(params, x, y, seeds, 5)  # warm-up
    vmap_ensemble(params, x, y, seeds, 5)
    canonical("fused", params, data, halt, seeds, 5)

    def best_rates(paths: dict) -> dict:
        """seed-epochs/s of each path: the best of ``--repeats`` timings, taken round-robin so that a
        burst of load elsewhere on the machine hits every path alike."""
        best = dict.fromkeys(paths, 0.0)
        for _ in range(args.repeats):
            for name, (fn, fn_args, n_seeds) in paths.items():
                start = time.perf_counter()
                fn(*fn_args)
                best[name] = max(best[name], n_seeds * args.epochs / (time.perf_counter() - start))
        return best

    def canonical_paths(backend):
        return (canonical, (backend, params, data, halt, seeds, args.epochs), args.seeds)

    rates = best_rates({
        "naive_loop": (naive_loop, (params, x, y, naive_seeds, args.epochs), len(naive_seeds)),
        "torch_func_vmap": (vmap_ensemble, (params, x, y, seeds, args.epochs), args.seeds),
        "mtlmech": (mtlmech_trainer, (params, x, y, seeds, args.epochs), args.seeds),
        "torch_trainer": canonical_paths("torch"),
        "fused": canonical_paths("fused")})
    flops = {k: FLOPS_PER_SEED_EPOCH + (FLOPS_HALT_CHECK / EVAL_EVERY if k in ("torch_trainer", "fused") else 0)
             for k in rates}
    gflops = {k: rates[k] * flops[k] / 1e9 for k in rates}
    machine_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sgemm = sgemm_gflops(machine_threads)

    loaded = None
    if not args.no_load:  # a second process competing for one core
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            loaded = best_rates({"torch_trainer": canonical_paths("torch"), "fused": canonical_paths("fused")})
            fused.set_threads(1)
            loaded["fused_1_thread"] = best_rates({"fused": canonical_paths("fused")})["fused"]
            fused.set_threads(args.threads)
        finally:
            hog.kill()
            hog.wait()
        loaded["ratio_fused_vs_torch"] = round(loaded["fused"] / loaded["torch_trainer"], 2)

    result = {**{k: round(v, 1) for k, v in rates.items()},
              "ratio_vs_naive": round(rates["mtlmech"] / rates["naive_loop"], 2),
              "ratio_vs_vmap": round(rates["mtlmech"] / rates["torch_func_vmap"], 2),
              "ratio_fused_vs_torch": round(rates["fused"] / rates["torch_trainer"], 2),
              "gflops": {k: round(v, 3) for k, v in gflops.items()},
              "sgemm_gflops": round(sgemm, 1),
              "fused_fraction_of_sgemm": round(gflops["fused"] / sgemm, 3),
              "loaded": None if loaded is None else {k: round(v, 1) if isinstance(v, float) and k != "ratio_fused_vs_torch"
                                                     else v for k, v in loaded.items()},
              "setup": {"seeds": args.seeds, "epochs": args.epochs, "naive_seeds": len(naive_seeds),
                        "net": f"{D}-{H}-{K} sigmoid", "patterns": N, "halt_every": EVAL_EVERY,
                        "repeats": args.repeats, "timing": "best of the repeats, paths interleaved",
                        "cpu": cpu_name(), "cpus": machine_threads, "load_average_at_start": round(load_start, 2),
                        "torch_threads": torch.get_num_threads(), "torch_trainer_threads": 1,
                        "fused_threads": fused.get_threads(),
                        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch": torch.__version__,
                        "fused_kernel": fused.describe()}}
    print(f"machine: {result['setup']['cpu']}, {machine_threads} CPUs, load average {load_start:.2f} at start; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads; the PyTorch trainer runs 1), "
          f"fused trainer {fused.get_threads()} threads")
    print(f"{'path':18s} {'seed-epochs/s':>14s} {'GFLOP/s':>9s}")
    for k in rates:
        print(f"{k:18s} {rates[k]:14.0f} {gflops[k]:9.2f}")
    print(f"mtlmech vs plain loop: {result['ratio_vs_naive']:.1f}x   mtlmech vs vmap: {result['ratio_vs_vmap']:.2f}x")
    print(f"canonical run (halt every {EVAL_EVERY}): fused vs PyTorch trainer {result['ratio_fused_vs_torch']:.2f}x")
    print(f"sgemm ({machine_threads} threads): {sgemm:.1f} GFLOP/s; the fused trainer reaches "
          f"{result['fused_fraction_of_sgemm']:.0%} of it")
    if loaded:
        print(f"loaded machine (one busy-looping process): PyTorch trainer {loaded['torch_trainer']:.0f}, "
              f"fused {loaded['fused']:.0f} ({fused.get_threads()} threads), fused 1 thread {loaded['fused_1_thread']:.0f} "
              f"seed-epochs/s; fused vs PyTorch {loaded['ratio_fused_vs_torch']:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
