"""Claims and their judgement: :class:`ClaimResult` (what a claim predicts and what was measured),
:func:`judge`, which applies Holm correction within the experiment, the verdict rules of
:mod:`mtlmech.stats.tests` and the guards (``docs/CLAIMS.md``), and :func:`tally`, the headline
count of an experiment's verdicts.

The judge is order-independent: every claim that is not a composite is Holm-corrected, judged by
its rule and guarded (under-trained: epoch cap or fit guard; too few runs) first; composites are
then combined from their parts' final verdicts, whatever order the claims were declared in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields

from .tests import (
    ALPHA,
    VERDICTS,
    combine_verdicts,
    holm,
    interval_p,
    verdict_band,
    verdict_directional,
    verdict_directional_sesoi,
    verdict_equivalence,
    verdict_threshold,
)

RULES = ("directional", "equivalence", "band", "threshold", "composite")
RULE_VERSIONS = ("v2", "v3")
MAX_CAP_FRACTION = 0.05
MAX_FIT_FRACTION = 0.05
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
    so the driver can attach their training record (cap and fit fractions, chosen learning rates).

    Version 3 (``rule_version``, derived when not given): a directional claim with a pre-registered
    ``sesoi`` (smallest effect of interest) and ``p_equivalent`` (TOST p of "within ±sesoi") is
    *not replicated* only when the effect is shown smaller than the SESOI or significant the other
    way, at Holm-corrected α; a band, threshold or equivalence claim with an ``interval`` function
    (level → CI) is judged on its CI at the Holm-adjusted level (its ``p_value``/``p_opposite`` are
    the interval conditions' p-values, :func:`mtlmech.stats.tests.interval_p`). A ``premise`` is a
    check that holds by construction: judged and shown, Holm-corrected among the family's premises
    only, never counted by :func:`tally`. ``se`` (the effect's standard error; else read off the CI)
    feeds the predicted replication probability ``p_same_verdict`` (:mod:`mtlmech.stats.power`).
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
    training: dict = field(default_factory=dict)   # condition -> cap/fit fraction, n, chosen lr (set by the driver)
    verdict: str = "inconclusive"
    verdict_reason: str = ""
    premise: bool = False
    sesoi: float | None = None
    p_equivalent: float | None = None   # v3 directional: TOST p that the effect lies within ±sesoi
    rule_version: str | None = None
    se: float | None = None
    p_same_verdict: float | None = None   # set by judge
    replication: dict | None = None       # set by the driver when the experiment has a replication sample
    fragile: bool = False
    pooled: dict | None = None
    interval: Callable[[float], tuple[float, float]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rule is None:
            if self.direction is None:
                raise ValueError(f"claim {self.id}: declare its rule (one of {RULES})")
            self.rule = "directional"
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.interval is not None and self.rule in ("band", "threshold") and self.p_value is None:
            self.p_value, self.p_opposite = interval_pvalues(self)
        if self.interval is not None and self.rule == "equivalence" and self.p_opposite is None:
            lo, hi = self.margin
            self.p_opposite = interval_p(self.interval, lambda ci: ci[0] > hi or ci[1] < lo)
        needs = {"directional": ("direction", "p_value"), "equivalence": ("margin", "p_value"), "band": ("band",),
                 "threshold": ("threshold", "direction"), "composite": ("parts",)}[self.rule]
        missing = [name for name in needs if getattr(self, name) in (None, ())]
        if missing:
            raise ValueError(f"claim {self.id}: rule {self.rule} needs {', '.join(missing)}")
        if self.direction is not None and self.direction not in ("less", "greater"):
            raise ValueError(f"claim {self.id}: direction must be 'less' or 'greater'")
        if self.sesoi is not None:
            if self.rule != "directional" or not (0 < self.sesoi < math.inf):
                raise ValueError(f"claim {self.id}: a SESOI is a finite number > 0 on a directional claim")
            if self.p_equivalent is None:
                raise ValueError(f"claim {self.id}: a SESOI needs p_equivalent (TOST within ±sesoi)")
        if self.margin is not None and not (math.isfinite(self.margin[0]) and math.isfinite(self.margin[1])
                                            and self.margin[0] < self.margin[1]):
            raise ValueError(f"claim {self.id}: a margin needs finite low < high, got {self.margin}")
        if self.rule_version is None:
            self.rule_version = {"directional": "v3" if self.sesoi is not None else "v2",
                                 "composite": "v2"}.get(self.rule, "v3" if self.interval is not None else "v2")
        if self.rule_version not in RULE_VERSIONS:
            raise ValueError(f"claim {self.id}: rule_version must be one of {RULE_VERSIONS}")
        if self.rule_version == "v3" and self.rule == "directional" and self.sesoi is None:
            raise ValueError(f"claim {self.id}: a v3 directional claim needs its pre-registered sesoi")
        if self.rule_version == "v3" and self.rule in ("band", "threshold", "equivalence") and self.interval is None:
            raise ValueError(f"claim {self.id}: a v3 {self.rule} claim needs its interval function (level -> CI)")

    def to_dict(self) -> dict:
        d = asdict(dataclass_copy(self))
        d.pop("interval", None)
        d["ci"] = [float(c) for c in self.ci]
        if d.get("replication") is None:
            d.pop("replication", None)
        if d.get("pooled") is None:
            d.pop("pooled", None)
        return d


def dataclass_copy(c: ClaimResult) -> ClaimResult:
    """A shallow copy without the interval function (``asdict`` would deep-copy it)."""
    new = object.__new__(ClaimResult)
    for f in fields(ClaimResult):
        setattr(new, f.name, None if f.name == "interval" else getattr(c, f.name))
    return new


def interval_pvalues(c: ClaimResult) -> tuple[float, float]:
    """(p, p_opposite) of a band or threshold claim from its interval function: the smallest α at
    which the (1 − α) CI meets the claim's condition, and the condition refuting it."""
    if c.rule == "band":
        lo, hi = c.band
        return (interval_p(c.interval, lambda ci: lo <= ci[0] and ci[1] <= hi),
                interval_p(c.interval, lambda ci: ci[1] < lo or ci[0] > hi))
    t = c.threshold
    if c.direction == "greater":
        return interval_p(c.interval, lambda ci: ci[0] > t), interval_p(c.interval, lambda ci: ci[1] <= t)
    return interval_p(c.interval, lambda ci: ci[1] < t), interval_p(c.interval, lambda ci: ci[0] >= t)


