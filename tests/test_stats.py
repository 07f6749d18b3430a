"""Statistics helpers and the CLAIMS.md verdict rule."""

import numpy as np
import pytest
from scipy import stats as sps

from mtlmech.stats import (ClaimResult, combine_verdicts, fisher_exact, holm, judge, mean_ci, newcombe_diff_ci,
                           paired_bootstrap_ci, paired_wilcoxon, verdict_band, verdict_directional,
                           verdict_threshold, wilson_ci)


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
