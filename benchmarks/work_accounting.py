"""Where the training work goes (issue 29): per experiment, member-epochs and FLOPs split into the
chosen grid point up to its best epoch, the chosen point's patience overhang (epochs after its last
best halt epoch), the grid points not chosen (up to their best epoch / overhang), halt checks and
test curves; the share the exact saving (identical members trained once,
:func:`mtlmech.protocol.identical_members`) removes; and the achieved GFLOP/s against this
machine's one-thread sgemm rate.

Runs each experiment's units for ``--seeds`` seeds of a profile (default: the full profile, 1 seed)
on one thread, inside :func:`mtlmech.protocol.record_work`, which records what each
``train_conditions`` call trained and what the trainer returned (stop and best epochs per member,
the chosen grid points, shapes); no number changes. Experiments that call the trainer directly
(transfer's second stage) are counted only where they go through ``train_conditions``.

FLOPs count multiply-adds twice, as ``benchmarks/kernel_shapes.py``: a member training k of K
outputs on n rows does 6·n·W per epoch (forward, weight gradients, deltas), W = the weights of its
layers with the output layer cut to k outputs; each halt check 2·n_halt·W (one every
``eval_every`` epochs and at the cap), each test-curve point 2·n_test·W. Padding rows,
exponentials and the update are not counted. The member-epoch split uses each member's last best
epoch over its trained tasks; "chosen" is the grid point the halt set picked for its condition
(one duplicate net can be chosen for one condition and not for another: it is counted per member).
The peak is a one-thread ``torch.mm`` of 2048² float32 matrices (MKL/OpenBLAS sgemm), timed 1 s.

    python benchmarks/work_accounting.py [--seeds 1] [--profile full] [--only NAME ...] [--units K]
                                         [--set "--flag value ..."] [--json out.json]
"""

from __future__ import annotations  # noqa: I001  (mtlmech is imported before torch on purpose)

import mtlmech  # noqa: F401  (before torch: mtlmech's OpenMP wait policy)

import argparse
import importlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from mtlmech.engine import fused  # noqa: E402
from mtlmech.protocol import record_work  # noqa: E402

PARTS = ("chosen_to_best", "chosen_overhang", "unchosen_to_best", "unchosen_overhang")
FLOP_PARTS = PARTS + ("halt_checks", "test_curves")


def account(record: dict) -> dict:
    """Member-epochs and FLOPs of one ``train_conditions`` call, split as in the module docstring."""
    out = {f"epochs_{p}": 0 for p in PARTS} | {f"flops_{p}": 0.0 for p in FLOP_PARTS}
    out.update(members=record["n_members"], trained_members=len(set(record["source"])), shared_epochs=0,
               shared_flops=0.0)
    layers, every, cap = record["layers"], record["eval_every"], record["epochs"]
    chosen = set(record["chosen"])
    for i in range(record["n_members"]):
        trained = record["task_weights"][i] > 0
        stop = int(record["stop_epoch"][i])
        best = int(record["best_epoch"][i][trained].max()) if trained.any() and record["patience"] is not None else stop
        best = min(max(best, 0), stop)
        k = int(trained.sum())
        weights = sum(a * b for a, b in zip(layers[:-2], layers[1:-1])) + layers[-2] * k
        checks = stop // every + (1 if stop == cap and stop % every else 0)
        n, nh, nt = (record["rows"][part][i] for part in ("train", "halt", "test"))
        kind = "chosen" if i in chosen else "unchosen"
        flops = {f"{kind}_to_best": 6.0 * n * weights * best, f"{kind}_overhang": 6.0 * n * weights * (stop - best),
                 "halt_checks": 2.0 * nh * weights * checks,
                 "test_curves": 2.0 * nt * weights * checks if record["record_curves"] else 0.0}
        out[f"epochs_{kind}_to_best"] += best
        out[f"epochs_{kind}_overhang"] += stop - best
        for part, value in flops.items():
            out[f"flops_{part}"] += value
        if record["source"][i] != i:
            out["shared_epochs"] += stop
            out["shared_flops"] += sum(flops.values())
    return out