HOLM_ATTRS = (("p_value", "p_holm"), ("p_opposite", "p_opposite_holm"), ("p_equivalent", "p_equivalent_holm"))


def holm_family(c: ClaimResult) -> str:
    """The Holm family a claim is corrected in: its ``family``; premises among their family's premises."""
    return f"{c.family} (premises)" if c.premise else c.family


def _judge_one(c: ClaimResult, adj: dict, alpha: float) -> str:
    p, p_opp, p_eq = adj.get("p_holm"), adj.get("p_opposite_holm"), adj.get("p_equivalent_holm")
    if c.rule == "directional":
        if c.rule_version == "v3":
            return verdict_directional_sesoi(p, c.effect, c.direction, p_opp, p_eq, alpha)
        return verdict_directional(p, c.effect, c.ci, c.direction, p_opp, alpha)
    if c.rule_version == "v3":   # band, threshold, equivalence on the CI at the Holm-adjusted level
        if p is not None and p < alpha:
            return "replicated"
        if p_opp is not None and p_opp < alpha:
            return "not replicated"
        return "inconclusive"
    if c.rule == "equivalence":
        return verdict_equivalence(p, c.ci, c.margin, alpha)
    if c.rule == "band":
        return verdict_band(c.ci, *c.band)
    return verdict_threshold(c.ci, c.threshold, c.direction)


