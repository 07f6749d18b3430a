"""Predicted replication: the probability that an independent sample gives a claim the same verdict.

The audit's calibrated model: the effect estimate of a new, independent sample of size ``n`` is
normal around the present estimate with the present sampling variance *plus* the new sample's,
``se0² + se0²·n0/n`` — twice the sampling variance at ``n = n0`` (the present estimate is itself
noisy; treating it as the truth overstates replication). The new sample is judged by the claim's
rule at the claim's Holm level (α divided by its family size, the most a Holm step can ask) with
the standard error the new sample would have, ``se0·√(n0/n)``, normal approximations throughout.

:func:`p_same_verdict` gives that probability; :func:`n_for_same_verdict` the smallest ``n``
reaching a target (0.95) — the power rule a version-3 registration sizes its samples with.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .tests import ALPHA, CI_LEVEL

TARGET = 0.95


def _verdicts(e: np.ndarray, s: float, *, rule: str, direction: str | None, alpha: float, rule_version: str,
              sesoi: float | None, margin=None, band=None, threshold=None) -> np.ndarray:
    """The verdict (1 replicated, −1 not replicated, 0 inconclusive) a sample with effect estimate
    ``e`` and standard error ``s`` gets under the rule (normal approximations)."""
    z1 = sps.norm.isf(alpha)               # one-sided test at α
    z2 = sps.norm.isf(alpha / 2)           # a two-sided (1 − α) CI
    raw = sps.norm.isf((1 - CI_LEVEL) / 2)  # the v2 rules' raw 95 % CI
    out = np.zeros_like(e)
    if rule == "directional":
        u = e if direction == "greater" else -e
        rep = u / s > z1
        refute = -u / s > (z1 if rule_version == "v3" else min(z1, raw))
        if rule_version == "v3" and sesoi is not None:
            refute |= (e - z1 * s > -sesoi) & (e + z1 * s < sesoi)
    elif rule == "equivalence":
        lo, hi = margin
        rep = (e - z1 * s > lo) & (e + z1 * s < hi)
        w = z2 if rule_version == "v3" else raw
        refute = (e - w * s > hi) | (e + w * s < lo)
    elif rule == "band":
        lo, hi = band
        w = z2 if rule_version == "v3" else raw
        rep = (e - w * s >= lo) & (e + w * s <= hi)
        refute = (e + w * s < lo) | (e - w * s > hi)
    elif rule == "threshold":
        w = z2 if rule_version == "v3" else raw
        if direction == "greater":
            rep, refute = e - w * s > threshold, e + w * s <= threshold
        else:
            rep, refute = e + w * s < threshold, e - w * s >= threshold
    else:
        raise ValueError(f"no replication model for rule {rule!r}")
    out[refute] = -1
    out[rep] = 1
    return out


VERDICT_CODE = {"replicated": 1, "not replicated": -1, "inconclusive": 0}


def p_same_verdict(effect: float, se: float, n0: int, n: int, *, verdict: str, rule: str = "directional",
                   direction: str | None = "less", alpha: float = ALPHA, rule_version: str = "v3",
                   sesoi: float | None = None, margin=None, band=None, threshold=None) -> float:
    """Probability that an independent sample of size ``n`` gives ``verdict`` again, for an effect
    estimated as ``effect`` with standard error ``se`` from ``n0`` runs (module docstring)."""
    if not (math.isfinite(effect) and math.isfinite(se) and se >= 0 and n0 >= 1 and n >= 1):
        return float("nan")
    s_new = se * math.sqrt(n0 / n)
    sd = math.sqrt(se * se + s_new * s_new)
    if sd == 0:
        e = np.array([effect])
        w = np.array([1.0])
    else:
        q = np.linspace(-8, 8, 4001)
        e = effect + sd * q
        w = sps.norm.pdf(q)
        w /= w.sum()
    got = _verdicts(e, max(s_new, 1e-300), rule=rule, direction=direction, alpha=alpha, rule_version=rule_version,
                    sesoi=sesoi, margin=margin, band=band, threshold=threshold)
    return float(np.clip(w[got == VERDICT_CODE[verdict]].sum(), 0.0, 1.0))


def n_for_same_verdict(effect: float, se: float, n0: int, *, target: float = TARGET, n_max: int = 100_000,
                       **rule) -> int | None:
    """The smallest ``n`` (≥ 3) at which :func:`p_same_verdict` reaches ``target``; None when no
    ``n`` up to ``n_max`` does (the present estimate is too uncertain: its own variance is a floor)."""
    def ok(n: int) -> bool:
        return p_same_verdict(effect, se, n0, n, **rule) >= target
    if not ok(n_max):
        return None
    lo, hi = 2, n_max          # ok(hi); find the smallest n with ok(n) (monotone in n for a definite verdict)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def claim_se(c) -> float | None:
    """A claim's standard error: ``se`` when given, else read off its two-sided 95 % CI."""
    if c.se is not None:
        return float(c.se)
    lo, hi = c.ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return float((hi - lo) / (2 * sps.norm.isf((1 - CI_LEVEL) / 2)))


def claim_p_same_verdict(c, *, alpha: float = ALPHA, family_size: int = 1, n: int | None = None) -> float | None:
    """:func:`p_same_verdict` for a judged claim (an independent sample of ``n`` runs, default its
    own ``n``) at its family's Holm level; None for a composite or a claim without an interval."""
    se = claim_se(c)
    if c.rule == "composite" or se is None or not math.isfinite(c.effect) or c.n < 1:
        return None
    return p_same_verdict(c.effect, se, c.n, n or c.n, verdict=c.verdict, rule=c.rule, direction=c.direction,
                          alpha=alpha / max(family_size, 1), rule_version=c.rule_version, sesoi=c.sesoi,
                          margin=c.margin, band=c.band, threshold=c.threshold)