def total(acc: dict, what: str) -> float:
    return sum(acc[f"{what}_{p}"] for p in (PARTS if what == "epochs" else FLOP_PARTS))


def run_experiment(name: str, args) -> dict:
    module = importlib.import_module(name)
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--profile", args.profile, "--seeds", str(args.seeds), "--out", tmp, *shlex.split(args.set or "")]
        _, opts, _, units = module.EXPERIMENT.prepare(argv)
    units = units[:args.units] if args.units else units
    seeds = opts.seed_list
    acc = {f"epochs_{p}": 0 for p in PARTS} | {f"flops_{p}": 0.0 for p in FLOP_PARTS}
    acc.update(members=0, trained_members=0, shared_epochs=0, shared_flops=0.0)
    seconds = 0.0
    for unit in units:
        start = time.process_time()
        with record_work() as records:
            (unit.train or unit.compute)(seeds)
        seconds += time.process_time() - start
        for record in records:
            for key, value in account(record).items():
                acc[key] += value
    acc.update(experiment=name, units=len(units), seeds=len(seeds), cpu_seconds=seconds)
    acc["epochs_total"], acc["flops_total"] = total(acc, "epochs"), total(acc, "flops")
    done = acc["flops_total"] - acc["shared_flops"]   # what was trained (duplicates once)
    acc["gflops_per_s"] = done / seconds / 1e9 if seconds > 0 else float("nan")
    return acc


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f}" if whole else "    -"


def table(rows: list[dict], peak: float) -> str:
    head = ("| experiment | units×seeds | members (trained) | member-epochs | chosen ≤best % | chosen overhang % | "
            "not chosen ≤best % | not chosen overhang % | GFLOP | train % | halt checks % | test curves % | "
            "shared: epochs % | shared: FLOPs % | GFLOP/s | % of peak |")
    lines = [head, "|" + "---|" * head.count(" | ")  + "---|"]
    for r in rows:
        me, fl = r["epochs_total"], r["flops_total"]
        train = sum(r[f"flops_{p}"] for p in PARTS)
        lines.append(
            f"| {r['experiment']} | {r['units']}×{r['seeds']} | {r['members']} ({r['trained_members']}) | {me:,} | "
            + " | ".join(pct(r[f"epochs_{p}"], me) for p in PARTS)
            + f" | {fl / 1e9:.2f} | {pct(train, fl)} | {pct(r['flops_halt_checks'], fl)} | {pct(r['flops_test_curves'], fl)}"
            f" | {pct(r['shared_epochs'], me)} | {pct(r['shared_flops'], fl)} | {r['gflops_per_s']:.2f} | "
            f"{pct(r['gflops_per_s'], peak)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per unit (default 1)")
    parser.add_argument("--profile", default="full", help="profile (default full)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these experiments (default: all)")
    parser.add_argument("--units", type=int, default=None, help="only the first K units of each experiment")
    parser.add_argument("--set", default=None, help="extra experiment flags, one string (e.g. a tiny setting)")
    parser.add_argument("--no-peak", action="store_true", help="skip the sgemm peak measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.units is not None and args.units < 1):
        parser.error("--seeds and --units must be ≥ 1")
    if args.only:
        names = list(args.only)
    else:
        import run_all
        names = sorted(run_all.discover())
    fused.set_threads(1)
    peak = float("nan")
    if not args.no_peak:
        from trainer_speed import sgemm_gflops
        peak = sgemm_gflops(1)
    rows = [run_experiment(name, args) for name in names]
    print(f"one-thread sgemm peak: {peak:.1f} GFLOP/s (torch.mm 2048², float32)")
    print(table(rows, peak))
    if args.json:
        args.json.write_text(json.dumps({"peak_gflops_1_thread": peak, "profile": args.profile, "seeds": args.seeds,
                                         "experiments": rows}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
