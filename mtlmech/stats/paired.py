"""Tidy-table analysis shared by experiments: paired treatment−control differences and group means.

Diverged runs are never dropped: they enter with the metric of their last finite early-stopping
snapshot; a pair whose metric is not finite is counted in ``n_nonfinite`` and left out of the test
only (the count is always reported next to the result).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .claims import ClaimResult
from .tests import mean_ci, paired_bootstrap_ci, paired_wilcoxon


def _count(value) -> int | None:
    """A count from a table cell; None when unknown (missing or NaN)."""
    return None if value is None or pd.isna(value) else int(value)


def paired(runs: pd.DataFrame, *, metric: str, treatment: str, control: str,
           by: Sequence[str] = (), task: str | None = None) -> pd.DataFrame:
    """Per group of ``by``: mean of treatment − control over seeds (paired), bootstrap CI,
    one-sided Wilcoxon p-values in both directions, and counts of pairs, diverged and saturated runs
    (None where the runs do not record the flag: unknown, not zero)."""
    df = runs if task is None else runs[runs["task"] == task]
    by = list(by)
    out = []
    groups = df.groupby(by, sort=True) if by else [((), df)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        wide = g.pivot_table(index="seed", columns="condition", values=metric, aggfunc="first")
        div = g.pivot_table(index="seed", columns="condition", values="diverged", aggfunc="first") \
            if "diverged" in g else None
        sat = g.assign(saturated=g["saturated"].fillna(False).astype(bool)).pivot_table(
            index="seed", columns="condition", values="saturated", aggfunc="first") if "saturated" in g else None
        if treatment not in wide or control not in wide:
            continue
        a, b = wide[treatment].to_numpy(float), wide[control].to_numpy(float)
        finite = np.isfinite(a) & np.isfinite(b)
        diff, lo, hi = paired_bootstrap_ci(a[finite], b[finite])
        row = dict(zip(by, key))
        row.update(n=int(len(a)), n_nonfinite=int((~finite).sum()),
                   n_diverged_treatment=int(div[treatment].sum()) if div is not None else None,
                   n_diverged_control=int(div[control].sum()) if div is not None else None,
                   n_saturated_treatment=int(sat[treatment].sum()) if sat is not None else None,
                   n_saturated_control=int(sat[control].sum()) if sat is not None else None,
                   mean_treatment=float(np.nanmean(a)), mean_control=float(np.nanmean(b)),
                   diff=diff, ci_low=lo, ci_high=hi,
                   p_less=paired_wilcoxon(a[finite], b[finite], "less"),
                   p_greater=paired_wilcoxon(a[finite], b[finite], "greater"),
                   frac_treatment_better=float(np.mean(a[finite] < b[finite])) if finite.any() else float("nan"))
        out.append(row)
    return pd.DataFrame(out)


def group_means(runs: pd.DataFrame, *, metric: str, by: Sequence[str]) -> pd.DataFrame:
    """Mean and 95 % t-interval of ``metric`` over seeds for each group (for figures)."""
    rows = []
    for key, g in runs.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        m, lo, hi = mean_ci(g[metric].to_numpy(float))
        rows.append({**dict(zip(by, key)), "mean": m, "ci_low": lo, "ci_high": hi, "n": int(len(g))})
    return pd.DataFrame(rows)


def paired_claim(row, *, id: str, statement: str, source: str, test: str, direction: str,
                 figure: str = "", compared: tuple[str, ...] = (), where: dict | None = None,
                 family: str = "main", **details) -> ClaimResult:
    """A directional claim from one row of :func:`paired`: effect = mean treatment − control with
    its paired-bootstrap CI, p = the one-sided Wilcoxon p in ``direction`` (``less``: treatment
    lower). The opposite p, both means, diverged counts and the share of seeds where the treatment
    is lower go into ``details`` with any extra ``details`` given. ``compared`` (treatment, control)
    and ``where`` (column filters) name the runs behind the row, for the under-trained guard."""
    if direction not in ("less", "greater"):
        raise ValueError("direction must be 'less' or 'greater'")
    p, p_opposite = ("p_less", "p_greater") if direction == "less" else ("p_greater", "p_less")
    return ClaimResult(id=id, statement=statement, source=source, test=test, effect=float(row["diff"]),
                       ci=(float(row["ci_low"]), float(row["ci_high"])), p_value=float(row[p]), n=int(row["n"]),
                       rule="directional", direction=direction, p_opposite=float(row[p_opposite]), figure=figure,
                       compared=tuple(compared), where=dict(where or {}), family=family,
                       details={"mean_treatment": float(row["mean_treatment"]),
                                "mean_control": float(row["mean_control"]),
                                **{k: _count(row.get(k)) for k in ("n_diverged_treatment", "n_diverged_control",
                                                                   "n_saturated_treatment", "n_saturated_control")},
                                "frac_seeds_treatment_lower": float(row["frac_treatment_better"]), **details})


def paired_arrays(runs: pd.DataFrame, *, metric: str, treatment: str, control: str,
                  where: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-seed ``metric`` of ``treatment`` and ``control`` on the runs ``where`` selects
    (column -> value or list of values), aligned by seed (seeds missing either condition are left
    out): the inputs of the :mod:`mtlmech.stats.declare` constructors."""
    sel = runs
    for column, value in (where or {}).items():
        sel = sel[sel[column].isin(value if isinstance(value, (list, tuple)) else [value])]
    wide = sel.pivot_table(index="seed", columns="condition", values=metric, aggfunc="first", dropna=False)
    if treatment not in wide or control not in wide:
        raise ValueError(f"no runs of {treatment!r} and {control!r} where {where}")
    wide = wide[[treatment, control]].dropna(how="all")
    return wide[treatment].to_numpy(float), wide[control].to_numpy(float)
