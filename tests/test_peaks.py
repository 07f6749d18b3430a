"""Peaks construction (numbering, targets, encodings) and the sharing measures on hand-built nets."""

import numpy as np
import pytest
import torch
from scipy import stats as sps

from mtlmech.inputs import BinaryCode, ThermometerCode
from mtlmech.nets import NetSpec
from mtlmech.probes import ablation_sensitivity, hidden_sensitivity, rank_correlation
from mtlmech.problems.peaks import peaks_pairs, peaks_triples
from mtlmech.sharing import group_means, kendall_correlation, pair_values
from mtlmech.tasks import make_problem


def test_numbering_matches_c97():
    p = make_problem("peaks")
    assert p.n_tasks == 120 and p.n_inputs == 60
    names = {t.name: t.target.name for t in p.tasks}
    assert names["P001"] == "IF A > 0.5 THEN B ELSE C"
    assert names["P002"] == "IF A > 0.5 THEN B ELSE D"
    assert names["P014"] == "IF A > 0.5 THEN E ELSE C"
    assert names["P024"] == "IF B > 0.5 THEN A ELSE F"
    assert names["P120"] == "IF F > 0.5 THEN E ELSE D"
    assert len(set(peaks_triples())) == 120


def test_targets_on_hand_checked_rows():
    p = make_problem("peaks")
    #             A    B    C    D    E    F
    z = np.array([[0.7, 0.2, 0.3, 0.4, 0.5, 0.9],
                  [0.3, 0.8, 0.1, 0.6, 0.45, 0.2]])
    y = p.rows_from(z).y_clean
    col = {t: p.task_index(t) for t in ("P001", "P014", "P024", "P120")}
    np.testing.assert_allclose(y[:, col["P001"]], [0.2, 0.1])      # IF A THEN B ELSE C
    np.testing.assert_allclose(y[:, col["P014"]], [0.5, 0.1])      # IF A THEN E ELSE C
    np.testing.assert_allclose(y[:, col["P024"]], [0.9, 0.3])      # IF B THEN A ELSE F
    np.testing.assert_allclose(y[:, col["P120"]], [0.5, 0.6])      # IF F THEN E ELSE D


def test_encodings_round_trip():
    z = np.random.default_rng(0).uniform(0, 1, size=(500, 6))
    binary, thermo = BinaryCode(10, 0.0, 1.0), ThermometerCode(10, 0.0, 1.0)
    assert np.abs(binary.decode(binary.encode(z)) - z).max() <= 0.5 / 1024 + 1e-12
    assert np.abs(thermo.decode(thermo.encode(z)) - z).max() <= 0.5 / 11 + 1e-12
    x = make_problem("peaks", encoding="binary").rows_from(z).x
    np.testing.assert_array_equal(x[:, ::10], (z > 0.5).astype(np.float32))   # MSB = the IF test
    assert make_problem("peaks", encoding="thermometer").rows_from(z).x.shape == (500, 60)
    with pytest.raises(ValueError):
        make_problem("peaks", encoding="gray")


def test_pair_groups():
    pairs = peaks_pairs()
    assert len(pairs["i"]) == 120 * 119 // 2
    counts = np.bincount(pairs["n_shared"])
    assert counts[0] == 120 * 1 * 6 // 2                 # each task: one disjoint letter set, 6 orders
    assert counts[3] == 20 * 15                          # 20 letter sets, 6 orders each
    assert ((pairs["n_shared"] == 3) & pairs["test_match"]).sum() == 60
    assert not (pairs["test_match"] & (pairs["n_shared"] == 0)).any()


def hand_net(j0: int, j1: int):
    """3-4-2 net: output 0 reads only hidden unit j0, output 1 only unit j1."""
    spec = NetSpec(n_inputs=3, n_outputs=2, hidden=(4,))
    g = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(1, 3, 4, generator=g), torch.randn(1, 4, generator=g)
    w2 = torch.zeros(1, 4, 2)
    w2[0, j0, 0], w2[0, j1, 1] = 2.0, -1.5
    return spec, [w1, b1, w2, torch.zeros(1, 2)]


@pytest.mark.parametrize("measure", [hidden_sensitivity, ablation_sensitivity])
def test_sensitivity_concentrated_on_the_unit_used(measure):
    spec, params = hand_net(1, 3)
    x = torch.rand(200, 3, generator=torch.Generator().manual_seed(1))
    sens = measure(spec, params, x)[0]
    assert sens[0, 1] > 0 and sens[1, 3] > 0
    assert torch.count_nonzero(sens[0]) == 1 and torch.count_nonzero(sens[1]) == 1


def test_rank_correlations_match_scipy():
    sens = torch.rand(2, 5, 64, generator=torch.Generator().manual_seed(2))
    sens[1, 3, :10] = sens[1, 3, 0]                      # ties
    spear, kend = rank_correlation(sens), kendall_correlation(sens)
    for b in range(2):
        for i, j in [(0, 1), (2, 4), (3, 1)]:
            a, c = sens[b, i].numpy(), sens[b, j].numpy()
            assert spear[b, i, j].item() == pytest.approx(sps.spearmanr(a, c).statistic, abs=1e-9)
            assert kend[b, i, j].item() == pytest.approx(sps.kendalltau(a, c).statistic, abs=1e-9)
    np.testing.assert_allclose(torch.diagonal(kend, dim1=1, dim2=2).numpy(), 1.0)


def test_pair_values_and_group_means():
    m = torch.arange(16, dtype=torch.float64).reshape(1, 4, 4)
    v = pair_values(m, np.array([0, 0, 1]), np.array([1, 2, 3]))
    np.testing.assert_array_equal(v, [[1, 2, 7]])
    g = group_means(v, [0, 1, 1], keep=[True, True, False])
    assert g == {0: pytest.approx([1.0]), 1: pytest.approx([2.0])}
