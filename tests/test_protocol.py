"""The fair protocol: the learning-rate grid trains in one batch and is chosen on the halt set only;
cache keys follow what a problem computes."""

import dataclasses

import numpy as np
import pytest

from mtlmech.engine.training import TORCH_TRAINER_VERSION, TrainSpec
from mtlmech.pipeline.cli import RunContext
from mtlmech.pipeline.experiment import unit_key
from mtlmech.problems.features import Feature, and_, or_, var, xor
from mtlmech.problems.inputs import InputSpace
from mtlmech.problems.tasks import Dataset, Problem, Splits, Task
from mtlmech.protocol import Condition, score_rows, train_conditions


def pair(first: int = 0, fn=None) -> Problem:
    f = xor(var(first), var(1)) if fn is None else Feature("F", fn)
    return Problem(name="pair", inputs=InputSpace(n_vars=4, kind="bits", n_irrelevant=2),
                   tasks=(Task("T", and_(f, var(2))), Task("U", or_(f, var(3)))), features={"F": f})


SPEC = TrainSpec(lr=0.5, epochs=300, eval_every=10, patience=5, lr_grid=(0.25, 1.0, 4.0))
CONDITIONS = [Condition("STL", ("T",)), Condition("MTL", ("T", "U"), report=("T",))]


def run(splits_for=None, seeds=(0, 1, 2, 3), conditions=CONDITIONS, spec=SPEC):
    return train_conditions(pair(), conditions, list(seeds), key=("protocol-test",), n_train=40, n_halt=40, n_test=60,
                            net=dict(hidden=(6,)), train_spec=spec, splits_for=splits_for)


def test_chosen_point_has_the_lowest_halt_error_of_its_grid():
    trained = run()
    for seed in range(4):
        for cond in ("STL", "MTL"):
            (i,) = trained.member_index(seed, cond)
            choice = trained.choices[i]
            assert choice["grid_size"] == 3 and choice["lr"] == pytest.approx(0.5 * choice["lr_mult"])
            # every grid point trained separately: the chosen one has the lowest halt value
            halts = []
            for m in (0.25, 1.0, 4.0):
                single = run(seeds=(seed,), conditions=[dataclasses.replace(c, lr_grid=(m,)) for c in CONDITIONS
                                                        if c.name == cond])
                halts.append(float(single.result.best_halt[0, 0]))
            assert halts[[0.25, 1.0, 4.0].index(choice["lr_mult"])] == min(halts)
            assert float(trained.result.best_halt[i, 0]) == min(halts)
            assert choice["lr_edge"] == {0.25: "low", 1.0: "", 4.0: "high"}[choice["lr_mult"]]


def test_selection_never_looks_at_test_data():
    """Replacing every test set (rows and targets) changes test scores but not one choice."""
    base = {}

    def normal(seed):
        from mtlmech.protocol import draw_splits
        base[seed] = draw_splits(pair(), ("protocol-test",), seed, n_train=40, n_halt=40, n_test=60)
        return base[seed]

    def scrambled(seed):
        s, t = base[seed], base[seed].test
        flipped = Dataset(z=t.z, x=t.x[::-1].copy(), y=1 - t.y, y_clean=1 - t.y_clean, mask=t.mask, features=t.features)
        return Splits(s.train, s.halt, flipped)

    a = run(splits_for=normal)
    b = run(splits_for=scrambled)
    assert a.choices == b.choices
    rows_a, rows_b = score_rows(a), score_rows(b)
    assert [r["test_error"] for s in rows_a for r in rows_a[s]["rows"]] != \
           [r["test_error"] for s in rows_b for r in rows_b[s]["rows"]]


def test_grid_points_share_data_and_initial_weights_and_rows_report_the_choice():
    trained = run(seeds=(5,))
    rows = score_rows(trained)[5]["rows"]
    assert {r["condition"] for r in rows} == {"STL", "MTL"}
    for r in rows:
        assert r["stopped_by"] in ("patience", "cap", "diverged") and 0 < r["stop_epoch"] <= SPEC.epochs
        assert r["lr_mult"] in (0.25, 1.0, 4.0) and r["grid_size"] == 3
        assert r["best_epoch"] <= r["stop_epoch"]


def test_bad_grids_are_refused():
    with pytest.raises(ValueError):
        TrainSpec(lr_grid=(1.0, 1.0))
    with pytest.raises(ValueError):
        TrainSpec(lr_grid=(0.0, 1.0))
    with pytest.raises(ValueError):
        Condition("X", ("T",), hidden_lr_grid=(float("nan"),)).grid((1.0,))


def test_cache_key_follows_what_the_problem_computes():
    run_ctx = RunContext()
    cfg = TrainSpec()
    def key(p):
        return unit_key("e", 1, cfg, run_ctx, problem=p)
    assert key(pair()) == key(pair())
    assert key(pair(first=0)) != key(pair(first=3))           # var(0) → var(3): same names, other inputs
    same_name_a = pair(fn=lambda z: np.logical_xor(z[:, 0] > 0.5, z[:, 1] > 0.5).astype(np.float64))
    same_name_b = pair(fn=lambda z: np.logical_and(z[:, 0] > 0.5, z[:, 1] > 0.5).astype(np.float64))
    assert key(same_name_a) != key(same_name_b)               # a custom Feature's function changed
    assert unit_key("e", 1, cfg, RunContext(stream="quick"), problem=pair()) != key(pair())
    assert unit_key("e", 1, cfg, RunContext(backend="torch"), problem=pair())["backend"] == f"torch-v{TORCH_TRAINER_VERSION}"


def test_pilot_rates_pick_the_lowest_mean_halt_per_condition():
    from mtlmech.protocol import pilot_rates
    kwargs = dict(n_train=40, n_halt=40, n_test=60, net=dict(hidden=(6,)), train_spec=SPEC)
    rates = pilot_rates(pair(), CONDITIONS, [0, 1, 2], key=("protocol-test", "pilot"), **kwargs)
    everything = train_conditions(pair(), CONDITIONS, [0, 1, 2], key=("protocol-test", "pilot"), select=False, **kwargs)
    assert sum(ch["chosen"] for ch in everything.choices) == 3 * len(CONDITIONS)
    for cond in ("STL", "MTL"):
        means = {}
        for i, ((_, c), ch) in enumerate(zip(everything.members, everything.choices)):
            if c.name == cond:
                means.setdefault(ch["lr_mult"], []).append(float(everything.result.best_halt[i, 0]))
        assert rates[cond] == (min(means, key=lambda m: np.mean(means[m])), 1.0)


def test_backend_is_passed_to_the_trainer():
    assert run(seeds=(0,), spec=dataclasses.replace(SPEC, epochs=20)).result.backend == "fused"
    torch_run = train_conditions(pair(), CONDITIONS, [0], key=("protocol-test",), n_train=40, n_halt=40, n_test=60,
                                 net=dict(hidden=(6,)), train_spec=dataclasses.replace(SPEC, epochs=20), backend="torch")
    assert torch_run.result.backend == "torch"
