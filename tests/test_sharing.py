"""Identical members of a batch are trained once (issue 29 §1): the same numbers, fewer nets."""

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.engine.training import TrainSpec
from mtlmech.protocol import SHARE_ENV, Condition, record_work, score_rows, train_conditions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_protocol import pair  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))


def same(a, b) -> bool:
    """Rows equal bitwise (floats compared by their bits; NaN equals NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return isinstance(b, float) and (np.float64(a).tobytes() == np.float64(b).tobytes())
    return a == b


def unit_rows(monkeypatch, parity_tiny, tmp_path, share: str, backend: str):
    import parity_tasks
    monkeypatch.setenv(SHARE_ENV, share)
    _, _, _, units = parity_tasks.EXPERIMENT.prepare([*parity_tiny, "--seeds", "2", "--out", str(tmp_path),
                                                       "--backend", backend])
    with record_work() as records:
        rows = units[0].compute([0, 1])
    return rows, records


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_untuned_conditions_share_the_x1_grid_point_bitwise(monkeypatch, parity_tiny, tmp_path, backend):
    """parity_tasks: STL-untuned and MTL-untuned are the ×1 points of STL and MTL; with sharing
    the unit's rows are bitwise the same and 2 nets per seed fewer are trained."""
    off, rec_off = unit_rows(monkeypatch, parity_tiny, tmp_path / "off", "0", backend)
    on, rec_on = unit_rows(monkeypatch, parity_tiny, tmp_path / "on", "1", backend)
    assert same(off, on)
    (r_off,), (r_on,) = rec_off, rec_on
    # 2 seeds × (STL 2 points + MTL 2 points + 2 untuned) = 12 members; the untuned ones are duplicates
    assert r_off["n_members"] == r_on["n_members"] == 12
    assert len(set(r_off["source"])) == 12 and len(set(r_on["source"])) == 8
    names = [c for _ in range(2) for c, n in (("STL", 2), ("MTL", 2), ("STL-untuned", 1), ("MTL-untuned", 1))
             for _ in range(n)]
    for i, j in enumerate(r_on["source"]):
        if i != j:
            assert names[i] == names[j] + "-untuned" and r_on["points"][j] == (1.0, 1.0)


def test_members_differing_in_any_setting_are_not_shared():
    spec = TrainSpec(lr=0.5, epochs=60, eval_every=10, patience=3, lr_grid=(1.0,))
    base = Condition("A", ("T",))
    variants = [base, Condition("B", ("T",)),                                  # duplicate of A
                Condition("lr", ("T",), lr=0.5000001), Condition("wd", ("T",), weight_decay=1e-4),
                Condition("layers", ("T",), layer_lr=(1.0, 0.5)), Condition("both", ("T", "U"), report=("T",)),
                Condition("weighted", ("T", "U"), report=("T",), loss_weight={"U": 0.5}),
                Condition("flipped", ("T",), transform=lambda s, rng: dataclasses.replace(
                    s, train=dataclasses.replace(s.train, y=1 - s.train.y))),
                Condition("unchanged", ("T",), transform=lambda s, rng: dataclasses.replace(s)),   # same content
                Condition("hidden", ("T",), hidden_lr_grid=(0.5,))]
    kw = dict(key=("share-test",), n_train=40, n_halt=40, n_test=60, net=dict(hidden=(6,)), train_spec=spec)
    with record_work() as records:
        on = train_conditions(pair(), variants, [0, 1], **kw)
    off = train_conditions(pair(), variants, [0, 1], share=False, **kw)
    source = records[0]["source"]
    n = len(variants)
    for s in range(2):
        expect = [s * n + i for i in range(n)]
        expect[1] = expect[8] = s * n   # B and unchanged are A
        assert source[s * n:(s + 1) * n] == expect
    assert same(score_rows(on), score_rows(off))
    assert torch.equal(on.result.final[0], off.result.final[0])


def test_minibatch_members_with_their_own_row_order_are_not_shared():
    spec = TrainSpec(lr=0.5, epochs=20, eval_every=10, patience=3, batch_size=8)
    conds = [Condition("A", ("T",)), Condition("B", ("T",))]
    with record_work() as records:
        train_conditions(pair(), conds, [0], key=("share-test",), n_train=40, n_halt=40, n_test=60,
                         net=dict(hidden=(6,)), train_spec=spec)
    assert records[0]["source"] == [0, 1]
    assert not math.isnan(records[0]["stop_epoch"][0])
