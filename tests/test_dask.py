"""Scale-out: seed shards on a Dask LocalCluster (2 workers, 127.0.0.1) give the same results."""

import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("dask.distributed")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import parity_tasks  # noqa: E402

ARGS = ["--profile", "quick", "--seeds", "6", "--n-train", "16", "--primary-n", "16", "--train.epochs", "30",
        "--n-test", "40", "--n-halt", "20", "--net.hidden", "4", "--train.lr-grid", "1", "2", "--no-progress"]


@pytest.mark.slow
def test_local_cluster_matches_in_process_run(tmp_path, capsys):
    assert parity_tasks.EXPERIMENT.main(ARGS + ["--out", str(tmp_path / "local")]) == 0
    assert parity_tasks.EXPERIMENT.main(ARGS + ["--out", str(tmp_path / "dask"), "--dask", "local:2"]) == 0
    assert "computed 6, reused 0" in capsys.readouterr().out
    a = pd.read_csv(tmp_path / "local" / "parity_tasks" / "runs.csv")
    b = pd.read_csv(tmp_path / "dask" / "parity_tasks" / "runs.csv")
    pd.testing.assert_frame_equal(a, b)
    shards = list((tmp_path / "dask" / "parity_tasks" / "cache").glob("*/seeds-*.json"))
    assert len(shards) > 1   # the work really was split across workers


def test_bad_dask_address_is_a_usage_error(tmp_path, capsys):
    assert parity_tasks.EXPERIMENT.main(ARGS + ["--out", str(tmp_path), "--dask", "udp://x"]) == 2
    assert "--dask must be" in capsys.readouterr().err
