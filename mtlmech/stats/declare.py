"""The claim vocabulary: constructors that declare a claim in a line or two.

Each constructor computes the claim's test, effect and interval from the data it is given and
takes the claim's ``test`` text from the functions that compute it (their ``description``, see
:func:`mtlmech.stats.tests.describes`), so the text cannot say one test while the code runs
another. Claims declared here are version-3 claims (``docs/CLAIMS.md``) wherever the rule allows:
a directional claim given a ``sesoi``, and every band, threshold and equivalence claim (they carry
their interval function and are judged on the CI at their Holm-adjusted level).

- :func:`paired_directional` — "treatment is lower/higher than control" on paired runs
- :func:`equivalence` — "about the same", TOST with an absolute or a relative margin
- :func:`proportion` / :func:`share` — a rate inside a band or beyond a threshold (Wilson)
- :func:`mcnemar_switch` — paired binary outcomes switch one way (exact McNemar)
- :func:`trend` — an OLS slope in a direction
- :func:`composite` — a claim made of parts; :func:`premise` — mark a check true by construction
- :func:`tried` / :func:`committed` — entries of ``constructions_tried``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from .claims import ClaimResult
from .tests import CI_LEVEL, mcnemar_exact, paired_bootstrap_ci, paired_tost, paired_wilcoxon, wilson_ci
from .trend import slope_test

__all__ = ["bootstrap_interval", "committed", "composite", "equivalence", "mcnemar_switch", "paired_directional",
           "premise", "proportion", "relative_margin", "share", "trend", "tried"]

NAN = float("nan")


def _pairs(treatment, control) -> tuple[np.ndarray, np.ndarray, int]:
    a, b = np.asarray(treatment, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired values need two 1-d arrays of equal length")
    finite = np.isfinite(a) & np.isfinite(b)
    return a[finite], b[finite], int(len(a))


def bootstrap_interval(d: np.ndarray, n_resamples: int = 10_000, random_state: int = 0):
    """level -> percentile-bootstrap CI of the mean of ``d`` (the resampled means drawn once, as
    :func:`~mtlmech.stats.tests.paired_bootstrap_ci` draws them)."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) == 0:
        return lambda level: (NAN, NAN)
    if np.all(d == d[0]):
        return lambda level: (float(d[0]), float(d[0]))
    rng = np.random.default_rng(random_state)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)

    def interval(level: float) -> tuple[float, float]:
        lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)
    return interval


def _se(d: np.ndarray) -> float | None:
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None


def paired_directional(id: str, statement: str, source: str, treatment: Sequence[float], control: Sequence[float], *,
                       direction: str, what: str, sesoi: float | None = None, compared: tuple[str, ...] = (),
                       where: dict | None = None, family: str = "main", figure: str = "", premise: bool = False,
                       **details) -> ClaimResult:
    """Treatment − control (paired by seed) below 0 (``less``) or above 0 (``greater``): one-sided
    Wilcoxon signed-rank p in both directions, mean difference with its paired-bootstrap CI. With a
    pre-registered ``sesoi`` (a v3 claim) also the TOST p that the mean difference lies within
    ±sesoi: the claim is then refuted only by that or by significance the other way. Non-finite
    pairs are left out of the test and counted (``n_nonfinite``); ``n`` counts every pair."""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    a, b, n = _pairs(treatment, control)
    d = a - b
    effect, lo, hi = paired_bootstrap_ci(a, b)
    opposite = "greater" if direction == "less" else "less"
    p_eq = paired_tost(a, b, -sesoi, sesoi)[0] if sesoi is not None else None
    sign = "<" if direction == "less" else ">"
    test = (f"{paired_wilcoxon.description}, paired {what} {sign} 0; effect: mean difference, "
            f"{paired_bootstrap_ci.description} ({CI_LEVEL:.0%})")
    if sesoi is not None:
        test += f"; refuted by {paired_tost.description} within ±{sesoi:g} (the SESOI) or significance the other way"
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=effect, ci=(lo, hi),
                       p_value=paired_wilcoxon(a, b, direction), p_opposite=paired_wilcoxon(a, b, opposite), n=n,
                       rule="directional", direction=direction, sesoi=sesoi, p_equivalent=p_eq, se=_se(d),
                       compared=tuple(compared), where=dict(where or {}), family=family, figure=figure,
                       premise=premise,
                       details={"mean_treatment": float(a.mean()) if len(a) else NAN,
                                "mean_control": float(b.mean()) if len(b) else NAN, "n_nonfinite": n - len(a),
                                "frac_seeds_treatment_lower": float(np.mean(a < b)) if len(a) else NAN, **details})


