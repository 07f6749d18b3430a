"""Statistical tests for claims: CIs, exact and paired tests, Holm correction and the verdict rules.

The verdict rule is the one in ``CLAIMS.md``: *replicated* when the pre-registered test is
significant at α = 0.01 after Holm correction within the experiment, in the predicted direction;
*not replicated* when the confidence interval excludes the predicted effect or the effect is
significant the other way; *inconclusive* otherwise. Confidence intervals are 95 % unless stated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

ALPHA = 0.01
CI_LEVEL = 0.95
VERDICTS = ("replicated", "not replicated", "inconclusive")


def describes(text: str):
    """Attach ``text`` (what the function computes, in the words a claim's ``test`` uses) to a test
    or interval function as ``fn.description``: claim constructors (:mod:`mtlmech.stats.declare`)
    take their ``test`` text from the functions they call, so the text cannot drift from the code."""
    def mark(fn):
        fn.description = text
        return fn
    return mark


@describes("Wilson score interval")
def wilson_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    z = sps.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


@describes("one-sided Fisher exact test")
def fisher_exact(k1: int, n1: int, k2: int, n2: int, alternative: str = "greater") -> float:
    """p-value that rate k1/n1 exceeds (``greater``), falls below (``less``) or differs from k2/n2."""
    return float(sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative=alternative).pvalue)


@describes("Newcombe hybrid Wilson score interval of the difference")
def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """CI for the difference of two independent proportions (Newcombe's hybrid Wilson score)."""
    l1, u1 = wilson_ci(k1, n1, level)
    l2, u2 = wilson_ci(k2, n2, level)
    p1, p2 = k1 / max(n1, 1), k2 / max(n2, 1)
    d = p1 - p2
    return float(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), float(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@describes("one-sided Wilcoxon signed-rank test (zero differences split)")
def paired_wilcoxon(a: Sequence[float], b: Sequence[float], alternative: str = "less") -> float:
    """Wilcoxon signed-rank p-value for the paired differences a − b (``less``: a below b).

    Zero differences are split between ranks (Pratt would drop information we want kept);
    all-equal pairs give p = 1. With zeros or tied |differences| the normal approximation (with
    tie correction) is used: scipy's default there is a permutation null that takes seconds per
    call at small n; without them, scipy's exact distribution (n ≤ 50) or the approximation.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    ties = np.any(d == 0) or len(np.unique(np.abs(d))) < len(d)
    return float(sps.wilcoxon(d, zero_method="zsplit", alternative=alternative,
                              method="approx" if ties else "auto").pvalue)


@describes("paired percentile bootstrap CI of the mean difference")
def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], level: float = CI_LEVEL,
                        n_resamples: int = 10_000, random_state: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences a − b and its percentile-bootstrap CI (resampling pairs)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0]), float(d[0])
    rng = np.random.default_rng(random_state)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(d.mean()), float(lo), float(hi)


@describes("t-interval of the mean")
def mean_ci(x: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float, float]:
    """Mean and t-interval of independent values (for figure error bars)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        m = float(x.mean()) if len(x) else float("nan")
        return m, m, m
    half = sps.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted.tolist()


@describes("TOST, two one-sided paired t-tests on the mean difference")
def paired_tost(a: Sequence[float], b: Sequence[float], low: float, high: float) -> tuple[float, float, float]:
    """Two one-sided tests that the *mean* paired difference a − b lies inside (low, high).

    Returns (p, p_low, p_high): ``p_low`` tests "mean difference > low", ``p_high`` "mean
    difference < high" (one-sided paired t-tests on the shifted differences), and ``p = max`` of
    the two: equivalence is shown at level α when p < α. The tests are on the mean because the
    reported effect and its CI are means: a rank test would judge the pseudo-median, which for the
    skewed differences of test-error rates can sit inside the margin while the mean does not."""
    if not low < high:
        raise ValueError(f"equivalence margin needs low < high, got ({low}, {high})")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return 1.0, 1.0, 1.0
    if np.all(d == d[0]):   # no spread: the mean is known exactly
        p_low, p_high = float(not d[0] > low), float(not d[0] < high)
    else:
        p_low = float(sps.ttest_1samp(d, low, alternative="greater").pvalue)
        p_high = float(sps.ttest_1samp(d, high, alternative="less").pvalue)
    return max(p_low, p_high), p_low, p_high


@describes("exact McNemar test (binomial test of the discordant pairs)")
def mcnemar_exact(treatment: Sequence[bool], control: Sequence[bool], alternative: str = "two-sided") -> dict:
    """McNemar's exact test for paired binary outcomes (same seed under two conditions).

    ``alternative='greater'``: the outcome is more frequent under the treatment. Returns the
    discordant counts, the difference of rates with a paired-bootstrap CI, and the p-value
    (exact binomial test of the discordant pairs against 1/2)."""
    t = np.asarray(treatment, dtype=bool)
    c = np.asarray(control, dtype=bool)
    if t.shape != c.shape:
        raise ValueError("paired outcomes need equal lengths")
    only_t, only_c = int(np.sum(t & ~c)), int(np.sum(~t & c))
    p = 1.0 if only_t + only_c == 0 else float(sps.binomtest(only_t, only_t + only_c, 0.5, alternative=alternative).pvalue)
    diff, lo, hi = paired_bootstrap_ci(t.astype(float), c.astype(float))
    return {"only_treatment": only_t, "only_control": only_c, "rate_treatment": float(t.mean()) if t.size else float("nan"),
            "rate_control": float(c.mean()) if c.size else float("nan"), "diff": diff, "ci": (lo, hi), "p": p,
            "n": int(t.size)}


def verdict_directional(p_adjusted: float, effect: float, ci: tuple[float, float], direction: str,
                        p_opposite: float | None = None, alpha: float = ALPHA) -> str:
    """Verdict for a claim that the effect is below (``less``) or above (``greater``) zero.

    ``ci`` is the interval of the effect; it "excludes the predicted effect" when it lies wholly
    on the non-predicted side of zero. ``p_opposite`` (optional, Holm-adjusted like the primary
    p-value) is the test in the other direction.
    """
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    sign = -1 if direction == "less" else 1
    if p_adjusted < alpha and sign * effect > 0:
        return "replicated"
    wrong_side = (ci[1] <= 0) if direction == "greater" else (ci[0] >= 0)
    if wrong_side or (p_opposite is not None and p_opposite < alpha):
        return "not replicated"
    return "inconclusive"


def verdict_directional_sesoi(p_adjusted: float, effect: float, direction: str, p_opposite: float | None,
                              p_equivalent: float | None, alpha: float = ALPHA) -> str:
    """The version-3 directional rule (a claim with a pre-registered smallest effect of interest,
    SESOI): *replicated* when the one-sided p in ``direction`` (Holm-adjusted) is below α;
    *not replicated* when the effect is shown smaller than the SESOI — ``p_equivalent``, the
    Holm-adjusted TOST p of "the effect lies within ±SESOI", below α — or significant the other
    way (``p_opposite`` below α): the same strength of evidence both ways; else *inconclusive*.
    (The version-2 rule also refuted on a raw 95 % CI on the wrong side of zero, weaker evidence.)"""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    sign = -1 if direction == "less" else 1
    if p_adjusted is not None and p_adjusted < alpha and sign * effect > 0:
        return "replicated"
    if (p_equivalent is not None and p_equivalent < alpha) or (p_opposite is not None and p_opposite < alpha):
        return "not replicated"
    return "inconclusive"


def interval_p(interval, holds, *, smallest: float = 1e-15) -> float:
    """The smallest α for which ``holds(interval(1 − α))`` is true: the p-value of an interval
    condition (a CI inside a band, beyond a threshold, wholly outside a margin), so that the
    condition can be Holm-corrected like any test — it holds at the Holm-adjusted level exactly
    when this p, Holm-adjusted, is below α. ``interval(level)`` returns the two-sided CI at
    ``level``; the condition gets easier as the level falls. 1.0 when it fails even at level ~0."""
    if not holds(interval(1e-9)):
        return 1.0
    if holds(interval(1 - smallest)):
        return smallest
    lo, hi = np.log(smallest), np.log(1 - 1e-9)   # log α: holds at hi, fails at lo
    for _ in range(60):
        mid = (lo + hi) / 2
        if holds(interval(1 - np.exp(mid))):
            hi = mid
        else:
            lo = mid
    return float(np.exp(hi))


def verdict_equivalence(p_adjusted: float, ci: tuple[float, float], margin: tuple[float, float],
                        alpha: float = ALPHA) -> str:
    """Verdict for "about the same": *replicated* when the (Holm-adjusted) TOST p-value is below α;
    *not replicated* when the effect's CI lies wholly outside the margin; else *inconclusive*.
    A CI that merely contains 0 is never evidence of equivalence."""
    if p_adjusted < alpha:
        return "replicated"
    if ci[0] > margin[1] or ci[1] < margin[0]:
        return "not replicated"
    return "inconclusive"


def verdict_band(ci: tuple[float, float], low: float, high: float) -> str:
    """Verdict for a claim that a quantity lies in [low, high]: replicated when its CI lies inside,
    not replicated when its CI lies wholly outside, inconclusive when it straddles an edge."""
    if low <= ci[0] and ci[1] <= high:
        return "replicated"
    if ci[1] < low or ci[0] > high:
        return "not replicated"
    return "inconclusive"


def verdict_threshold(ci: tuple[float, float], threshold: float, direction: str = "greater") -> str:
    """Verdict for "quantity > threshold" (or < for ``less``) judged by its CI."""
    lo, hi = ci
    if direction == "greater":
        return "replicated" if lo > threshold else "not replicated" if hi <= threshold else "inconclusive"
    return "replicated" if hi < threshold else "not replicated" if lo >= threshold else "inconclusive"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """A claim made of several parts holds only if every part does; fails if any part fails."""
    if any(v == "not replicated" for v in verdicts):
        return "not replicated"
    if all(v == "replicated" for v in verdicts):
        return "replicated"
    return "inconclusive"
