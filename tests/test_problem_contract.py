"""Contract: every registered problem (and the docs example plugin) goes through generation, a short
STL/MTL training, probing and the results store."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.engine.seeding import numpy_rng
from mtlmech.engine.training import TrainSpec
from mtlmech.measures.probes import agreement, outputs_on
from mtlmech.pipeline.runner import Unit, run_units
from mtlmech.problems.tasks import load_plugin, make_problem, problem_names
from mtlmech.protocol import Condition, score_rows, train_conditions

ROOT = Path(__file__).resolve().parent.parent
load_plugin(ROOT / "docs" / "examples" / "xor_pair.py")


@pytest.mark.parametrize("name", problem_names())
def test_registered_problem_contract(name, tmp_path):
    problem = make_problem(name)
    assert problem.n_tasks >= 1 and problem.n_inputs >= 1
    splits = problem.splits(numpy_rng("contract", name), n_train=24, n_halt=16, n_test=32)
    for part in (splits.train, splits.halt, splits.test):
        assert part.x.shape[1] == problem.n_inputs and part.y.shape[1] == problem.n_tasks
        assert np.isfinite(part.x).all() and np.isfinite(part.y).all()
    main = problem.task_names[0]
    conditions = [Condition("STL", (main,)), Condition("MTL", tuple(problem.task_names), report=(main,))]

    def compute(seeds):
        trained = train_conditions(problem, conditions, seeds, key=("contract", name), n_train=24, n_halt=16,
                                   n_test=32, net=dict(hidden=(4,)), train_spec=TrainSpec(epochs=5, lr=0.1))
        for probe in problem.probes:
            data = problem.probe(numpy_rng("probe", name), probe, 20)
            out = outputs_on(trained.result.spec, trained.result.final, torch.as_tensor(data.x))
            assert agreement(out, data.y_clean[:, 0]).shape == (len(trained.members), problem.n_tasks)
        return score_rows(trained)

    report = run_units([Unit(key={"contract": name}, compute=compute)], range(2), tmp_path)
    rows = [r for rec in report.records.values() for s in rec.values() for r in s["rows"]]
    assert report.computed == 2 and len(rows) == 4
    assert {r["condition"] for r in rows} == {"STL", "MTL"}
    assert all(np.isfinite(r["test_mse"]) for r in rows)