def relative_margin(fraction: float, control: Sequence[float]) -> tuple[float, float]:
    """±``fraction`` of the control's mean (absolute value): a margin that scales with the
    quantity, so it can fail whatever the units (a fixed absolute margin wider than any possible
    difference never can)."""
    if not 0 < fraction < np.inf:
        raise ValueError(f"a relative margin is a fraction > 0, got {fraction}")
    c = np.asarray(control, dtype=np.float64)
    m = abs(float(np.mean(c[np.isfinite(c)])))
    if not m > 0:
        raise ValueError("a relative margin needs a control mean ≠ 0")
    return -fraction * m, fraction * m


def equivalence(id: str, statement: str, source: str, treatment: Sequence[float], control: Sequence[float], *,
                what: str, margin: tuple[float, float] | None = None, relative: float | None = None,
                compared: tuple[str, ...] = (), where: dict | None = None, family: str = "main", figure: str = "",
                premise: bool = False, **details) -> ClaimResult:
    """Treatment − control (paired) about 0: TOST on the mean difference within ``margin`` (absolute)
    or within ±``relative`` × the control's mean (:func:`relative_margin`); the effect's CI is the
    paired bootstrap, and the claim is refuted when that CI at its Holm-adjusted level lies wholly
    outside the margin."""
    if (margin is None) == (relative is None):
        raise ValueError(f"claim {id}: give an absolute margin or a relative one, not both or neither")
    a, b, n = _pairs(treatment, control)
    if relative is not None:
        margin = relative_margin(relative, b)
    lo_m, hi_m = margin
    effect, lo, hi = paired_bootstrap_ci(a, b)
    shown = (f"±{relative:g} × the control's mean (= ±{hi_m:.4g})" if relative is not None
             else f"({lo_m:g}, {hi_m:g})")
    test = (f"{paired_tost.description}, paired {what} within {shown}; effect: mean difference, "
            f"{paired_bootstrap_ci.description}")
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=effect, ci=(lo, hi),
                       p_value=paired_tost(a, b, lo_m, hi_m)[0], n=n, rule="equivalence", margin=(lo_m, hi_m),
                       interval=bootstrap_interval(a - b), se=_se(a - b), compared=tuple(compared),
                       where=dict(where or {}), family=family, figure=figure, premise=premise,
                       details={"mean_treatment": float(a.mean()) if len(a) else NAN,
                                "mean_control": float(b.mean()) if len(b) else NAN,
                                "relative_margin": relative, **details})


def proportion(id: str, statement: str, source: str, k: int, n: int, *, what: str,
               band: tuple[float, float] | None = None, threshold: float | None = None, direction: str | None = None,
               compared: tuple[str, ...] = (), where: dict | None = None, family: str = "main", figure: str = "",
               premise: bool = False, **details) -> ClaimResult:
    """A rate k/n inside ``band`` or beyond ``threshold`` in ``direction``, judged on its Wilson
    interval at the claim's Holm-adjusted level."""
    if (band is None) == (threshold is None):
        raise ValueError(f"claim {id}: give a band or a threshold")
    rule = "band" if band is not None else "threshold"
    cond = (f"inside [{band[0]:g}, {band[1]:g}]" if band is not None
            else f"{'above' if direction == 'greater' else 'below'} {threshold:g}")
    test = f"{what} = {k}/{n}, {wilson_ci.description} at the Holm-adjusted level {cond}"
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=k / n if n else NAN,
                       ci=wilson_ci(k, n), p_value=None, n=n, rule=rule, band=band, threshold=threshold,
                       direction=direction, interval=lambda level: wilson_ci(k, n, level),
                       se=float(np.sqrt(max(k / n * (1 - k / n), 0.25 / n) / n)) if n else None,
                       compared=tuple(compared), where=dict(where or {}), family=family, figure=figure,
                       premise=premise, details={"k": int(k), **details})


def share(id: str, statement: str, source: str, k: int, n: int, **kw) -> ClaimResult:
    """A share among the runs that reached an outcome (k of the n that did): :func:`proportion`."""
    return proportion(id, statement, source, k, n, **kw)


