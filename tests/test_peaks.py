"""Peaks construction (numbering, targets, encodings) and the sharing measures on hand-built nets."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from mtlmech.engine.nets import NetSpec
from mtlmech.measures.probes import ablation_sensitivity, hidden_sensitivity, rank_correlation
from mtlmech.measures.sharing import group_means, kendall_correlation, pair_values
from mtlmech.problems.inputs import BinaryCode, ThermometerCode
from mtlmech.problems.peaks import peaks_pairs, peaks_triples
from mtlmech.problems.tasks import make_problem


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


def load_peaks_experiment():
    import importlib.util
    import sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("peaks_exp", Path(__file__).parent.parent / "experiments" / "peaks.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peaks_exp"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_position_groups():
    pairs, triples = peaks_pairs(), peaks_triples()
    for name, pos in (("test_match", 0), ("then_match", 1), ("else_match", 2)):
        k = np.flatnonzero(pairs[name])[5]
        assert triples[pairs["i"][k]][pos] == triples[pairs["j"][k]][pos]
        assert not (pairs[name] & (pairs["n_shared"] == 0)).any()
        assert [int(((pairs["n_shared"] == k) & pairs[name]).sum()) for k in (1, 2, 3)] == [360, 720, 60]
    p001, p002 = 0, 1                                             # ABC, ABD: same IF and THEN, different ELSE
    k = np.flatnonzero((pairs["i"] == p001) & (pairs["j"] == p002))[0]
    assert pairs["test_match"][k] and pairs["then_match"][k] and not pairs["else_match"][k] and pairs["n_shared"][k] == 2


def synthetic_sharing(rng, n_nets, test_boost, zero_level):
    """A wide sharing table with sharing = 0.1·overlap, test matches raised by ``test_boost``."""
    cols = {}
    for k in range(4):
        cols[("any", k)] = 0.1 * k + zero_level * (k == 0) + rng.normal(0, 0.01, n_nets)
    for series in ("test_match", "then_match", "else_match"):
        for k in (1, 2, 3):
            cols[(series, k)] = cols[("any", k)] + (test_boost if series == "test_match" else 0.0) + rng.normal(0, 0.01, n_nets)
    wide = pd.DataFrame(cols)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    trend = pd.DataFrame({"rho": rng.normal(0.4, 0.02, n_nets)})
    return wide, trend


def test_claim_statistics_can_pass_and_fail():
    pk = load_peaks_experiment()
    rng = np.random.default_rng(0)
    good = pk.tests_for(*synthetic_sharing(rng, 12, test_boost=0.1, zero_level=-0.03))
    assert good["PK3"]["p"] < 0.01 and good["PK2"]["p"] < 0.01 and good["PK1b"]["p"] < 0.01
    assert good["PK1c-neg"]["p"] < 0.01 and -pk.SLIGHT <= good["PK1c-slight"]["ci"][0]
    bad = pk.tests_for(*synthetic_sharing(rng, 12, test_boost=-0.1, zero_level=-0.3))
    assert bad["PK3"]["p"] > 0.5 and bad["PK3"]["p_opposite"] < 0.01 and bad["PK2"]["p"] > 0.5
    assert bad["PK1c-slight"]["ci"][1] < -pk.SLIGHT                                # "slightly" fails: far below −0.10
    assert set(bad["position_contrasts"]) >= {"then_match−any k=1", "then_match−else_match k=3"}