def _guard(c: ClaimResult, max_cap_fraction: float, max_fit_fraction: float) -> str:
    """Why ``c`` cannot be judged from its own training record (empty when it can)."""
    capped = {name: t["cap_fraction"] for name, t in sorted(c.training.items())
              if t.get("cap_fraction") is not None and t["cap_fraction"] > max_cap_fraction}
    unfit = {name: t for name, t in sorted(c.training.items())
             if t.get("fit_fraction") is not None and t["fit_fraction"] > max_fit_fraction}
    if not capped and not unfit:
        return ""
    why = [f"{k} {v:.0%} of runs stopped at the epoch cap" for k, v in capped.items()]
    why += [f"{k} {t['fit_fraction']:.0%} of runs did not fit" + (f" ({t['fit_detail']})" if t.get("fit_detail") else "")
            for k, t in unfit.items()]
    return "under-trained: " + ", ".join(why)


def _composite_order(claims: list[ClaimResult], by_id: dict[str, ClaimResult]) -> list[ClaimResult]:
    """Composites in an order where every part comes before its composite (parts may be composites);
    unknown parts and cycles are refused."""
    order, state = [], {}

    def visit(c: ClaimResult, path: tuple[str, ...]) -> None:
        if state.get(c.id) == "done":
            return
        if c.id in path:
            raise ValueError(f"composite claim {c.id}: its parts form a cycle ({' -> '.join((*path, c.id))})")
        unknown = [p for p in c.parts if p not in by_id or p == c.id]
        if unknown:
            raise ValueError(f"composite claim {c.id}: unknown parts {unknown}")
        for p in c.parts:
            if by_id[p].rule == "composite":
                visit(by_id[p], (*path, c.id))
        state[c.id] = "done"
        order.append(c)
    for c in sorted((c for c in claims if c.rule == "composite"), key=lambda c: c.id):
        visit(c, ())
    return order


