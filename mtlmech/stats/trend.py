"""Trends of a paired benefit across a sweep, and matched sample sizes.

``per_seed_benefit`` turns the tidy runs table into one control − treatment difference per
(seed, sweep point); ``slope_test`` regresses it on the sweep variable (ordinary least squares,
one-sided t-test on the slope, seeds independent across points); ``matched_size`` finds the
training-set size at which the control's mean error equals a target (log-linear interpolation),
with a bootstrap over seeds; ``level_contrast`` tests a pre-registered contrast of independent
levels' means (step contrasts, (noise > 0) − (noise 0)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .tests import CI_LEVEL, describes


def per_seed_benefit(runs: pd.DataFrame, *, metric: str, treatment: str, control: str, by: Sequence[str],
                     task: str | None = None) -> pd.DataFrame:
    """One row per (``by``…, seed) with ``benefit`` = control − treatment (positive: treatment better)."""
    df = runs if task is None else runs[runs["task"] == task]
    wide = df.pivot_table(index=[*by, "seed"], columns="condition", values=metric, aggfunc="first")
    out = (wide[control] - wide[treatment]).rename("benefit").reset_index()
    return out[np.isfinite(out["benefit"])]


@describes("OLS slope with one-sided t-tests and a t-interval")
def slope_test(x: Sequence[float], y: Sequence[float], direction: str = "greater",
               level: float = CI_LEVEL) -> dict:
    """OLS slope of ``y`` on ``x`` with its t-interval and one-sided p-values in both directions."""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(np.unique(x)) < 2:
        raise ValueError("a slope needs at least two distinct x values")
    fit = sps.linregress(x, y)
    half = sps.t.ppf(0.5 + level / 2, len(x) - 2) * fit.stderr
    p_greater = float(sps.linregress(x, y, alternative="greater").pvalue)
    p_less = float(sps.linregress(x, y, alternative="less").pvalue)
    return {"slope": float(fit.slope), "ci": (float(fit.slope - half), float(fit.slope + half)),
            "p": p_greater if direction == "greater" else p_less,
            "p_opposite": p_less if direction == "greater" else p_greater, "n": int(len(x))}


def matched_size(sizes: Sequence[float], errors: Sequence[float], target: float) -> float:
    """Size at which a decreasing error curve (``errors`` at ``sizes``) reaches ``target``,
    interpolating linearly in log(size); NaN when ``target`` lies outside the curve's range."""
    sizes, errors = np.asarray(sizes, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    order = np.argsort(sizes)
    sizes, errors = sizes[order], errors[order]
    for i in range(len(sizes) - 1):
        hi_err, lo_err = errors[i], errors[i + 1]
        if min(hi_err, lo_err) <= target <= max(hi_err, lo_err) and hi_err != lo_err:
            t = (hi_err - target) / (hi_err - lo_err)
            return float(np.exp(np.log(sizes[i]) + t * (np.log(sizes[i + 1]) - np.log(sizes[i]))))
    if len(sizes) and errors[0] == target:
        return float(sizes[0])
    return float("nan")


def matched_size_bootstrap(control: dict[float, np.ndarray], target: np.ndarray, *, n_resamples: int = 2000,
                           random_state: int = 0, level: float = CI_LEVEL) -> dict:
    """``matched_size`` of the control's mean-error curve (per-size arrays of per-seed errors) at
    the mean of ``target`` (per-seed errors of the treatment), with a percentile bootstrap that
    resamples seeds within every size. Resamples whose target lies outside the curve are counted."""
    rng = np.random.default_rng(random_state)
    sizes = sorted(control)
    point = matched_size(sizes, [np.mean(control[s]) for s in sizes], float(np.mean(target)))
    boots = []
    for _ in range(n_resamples):
        curve = [np.mean(rng.choice(control[s], size=len(control[s]))) for s in sizes]
        boots.append(matched_size(sizes, curve, float(np.mean(rng.choice(target, size=len(target))))))
    boots = np.asarray(boots)
    finite = boots[np.isfinite(boots)]
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]) if len(finite) else (np.nan, np.nan)
    return {"size": point, "ci": (float(lo), float(hi)), "n_outside": int((~np.isfinite(boots)).sum()),
            "n_resamples": n_resamples}


