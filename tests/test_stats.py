"""Statistics helpers and the verdict rule of docs/CLAIMS.md."""

import numpy as np
import pytest
from scipy import stats as sps

from mtlmech.stats import (
    ClaimResult,
    combine_verdicts,
    fisher_exact,
    holm,
    judge,
    mean_ci,
    newcombe_diff_ci,
    paired_bootstrap_ci,
    paired_wilcoxon,
    verdict_band,
    verdict_directional,
    verdict_threshold,
    wilson_ci,
)


def test_wilson_matches_known_values():
    lo, hi = wilson_ci(81, 263)  # textbook example
    assert lo == pytest.approx(0.2553, abs=1e-3) and hi == pytest.approx(0.3662, abs=1e-3)
    assert wilson_ci(0, 0) == (0.0, 1.0)
    lo, hi = wilson_ci(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2


def test_fisher_and_newcombe():
    assert fisher_exact(40, 50, 20, 50, "greater") < 1e-4
    assert fisher_exact(20, 50, 40, 50, "greater") > 0.99
    lo, hi = newcombe_diff_ci(40, 50, 20, 50)
    assert lo < 0.4 < hi and lo > 0


def test_paired_tests_detect_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    b = rng.normal(size=200)
    a = b - 0.3 + rng.normal(scale=0.5, size=200)
    assert paired_wilcoxon(a, b, "less") < 1e-6
    assert paired_wilcoxon(a, b, "greater") > 0.99
    d, lo, hi = paired_bootstrap_ci(a, b)
    assert lo < d < hi < 0 and d == pytest.approx(np.mean(a - b))
    assert paired_wilcoxon(b, b) == 1.0


def test_holm_against_manual():
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_mean_ci_is_t_interval():
    x = np.arange(10.0)
    m, lo, hi = mean_ci(x)
    half = sps.t.ppf(0.975, 9) * x.std(ddof=1) / np.sqrt(10)
    assert (m, lo, hi) == pytest.approx((4.5, 4.5 - half, 4.5 + half))


def test_verdict_rules():
    assert verdict_directional(0.001, -0.1, (-0.15, -0.05), "less") == "replicated"
    assert verdict_directional(0.02, -0.1, (-0.2, 0.01), "less") == "inconclusive"
    assert verdict_directional(0.9, 0.1, (0.05, 0.15), "less") == "not replicated"
    assert verdict_directional(0.5, 0.0, (0.0, 0.0), "greater") == "not replicated"
    assert verdict_band((0.4, 0.6), 0.35, 0.65) == "replicated"
    assert verdict_band((0.7, 0.8), 0.35, 0.65) == "not replicated"
    assert verdict_band((0.3, 0.5), 0.35, 0.65) == "inconclusive"
    assert verdict_threshold((0.6, 0.7), 0.5) == "replicated"
    assert verdict_threshold((0.3, 0.45), 0.5) == "not replicated"
    assert combine_verdicts(["replicated", "inconclusive"]) == "inconclusive"
    assert combine_verdicts(["replicated", "not replicated"]) == "not replicated"


def test_judge_applies_holm_before_the_verdict():
    claims = [ClaimResult(id=f"X{i}", statement="", source="", test="", effect=-0.1, ci=(-0.2, -0.01),
                          p_value=0.004, n=100, direction="less") for i in range(3)]
    judge(claims)
    assert all(c.details["p_holm"] == pytest.approx(0.012) for c in claims)
    assert all(c.verdict == "inconclusive" for c in claims)   # 0.004 alone would replicate
    with pytest.raises(ValueError):
        ClaimResult(id="X", statement="", source="", test="", effect=0, ci=(0, 0), p_value=None, n=1, verdict="yes")


# ---- version 2: declared rules, one verdict pass ---------------------------------------------
from mtlmech.stats import mcnemar_exact, paired_tost, verdict_equivalence  # noqa: E402


def claim(id="X", **kw):
    base = dict(statement="", source="", test="", effect=-0.1, ci=(-0.2, -0.05), p_value=1e-5, n=100)
    return ClaimResult(id=id, **{**base, **kw})


@pytest.mark.parametrize("kw, verdict", [
    (dict(direction="less"), "replicated"),
    (dict(direction="less", p_value=0.5, ci=(-0.2, 0.1)), "inconclusive"),
    (dict(direction="less", p_value=0.9, effect=0.1, ci=(0.05, 0.15)), "not replicated"),   # CI on the wrong side
    (dict(direction="less", p_value=0.5, ci=(-0.1, 0.1), p_opposite=1e-6), "not replicated"),  # significant other way
    (dict(direction="greater", effect=0.1, ci=(0.05, 0.2)), "replicated"),
])
def test_every_branch_of_the_directional_rule(kw, verdict):
    assert judge([claim(**kw)])[0].verdict == verdict


def test_p_opposite_is_holm_adjusted_before_it_can_refute():
    # alone, p_opposite 0.004 < 0.01 refutes; with two more claims in the family Holm makes it 0.012
    lone = judge([claim(direction="less", p_value=0.5, ci=(-0.1, 0.1), p_opposite=0.004)])[0]
    assert lone.verdict == "not replicated"
    family = judge([claim(id=f"X{i}", direction="less", p_value=0.5, ci=(-0.1, 0.1), p_opposite=0.004) for i in range(3)])
    assert all(c.verdict == "inconclusive" and c.details["p_opposite_holm"] == pytest.approx(0.012) for c in family)


def test_holm_families_are_separate():
    claims = [claim(id="A", direction="less", p_value=0.006), claim(id="B", direction="less", p_value=0.006, family="other")]
    assert [c.verdict for c in judge(claims)] == ["replicated", "replicated"]
    claims = [claim(id="A", direction="less", p_value=0.006), claim(id="B", direction="less", p_value=0.006)]
    assert [c.verdict for c in judge(claims)] == ["inconclusive", "inconclusive"]


@pytest.mark.parametrize("kw, verdict", [
    (dict(p_value=0.001, ci=(-0.01, 0.01)), "replicated"),
    (dict(p_value=0.3, ci=(-0.03, 0.01)), "inconclusive"),
    (dict(p_value=0.9, ci=(0.03, 0.05)), "not replicated"),
    (dict(p_value=0.9, ci=(-0.06, -0.03)), "not replicated"),
])
def test_every_branch_of_the_equivalence_rule(kw, verdict):
    c = claim(rule="equivalence", margin=(-0.02, 0.02), **{"effect": 0.0, **kw})
    assert judge([c])[0].verdict == verdict
    assert verdict_equivalence(kw["p_value"], kw["ci"], (-0.02, 0.02)) == verdict


@pytest.mark.parametrize("ci, verdict", [((0.4, 0.6), "replicated"), ((0.7, 0.8), "not replicated"),
                                         ((0.1, 0.3), "not replicated"), ((0.3, 0.5), "inconclusive")])
def test_every_branch_of_the_band_rule(ci, verdict):
    assert judge([claim(rule="band", band=(0.35, 0.65), ci=ci, p_value=None)])[0].verdict == verdict


@pytest.mark.parametrize("ci, direction, verdict", [((0.6, 0.7), "greater", "replicated"),
                                                    ((0.3, 0.5), "greater", "not replicated"),
                                                    ((0.4, 0.6), "greater", "inconclusive"),
                                                    ((0.3, 0.4), "less", "replicated"),
                                                    ((0.5, 0.6), "less", "not replicated"),
                                                    ((0.4, 0.6), "less", "inconclusive")])
def test_every_branch_of_the_threshold_rule(ci, direction, verdict):
    c = claim(rule="threshold", threshold=0.5, direction=direction, ci=ci, p_value=None)
    assert judge([c])[0].verdict == verdict


def test_composite_reports_parts_and_combines_their_verdicts():
    parts = [claim(id="P1", direction="less"), claim(id="P2", direction="less", p_value=0.5, ci=(-0.2, 0.1)),
             claim(id="P3", rule="band", band=(0, 1), ci=(2, 3), p_value=None)]
    both = claim(id="C12", rule="composite", parts=("P1", "P2"), p_value=None, effect=float("nan"), ci=(float("nan"),) * 2)
    fail = claim(id="C13", rule="composite", parts=("P1", "P3"), p_value=None, effect=float("nan"), ci=(float("nan"),) * 2)
    ok = claim(id="C1", rule="composite", parts=("P1",), p_value=None, effect=float("nan"), ci=(float("nan"),) * 2)
    judge([*parts, both, fail, ok])
    assert (both.verdict, fail.verdict, ok.verdict) == ("inconclusive", "not replicated", "replicated")
    assert "P2: inconclusive" in both.verdict_reason
    with pytest.raises(ValueError, match="unknown"):
        judge([claim(id="C", rule="composite", parts=("nope",), p_value=None)])


def test_under_trained_claims_are_not_judged_and_taint_composites():
    c = claim(direction="less", training={"STL": {"cap_fraction": 0.2}, "MTL": {"cap_fraction": 0.0}})
    ok = claim(id="Y", direction="less", training={"STL": {"cap_fraction": 0.05}, "MTL": {"cap_fraction": 0.0}})
    comp = claim(id="Z", rule="composite", parts=("X", "Y"), p_value=None)
    judge([c, ok, comp])
    assert c.verdict == "inconclusive" and c.verdict_reason.startswith("under-trained") and "STL 20%" in c.verdict_reason
    assert ok.verdict == "replicated"
    assert comp.verdict == "inconclusive" and "under-trained" in comp.verdict_reason


def test_too_few_runs_never_give_a_definite_verdict():
    c = claim(direction="less", n=2, p_value=1e-9)
    assert judge([c])[0].verdict == "inconclusive" and "too few" in c.verdict_reason


def test_a_rule_without_its_inputs_is_refused():
    for kw in (dict(rule="equivalence"), dict(rule="band"), dict(rule="threshold", threshold=0.5),
               dict(rule="composite"), dict(rule="nonsense")):
        with pytest.raises(ValueError):
            claim(**kw)


def test_tost_shows_equivalence_only_with_enough_precision():
    rng = np.random.default_rng(1)
    b = rng.normal(size=400)
    same = b + rng.normal(scale=0.05, size=400)
    assert paired_tost(same, b, -0.05, 0.05)[0] < 1e-3
    noisy = b[:20] + rng.normal(scale=0.5, size=20)      # mean difference near 0, but imprecise
    assert paired_tost(noisy, b[:20], -0.05, 0.05)[0] > 0.05
    shifted = b + 0.2 + rng.normal(scale=0.05, size=400)
    assert paired_tost(shifted, b, -0.05, 0.05)[0] > 0.99


def test_mcnemar_uses_only_discordant_pairs():
    t = np.array([1] * 30 + [0] * 5 + [1] * 50 + [0] * 15, dtype=bool)
    c = np.array([0] * 30 + [1] * 5 + [1] * 50 + [0] * 15, dtype=bool)
    out = mcnemar_exact(t, c, "greater")
    assert (out["only_treatment"], out["only_control"]) == (30, 5)
    assert out["p"] == pytest.approx(sps.binomtest(30, 35, 0.5, alternative="greater").pvalue)
    assert out["diff"] == pytest.approx(0.25) and out["ci"][0] < 0.25 < out["ci"][1]
    assert mcnemar_exact(c, c)["p"] == 1.0


def test_tost_judges_the_mean_not_the_pseudo_median():
    """Skewed differences: most near 0, a few large. The median sits inside the margin, the mean
    (the reported effect) does not; equivalence must not be declared."""
    rng = np.random.default_rng(3)
    d = np.where(rng.random(400) < 0.9, rng.normal(0.0, 0.002, 400), rng.normal(0.25, 0.02, 400))
    assert abs(np.median(d)) < 0.01 < np.mean(d)
    p, p_low, p_high = paired_tost(d, np.zeros_like(d), -0.02, 0.02)
    assert p == p_high and p > 0.5
    assert paired_tost(np.full(5, 0.01), np.zeros(5), -0.02, 0.02)[0] == 0.0