def judge(claims: list[ClaimResult], alpha: float = ALPHA, max_cap_fraction: float = MAX_CAP_FRACTION,
          max_fit_fraction: float = MAX_FIT_FRACTION) -> list[ClaimResult]:
    """The one verdict pass, in three steps that do not depend on the order of ``claims``:

    1. Holm-correct ``p_value``, ``p_opposite`` and ``p_equivalent`` within each family (premises
       in a family of their own) and record them in ``details`` (``p_holm``, ...).
    2. Judge every claim that is not a composite by its rule, then guard it: *inconclusive*
       whatever its test says when one of its compared conditions has more than
       ``max_cap_fraction`` of its runs stopped by the epoch cap or more than ``max_fit_fraction``
       that did not fit (the fit guard, ``fit_fraction`` in its training record) — "under-trained"
       — or when it rests on fewer than ``MIN_RUNS`` runs.
    3. Combine composites from their parts' *final* verdicts (a guarded part is inconclusive),
       parts before the composites made of them; a composite's own training record is guarded too.

    Each claim's predicted replication probability (``p_same_verdict``) is set last."""
    from .power import claim_p_same_verdict

    by_id = {c.id: c for c in claims}
    if len(by_id) != len(claims):
        raise ValueError("claim IDs must be unique within an experiment")
    composites = _composite_order(claims, by_id)
    simple = [c for c in claims if c.rule != "composite"]
    family_size: dict[str, int] = {}
    for family in sorted({holm_family(c) for c in simple}):
        members = sorted((c for c in simple if holm_family(c) == family), key=lambda c: c.id)
        family_size[family] = len(members)
        for attr, name in HOLM_ATTRS:
            have = [c for c in members if getattr(c, attr) is not None]
            for c, p in zip(have, holm([getattr(c, attr) for c in have]) if have else []):
                c.details[name] = p
            for c in members:
                if getattr(c, attr) is None:
                    c.details.pop(name, None)
    for c in simple:
        c.details.pop("verdict_before_guards", None)
        adj = {name: c.details[name] for _, name in HOLM_ATTRS if name in c.details}
        c.verdict, c.verdict_reason = _judge_one(c, adj, alpha), ""
        # predicted replication of the rule's verdict (the guards below are not part of the model)
        c.p_same_verdict = claim_p_same_verdict(c, alpha=alpha, family_size=family_size[holm_family(c)])
        c.details["p_same_verdict_of"] = c.verdict   # the rule's verdict: a guard below may still override it
        if c.interval is not None and c.p_value is not None:   # the CI the Holm-corrected verdict reads
            level = 1 - alpha * c.p_value / c.details["p_holm"] if c.details.get("p_holm") else 1 - alpha
            c.details["ci_holm_level"] = level
            c.details["ci_holm"] = [float(x) for x in c.interval(level)]
        guard = _guard(c, max_cap_fraction, max_fit_fraction)
        few = f"too few runs (n = {c.n}) for a definite verdict" if c.n < MIN_RUNS else ""
        if guard or few:
            c.details["verdict_before_guards"] = c.verdict
            c.verdict = "inconclusive"
            c.verdict_reason = "; ".join(x for x in (guard, few) if x)
    for c in composites:
        parts = [by_id[p] for p in c.parts]
        c.verdict = combine_verdicts([p.verdict for p in parts])
        c.rule_version = "v3" if all(p.rule_version == "v3" for p in parts) else "v2"
        under = sorted(p.id for p in parts if p.verdict_reason.startswith("under-trained"))
        guard = _guard(c, max_cap_fraction, max_fit_fraction)
        if guard:
            c.verdict, c.verdict_reason = "inconclusive", guard
        elif under and c.verdict == "inconclusive":
            c.verdict_reason = f"under-trained parts: {', '.join(under)}; " + "; ".join(
                f"{p.id}: {p.verdict}" for p in parts)
        else:
            c.verdict_reason = "; ".join(f"{p.id}: {p.verdict}" for p in parts)
        c.p_same_verdict = _composite_p_same(c.verdict, parts)
    return claims


def _composite_p_same(verdict: str, parts: list[ClaimResult]) -> float | None:
    """A composite's predicted replication probability from its parts' (treated as independent):
    replicated again when every part is; not replicated again when a not-replicated part is."""
    ps = [p.p_same_verdict for p in parts]
    if verdict == "replicated" and all(p is not None for p in ps):
        return float(math.prod(ps))
    if verdict == "not replicated":
        failing = [p.p_same_verdict for p in parts if p.verdict == "not replicated" and p.p_same_verdict is not None]
        return float(1 - math.prod(1 - p for p in failing)) if failing else None
    return None


def _get(c, name):
    return c.get(name) if isinstance(c, dict) else getattr(c, name)


def tally(claims: Iterable[ClaimResult | dict]) -> dict[str, int]:
    """The headline count of an experiment's (or the suite's) verdicts.

    Premises are never counted (``premises`` says how many there were). A claim judged on two
    samples (confirmatory and replication) is counted only when both agree; one whose samples
    disagree is ``fragile`` and counted there instead. A claim with one sample (an experiment
    without a replication sample) counts by its verdict, and ``single_sample`` says how many did.
    Returns ``replicated``, ``not replicated``, ``inconclusive`` (the counted claims), ``counted``,
    ``fragile``, ``premises`` and ``single_sample``."""
    out = {v: 0 for v in VERDICTS}
    out.update(counted=0, fragile=0, premises=0, single_sample=0)
    for c in claims:
        if _get(c, "premise"):
            out["premises"] += 1
            continue
        rep = _get(c, "replication")
        if rep is not None and rep.get("verdict") != _get(c, "verdict"):
            out["fragile"] += 1
            continue
        if rep is None:
            out["single_sample"] += 1
        out[_get(c, "verdict")] += 1
        out["counted"] += 1
    return out