def mcnemar_switch(id: str, statement: str, source: str, treatment: Sequence[bool], control: Sequence[bool], *,
                   direction: str, what: str, sesoi: float | None = None, compared: tuple[str, ...] = (),
                   where: dict | None = None, family: str = "main", figure: str = "", premise: bool = False,
                   **details) -> ClaimResult:
    """Paired binary outcomes (same seed, two conditions) switch towards the treatment
    (``greater``: the outcome is more frequent under the treatment): exact McNemar, one-sided in
    both directions; effect = difference of rates with a paired-bootstrap CI. ``sesoi`` (a v3 claim):
    TOST on the paired 0/1 differences within ±sesoi."""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    t, c = np.asarray(treatment, dtype=bool), np.asarray(control, dtype=bool)
    m = mcnemar_exact(t, c, direction)
    opp = mcnemar_exact(t, c, "less" if direction == "greater" else "greater")
    d = t.astype(float) - c.astype(float)
    p_eq = paired_tost(t.astype(float), c.astype(float), -sesoi, sesoi)[0] if sesoi is not None else None
    test = (f"{mcnemar_exact.description}, one-sided, {what}; effect: difference of rates, "
            f"{paired_bootstrap_ci.description}")
    if sesoi is not None:
        test += f"; refuted by {paired_tost.description} within ±{sesoi:g} (the SESOI) or significance the other way"
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=m["diff"], ci=m["ci"],
                       p_value=m["p"], p_opposite=opp["p"], n=m["n"], rule="directional", direction=direction,
                       sesoi=sesoi, p_equivalent=p_eq, se=_se(d), compared=tuple(compared), where=dict(where or {}),
                       family=family, figure=figure, premise=premise,
                       details={"only_treatment": m["only_treatment"], "only_control": m["only_control"],
                                "rate_treatment": m["rate_treatment"], "rate_control": m["rate_control"], **details})


def trend(id: str, statement: str, source: str, x: Sequence[float], y: Sequence[float], *, direction: str, what: str,
          sesoi: float | None = None, compared: tuple[str, ...] = (), where: dict | None = None, family: str = "main",
          figure: str = "", premise: bool = False, **details) -> ClaimResult:
    """The OLS slope of ``y`` on ``x`` in ``direction`` (one-sided t-tests both ways, t-interval);
    with a ``sesoi`` (v3) also the TOST p that the slope lies within ±sesoi."""
    fit = slope_test(x, y, direction)
    se = (fit["ci"][1] - fit["ci"][0]) / (2 * sps.t.ppf(0.5 + CI_LEVEL / 2, fit["n"] - 2))
    p_eq = None
    if sesoi is not None:
        df = fit["n"] - 2
        p_eq = max(float(sps.t.sf((fit["slope"] + sesoi) / se, df)), float(sps.t.cdf((fit["slope"] - sesoi) / se, df))) \
            if se > 0 else float(not abs(fit["slope"]) < sesoi)
    test = f"{slope_test.description}, {what}"
    if sesoi is not None:
        test += f"; refuted by two one-sided t-tests of the slope within ±{sesoi:g} (the SESOI) or significance the other way"
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=fit["slope"], ci=fit["ci"],
                       p_value=fit["p"], p_opposite=fit["p_opposite"], n=fit["n"], rule="directional",
                       direction=direction, sesoi=sesoi, p_equivalent=p_eq, se=float(se), compared=tuple(compared),
                       where=dict(where or {}), family=family, figure=figure, premise=premise, details=dict(details))


def composite(id: str, statement: str, source: str, parts: Sequence[str], *, figure: str = "", family: str = "main",
              premise: bool = False, n: int = 0, **details) -> ClaimResult:
    """A claim made of parts: holds when every part holds, fails when any part fails (parts are
    judged and guarded first; a part may itself be a composite). No effect or interval of its own."""
    parts = tuple(parts)
    return ClaimResult(id=id, statement=statement, source=source, test="composite: every one of " + ", ".join(parts),
                       effect=NAN, ci=(NAN, NAN), p_value=None, n=n, rule="composite", parts=parts, figure=figure,
                       family=family, premise=premise, details=dict(details))


def premise(claim: ClaimResult) -> ClaimResult:
    """Mark ``claim`` a premise check (true by construction): judged and shown, Holm-corrected
    among premises only, never counted in the tally."""
    claim.premise = True
    return claim


def tried(stage: str, entries: Sequence[dict]) -> list[dict]:
    """``constructions_tried`` entries of one stage (``v1 pilot``, ``v2 committed``, ...)."""
    return [{"stage": stage, **e} for e in entries]


def committed(version: int, train, **fields) -> dict:
    """The ``constructions_tried`` entry of the construction a run used: its version and, from its
    ``TrainSpec``, the learning-rate grid, patience, cap and stopping rule, with ``fields``."""
    return {"stage": f"v{version} committed", "version": version, "grid": [train.lr * g for g in train.lr_grid],
            "patience": train.patience, "min_delta": train.min_delta, "cap": train.epochs,
            "stopping": getattr(train, "stopping", "all_tasks"), **fields}
