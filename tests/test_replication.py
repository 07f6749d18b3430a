"""The replication sample, seed discipline (the registry), the fit guard's record and the grid-edge
helper (issue 25)."""

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from mtlmech.pipeline.cli import STREAMS
from mtlmech.pipeline.experiment import (
    REPLICATE_STREAM,
    FitGuard,
    full_profile_entries,
    grid_edge_report,
    training_record,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
import parity_tasks  # noqa: E402

import run_all  # noqa: E402

TINY_FULL = ["--profile", "full", "--n-train", "16", "32", "--primary-n", "16", "--train.epochs", "40", "--n-test", "50",
             "--n-halt", "20", "--net.hidden", "4", "--train.lr-grid", "1", "2", "--no-progress", "--seeds", "3"]


def test_the_replicate_stream_is_used_by_no_profile_or_pilot():
    assert REPLICATE_STREAM not in STREAMS.values() and REPLICATE_STREAM != "pilot"


@pytest.mark.parametrize("name", sorted(run_all.discover()))
def test_every_experiment_matches_its_registry(name):
    """A changed construction or threshold on a committed stream needs a new VERSION (or stream)."""
    exp = run_all.discover()[name]
    path = exp.registry_path()
    assert path.exists(), f"{path} missing: register the experiment's committed streams"
    registered = json.loads(path.read_text(encoding="utf-8")).get(str(exp.version), {})
    for stream, entry in full_profile_entries(exp).items():
        assert registered.get(stream) == entry, (
            f"{name} VERSION {exp.version} stream {stream}: construction or thresholds changed; bump VERSION")


@pytest.fixture(scope="module")
def tiny_full(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_full")
    exp = dataclasses.replace(parity_tasks.EXPERIMENT, registry=root / "registry.json")
    assert exp.main([*TINY_FULL, "--out", str(root / "out")]) == 0
    return exp, root


def test_a_changed_construction_on_a_registered_stream_is_refused(tiny_full, capsys):
    exp, root = tiny_full
    registry = json.loads((root / "registry.json").read_text())
    assert set(registry[str(exp.version)]) == {"confirm", REPLICATE_STREAM}
    capsys.readouterr()
    assert exp.main([*TINY_FULL, "--train.patience", "7", "--out", str(root / "other")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bump VERSION or draw from a new stream" in err and "construction" in err
    assert not (root / "other" / "parity_tasks" / "summary.json").exists()
    changed = dataclasses.replace(exp, registration={"DA4": {"sesoi": 0.02}, "DA4u": {"sesoi": 0.01}})
    assert changed.main([*TINY_FULL, "--replot", "--out", str(root / "out")]) == 2
    assert "thresholds" in capsys.readouterr().err
    assert exp.main([*TINY_FULL, "--out", str(root / "out")]) == 0   # the registered construction runs (cached)


def test_the_full_profile_judges_an_independent_replication_sample(tiny_full):
    exp, root = tiny_full
    out = root / "out" / "parity_tasks"
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["sample"]) == {"confirm", REPLICATE_STREAM}
    confirm, rep = (runs[runs["sample"] == s] for s in ("confirm", REPLICATE_STREAM))
    assert set(confirm["unit"]).isdisjoint(rep["unit"])
    a = confirm.set_index(["seed", "n_train", "condition", "task"])["test_error"]
    b = rep.set_index(["seed", "n_train", "condition", "task"])["test_error"]
    assert not a.sort_index().equals(b.sort_index())   # other data and initial weights
    summary = json.loads((out / "summary.json").read_text())
    for c in summary["claims"]:
        assert set(c["replication"]) >= {"verdict", "verdict_reason", "effect", "ci", "p_value", "n"}
        assert c["fragile"] == (c["replication"]["verdict"] != c["verdict"])
        assert c["rule_version"] == "v3" and c["sesoi"] == 0.01 and c["premise"] is False
        assert 0 <= c["p_same_verdict"] <= 1
        assert all("fit_fraction" in t for t in c["training"].values())
    assert summary["tally"]["counted"] + summary["tally"]["fragile"] == len(summary["claims"])
    assert summary["claims"][0]["n"] == 3 and summary["rules"]["replication"]["stream"] == REPLICATE_STREAM


def test_fit_fraction_counts_unfitted_nets_by_the_declared_guard():
    runs = pd.DataFrame({"unit": "u", "seed": range(8), "condition": "STL", "trained_tasks": "T", "task": "T",
                         "stopped_by": "patience", "saturated": [True] + [False] * 7,
                         "best_epoch": [500, 10, 500, 500, 500, 500, 500, 500],
                         "train_error": [0, 0, 0.2, 0.3, 0, 0, 0, 0]})
    default = training_record(runs, FitGuard(), eval_every=10)
    assert default["fit_fraction"] == pytest.approx(2 / 8) and "saturated: 1" in default["fit_detail"]
    declared = training_record(runs, FitGuard(max_train_error=0.05), eval_every=10)
    assert declared["fit_fraction"] == pytest.approx(4 / 8) and "train error > 0.05: 2" in declared["fit_detail"]
    assert training_record(runs, FitGuard(max_train_error=0.05, tasks=("other",)), 10)["fit_fraction"] == pytest.approx(2 / 8)


def test_grid_edge_report_reads_a_pilot_run(parity_tiny_out):
    report = grid_edge_report(parity_tiny_out / "parity_tasks")
    assert set(report) == {"DA4", "DA4u"}
    assert set(report["DA4"]["edge_fraction"]) == {"MTL", "STL"}
    assert report["DA4u"]["flagged"] == []                        # one rate: never at an edge
    assert all(0 <= v <= 1 for v in report["DA4"]["edge_fraction"].values())


def test_the_v2_stopping_default_enters_no_cache_key_even_in_nested_training_specs():
    """Adding TrainSpec.stopping moved no committed key: left out of ``train`` and of nested specs
    (data_amplification's ``da3_train``, controls' ``hint_train``) while it is ``all_tasks``."""
    import dataclasses

    from mtlmech.engine.training import TrainSpec
    from mtlmech.pipeline.experiment import key_config

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        train: TrainSpec = TrainSpec()
        da3_train: TrainSpec = TrainSpec(epochs=50)
        per_task_train: TrainSpec = TrainSpec(stopping="per_task")

    key = key_config(Cfg())
    assert "stopping" not in key["train"] and "stopping" not in key["da3_train"]
    assert key["per_task_train"]["stopping"] == "per_task"
