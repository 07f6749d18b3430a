"""mtlmech.load / load_claims on a tiny parity_tasks run: units.json beside runs.csv, config columns
joined per unit, claims as a table, and clear errors for what is missing."""

import json

import pandas as pd
import pytest

import mtlmech
from mtlmech.pipeline.results import flatten, load, load_claims
from mtlmech.pipeline.runner import Unit


@pytest.fixture(scope="module")
def out(parity_tiny_out):
    return parity_tiny_out


def test_units_json_maps_every_unit_of_runs_csv_to_the_key_it_hashes(out):
    folder = out / "parity_tasks"
    units = json.loads((folder / "units.json").read_text())
    runs = pd.read_csv(folder / "runs.csv")
    assert set(units) == set(runs["unit"]) and len(units) == 2
    for unit_hash, key in units.items():
        assert Unit(key=key, compute=None).hash == unit_hash   # exactly the key that was hashed
        assert key["experiment"] == "parity_tasks" and key["point"]["n_train"] in (16, 32)


def test_load_joins_each_units_config_as_columns(out):
    runs = pd.read_csv(out / "parity_tasks" / "runs.csv")
    units = json.loads((out / "parity_tasks" / "units.json").read_text())
    df = mtlmech.load("parity_tasks", out=out)
    assert len(df) == len(runs) and list(df.columns[:len(runs.columns)]) == list(runs.columns)
    for unit_hash, key in units.items():                    # every field of a unit's key, on each of its rows
        rows = df[df["unit"] == unit_hash]
        for column, value in flatten(key).items():
            assert rows[column].map(lambda v, value=value: v == value).all(), column
    assert {"experiment", "version", "device", "point.n_train"} <= set(df.columns)
    assert any(c.startswith("config.") for c in df.columns)
    assert (df["point.n_train"] == df["n_train"]).all()      # the sweep point matches the row's own column
    assert df["config.parity_bits"].iloc[0] == (1, 2, 3, 4, 5)   # lists become tuples: groupable
    assert df.groupby(["point.n_train", "condition"])["test_error"].size().eq(3).all()


def test_load_claims_is_one_row_per_claim_of_the_summary(out):
    summary = json.loads((out / "parity_tasks" / "summary.json").read_text())
    claims = load_claims("parity_tasks", out=out)
    assert list(claims["id"]) == [c["id"] for c in summary["claims"]] and "DA4" in list(claims["id"])
    for row, claim in zip(claims.itertuples(), summary["claims"]):
        assert row.experiment == "parity_tasks" and row.verdict == claim["verdict"] and row.n == claim["n"]
        assert (row.ci_low, row.ci_high) == tuple(claim["ci"]) and row.effect == claim["effect"]
        assert row.p_holm == claim["details"]["p_holm"] and "p_holm" not in row.details


def test_load_finds_the_project_default_output(out, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    (project / "results" / "quick").mkdir(parents=True)
    (project / "results" / "quick" / "parity_tasks").symlink_to(out / "parity_tasks")
    monkeypatch.setenv("MTLMECH_ROOT", str(project))
    assert len(load("parity_tasks", profile="quick")) == len(load("parity_tasks", out=out))
    with pytest.raises(FileNotFoundError, match="no results for 'parity_tasks' in .*figures"):
        load("parity_tasks")


def test_missing_results_are_clear_errors(out, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no results for 'nope' .*found: parity_tasks"):
        load("nope", out=out)
    with pytest.raises(ValueError, match="profile must be quick or full"):
        load("parity_tasks", out=out, profile="medium")
    old = tmp_path / "old" / "parity_tasks"        # results written before units.json existed
    old.mkdir(parents=True)
    (old / "runs.csv").write_text((out / "parity_tasks" / "runs.csv").read_text())
    with pytest.raises(FileNotFoundError, match="units.json does not exist"):
        load("parity_tasks", out=tmp_path / "old")
    units = json.loads((out / "parity_tasks" / "units.json").read_text())
    (old / "units.json").write_text(json.dumps(dict(list(units.items())[:1])))   # one unit missing
    with pytest.raises(ValueError, match="units missing from units.json"):
        load("parity_tasks", out=tmp_path / "old")
    with pytest.raises(FileNotFoundError, match="summary.json does not exist"):
        load_claims("parity_tasks", out=tmp_path / "old")


def test_flatten_nests_with_dots_and_a_clashing_column_gets_a_prefix(tmp_path):
    assert flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": "x"}}, "f": {}}) == \
        {"a": 1, "b.c": (1, 2), "b.d.e": "x", "f": {}}
    folder = tmp_path / "toy"
    folder.mkdir()
    pd.DataFrame({"unit": ["u1", "u2"], "seed": [0, 0], "device": ["row", "row"]}).to_csv(folder / "runs.csv",
                                                                                           index=False)
    (folder / "units.json").write_text(json.dumps({"u1": {"device": "cpu", "point": {"k": 1}},
                                                   "u2": {"device": "cpu", "point": {"k": 2}}}))
    df = load("toy", out=tmp_path)
    assert list(df["device"]) == ["row", "row"] and list(df["unit.device"]) == ["cpu", "cpu"]
    assert list(df["point.k"]) == [1, 2]
