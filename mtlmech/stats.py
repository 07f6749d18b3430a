"""Statistics for claims: CIs, exact and paired tests, Holm correction and the verdict rule.

The verdict rule is the one in ``CLAIMS.md``: *replicated* when the pre-registered test is
significant at α = 0.01 after Holm correction within the experiment, in the predicted direction;
*not replicated* when the confidence interval excludes the predicted effect or the effect is
significant the other way; *inconclusive* otherwise. Confidence intervals are 95 % unless stated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps

ALPHA = 0.01
CI_LEVEL = 0.95
VERDICTS = ("replicated", "not replicated", "inconclusive")


def wilson_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    z = sps.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def fisher_exact(k1: int, n1: int, k2: int, n2: int, alternative: str = "greater") -> float:
    """p-value that rate k1/n1 exceeds (``greater``), falls below (``less``) or differs from k2/n2."""
    return float(sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative=alternative).pvalue)


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """CI for the difference of two independent proportions (Newcombe's hybrid Wilson score)."""
    l1, u1 = wilson_ci(k1, n1, level)
    l2, u2 = wilson_ci(k2, n2, level)
    p1, p2 = k1 / max(n1, 1), k2 / max(n2, 1)
    d = p1 - p2
    return float(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), float(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


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


RULES = ("directional", "equivalence", "band", "threshold", "composite")
MAX_CAP_FRACTION = 0.05
MIN_RUNS = 3


@dataclass
class ClaimResult:
    """One claim of an experiment: what it predicts (its ``rule`` and that rule's inputs), what
    was measured, and — set only by :func:`judge` — its verdict.

    Rules: ``directional`` (one-sided ``p_value`` in ``direction``; ``p_opposite`` the other
    way), ``equivalence`` (TOST ``p_value`` with the pre-registered ``margin`` on the effect),
    ``band`` (the effect's CI inside ``band``), ``threshold`` (CI beyond ``threshold`` in
    ``direction``) and ``composite`` (holds when every claim named in ``parts`` holds; it carries
    no interval of its own). ``family`` names the Holm family within the experiment. ``compared``
    names the conditions whose runs the claim compares (with ``where``: column filters on the runs),
    so the driver can attach their training record (cap fraction, chosen learning rates).
    """

    id: str
    statement: str
    source: str
    test: str
    effect: float
    ci: tuple[float, float]
    p_value: float | None
    n: int
    rule: str | None = None          # default: directional when ``direction`` is set
    direction: str | None = None
    p_opposite: float | None = None
    margin: tuple[float, float] | None = None
    band: tuple[float, float] | None = None
    threshold: float | None = None
    parts: tuple[str, ...] = ()
    family: str = "main"
    compared: tuple[str, ...] = ()
    where: dict = field(default_factory=dict)
    figure: str = ""
    details: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)   # condition -> cap fraction, n, chosen lr (set by the driver)
    verdict: str = "inconclusive"
    verdict_reason: str = ""

    def __post_init__(self) -> None:
        if self.rule is None:
            if self.direction is None:
                raise ValueError(f"claim {self.id}: declare its rule (one of {RULES})")
            self.rule = "directional"
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        needs = {"directional": ("direction", "p_value"), "equivalence": ("margin", "p_value"), "band": ("band",),
                 "threshold": ("threshold", "direction"), "composite": ("parts",)}[self.rule]
        missing = [name for name in needs if getattr(self, name) in (None, ())]
        if missing:
            raise ValueError(f"claim {self.id}: rule {self.rule} needs {', '.join(missing)}")
        if self.direction is not None and self.direction not in ("less", "greater"):
            raise ValueError(f"claim {self.id}: direction must be 'less' or 'greater'")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = [float(c) for c in self.ci]
        return d


def _holm_family(claims: list[ClaimResult], attr: str) -> dict[int, float]:
    """Holm-adjusted values of ``attr`` for every claim that has one, keyed by position."""
    idx = [i for i, c in enumerate(claims) if getattr(c, attr) is not None]
    return dict(zip(idx, holm([getattr(claims[i], attr) for i in idx]))) if idx else {}


def _judge_one(c: ClaimResult, p_holm: float | None, p_opposite_holm: float | None, alpha: float) -> str:
    if c.rule == "directional":
        return verdict_directional(p_holm, c.effect, c.ci, c.direction, p_opposite_holm, alpha)
    if c.rule == "equivalence":
        return verdict_equivalence(p_holm, c.ci, c.margin, alpha)
    if c.rule == "band":
        return verdict_band(c.ci, *c.band)
    return verdict_threshold(c.ci, c.threshold, c.direction)


def judge(claims: list[ClaimResult], alpha: float = ALPHA,
          max_cap_fraction: float = MAX_CAP_FRACTION) -> list[ClaimResult]:
    """The one verdict pass: Holm-correct ``p_value`` and ``p_opposite`` within each family,
    record them in ``details`` (``p_holm``, ``p_opposite_holm``), then set every claim's verdict by
    its rule; composites last, from their parts.

    A claim is *inconclusive* whatever its test says when one of its compared conditions has more
    than ``max_cap_fraction`` of its runs stopped by the epoch cap ("under-trained"), or when it
    rests on fewer than ``MIN_RUNS`` runs."""
    by_id = {c.id: c for c in claims}
    if len(by_id) != len(claims):
        raise ValueError("claim IDs must be unique within an experiment")
    for family in dict.fromkeys(c.family for c in claims):
        members = [c for c in claims if c.family == family and c.rule != "composite"]
        p_adj, opp_adj = _holm_family(members, "p_value"), _holm_family(members, "p_opposite")
        for i, c in enumerate(members):
            if i in p_adj:
                c.details["p_holm"] = p_adj[i]
            if i in opp_adj:
                c.details["p_opposite_holm"] = opp_adj[i]
            c.verdict = _judge_one(c, p_adj.get(i), opp_adj.get(i), alpha)
            c.verdict_reason = ""
    for c in claims:
        if c.rule == "composite":
            unknown = [p for p in c.parts if p not in by_id or by_id[p].rule == "composite"]
            if unknown:
                raise ValueError(f"composite claim {c.id}: unknown or composite parts {unknown}")
            c.verdict = combine_verdicts([by_id[p].verdict for p in c.parts])
            c.verdict_reason = "; ".join(f"{p}: {by_id[p].verdict}" for p in c.parts)
    for c in claims:
        capped = {name: t["cap_fraction"] for name, t in c.training.items()
                  if t.get("cap_fraction") is not None and t["cap_fraction"] > max_cap_fraction}
        parts_capped = [p for p in c.parts if by_id[p].verdict_reason.startswith("under-trained")]
        if capped or parts_capped:
            c.verdict = "inconclusive"
            c.verdict_reason = ("under-trained: " + ", ".join(f"{k} {v:.0%} of runs stopped at the epoch cap"
                                                              for k, v in capped.items())
                                if capped else f"under-trained parts: {', '.join(parts_capped)}")
        elif c.rule != "composite" and c.n < MIN_RUNS:
            c.verdict, c.verdict_reason = "inconclusive", f"too few runs (n = {c.n}) for a definite verdict"
    return claims
