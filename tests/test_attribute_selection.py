"""Attribute-selection construction and the input-weight-strength measure."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlmech.probes import input_weight_strength
from mtlmech.tasks import make_problem

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))


@pytest.mark.parametrize("related", ["copies", "orthogonal"])
def test_irrelevant_inputs_are_irrelevant(related):
    p = make_problem("attribute_selection", n_irrelevant=16, n_related=4, noise=0.0, related=related)
    rng = np.random.default_rng(0)
    z = p.inputs.sample(rng, 2000)
    base = p.rows_from(z).y_clean
    z2 = z.copy()
    z2[:, 4:] = rng.uniform(-1, 1, size=z2[:, 4:].shape)   # redraw every irrelevant input
    assert np.array_equal(p.rows_from(z2).y_clean, base)
    for i in range(4):                                      # every relevant input matters to T0
        z3 = z.copy()
        z3[:, i] = -z3[:, i]
        assert not np.array_equal(p.rows_from(z3).y_clean[:, 0], base[:, 0])
    assert p.n_inputs == 20


def test_copies_share_f_with_independent_noise():
    p = make_problem("attribute_selection", n_irrelevant=4, n_related=4, noise=0.2, related="copies")
    d = p.sample(np.random.default_rng(3), 30_000)
    assert all(np.array_equal(d.y_clean[:, 0], d.y_clean[:, j]) for j in range(5))
    flips = (d.y != d.y_clean).astype(float)
    assert np.allclose(flips.mean(axis=0), 0.2, atol=0.01)
    c = np.corrcoef(flips.T)
    assert np.abs(c[np.triu_indices(5, 1)]).max() < 0.03


def test_orthogonal_tasks_are_uncorrelated_with_main():
    p = make_problem("attribute_selection", n_irrelevant=0, n_related=4, related="orthogonal")
    d = p.sample(np.random.default_rng(4), 40_000)
    c = np.corrcoef(d.y_clean.T)[0, 1:]
    assert np.abs(c).max() < 0.03


def test_attribute_selection_rejects_bad_params():
    with pytest.raises(ValueError):
        make_problem("attribute_selection", n_related=5)
    with pytest.raises(ValueError):
        make_problem("attribute_selection", related="random")


def test_input_weight_strength_hand_built():
    w = torch.zeros(2, 5, 3)
    w[0, :2] = 2.0      # relevant rows: norm 2·√3; irrelevant rows: norm 1·√3 → ratio 2
    w[0, 2:] = 1.0
    w[1, :2] = 1.0      # member 1: all equal → ratio 1
    w[1, 2:] = 1.0
    ratio = input_weight_strength([w, torch.zeros(2, 3)], relevant=[0, 1])
    assert ratio.tolist() == pytest.approx([2.0, 1.0])
    with pytest.raises(ValueError):
        input_weight_strength([w], relevant=range(5))


def test_quick_end_to_end(tmp_path):
    import attribute_selection as exp
    rc = exp.EXPERIMENT.main(["--profile", "quick", "--seeds", "3", "--out", str(tmp_path), "--epochs", "30",
                              "--n-irrelevant", "0", "16", "--n-test", "50", "--n-halt", "20"])
    assert rc == 0
    summary = json.loads((tmp_path / "attribute_selection" / "summary.json").read_text())
    assert [c["id"] for c in summary["claims"]] == ["AS1", "AS1b", "AS1c"]