@describes("contrast of independent levels' means, Welch t-test and t-interval")
def level_contrast(values: dict[float, Sequence[float]], high: Sequence[float], low: Sequence[float],
                   direction: str = "greater", level: float = CI_LEVEL) -> dict:
    """Contrast of independent groups' means: mean over ``high`` levels of each level's mean minus
    the same over ``low`` levels (each level weighted equally), e.g. (noise > 0) − (noise 0) of a
    per-seed benefit, or the benefit at 4 irrelevant inputs minus that at 0.

    The levels' samples are independent (different data per level). Standard error from the
    levels' variances; Welch–Satterthwaite degrees of freedom; one-sided t p-values in both
    directions and a t-interval. A contrast whose every group has zero variance is exact: p = 0
    or 1 by its sign (0.5 when it is 0)."""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    if not high or not low or set(high) & set(low):
        raise ValueError("a contrast needs disjoint, non-empty high and low levels")
    missing = [lv for lv in (*high, *low) if lv not in values]
    if missing:
        raise ValueError(f"no values for levels {missing}")
    weights = {**{h: 1.0 / len(high) for h in high}, **{lv: -1.0 / len(low) for lv in low}}
    effect, var, df_den, n = 0.0, 0.0, 0.0, 0
    for lv, w in weights.items():
        x = np.asarray(values[lv], dtype=np.float64)
        x = x[np.isfinite(x)]
        if len(x) < 2:
            raise ValueError(f"level {lv} needs at least two finite values")
        v = w * w * x.var(ddof=1) / len(x)
        effect += w * x.mean()
        var += v
        df_den += v * v / (len(x) - 1)
        n += len(x)
    se = float(np.sqrt(var))
    if se == 0:
        p_greater = 0.0 if effect > 0 else 1.0 if effect < 0 else 0.5
        p_less = 0.0 if effect < 0 else 1.0 if effect > 0 else 0.5
        ci = (effect, effect)
    else:
        df = var * var / df_den
        t = effect / se
        p_greater, p_less = float(sps.t.sf(t, df)), float(sps.t.cdf(t, df))
        half = float(sps.t.ppf(0.5 + level / 2, df) * se)
        ci = (effect - half, effect + half)
    return {"effect": float(effect), "ci": (float(ci[0]), float(ci[1])), "se": se,
            "p": p_greater if direction == "greater" else p_less,
            "p_opposite": p_less if direction == "greater" else p_greater, "n": n}


def constructions_tried(v1_pilots: Sequence[dict], v2_pilots: Sequence[dict], v1_committed: dict, *, version: int,
                        train) -> list[dict]:
    """The ``constructions_tried`` list of a re-registered experiment: its version-1 and version-2
    pilots, the committed version-1 construction and result, and the committed version-2 settings
    (grid, patience, cap) read from its ``TrainSpec`` ``train`` (or a list of them)."""
    specs = train if isinstance(train, (list, tuple)) else [train]
    v2 = {"stage": "v2 committed", "version": version,
          "grid": [[s.lr * g for g in s.lr_grid] for s in specs] if len(specs) > 1 else [specs[0].lr * g for g in specs[0].lr_grid],
          "patience": [s.patience for s in specs] if len(specs) > 1 else specs[0].patience,
          "cap": [s.epochs for s in specs] if len(specs) > 1 else specs[0].epochs}
    return ([{"stage": "v1 pilot", **p} for p in v1_pilots] + [{"stage": "v2 pilot", **p} for p in v2_pilots]
            + [{"stage": "v1 committed", **v1_committed}, v2])
