"""Claims and their judgement: :class:`ClaimResult` (what a claim predicts and what was measured)
and :func:`judge`, which applies Holm correction within the experiment and the verdict rules of
:mod:`mtlmech.stats.tests` (``docs/CLAIMS.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .tests import (
    ALPHA,
    VERDICTS,
    combine_verdicts,
    holm,
    verdict_band,
    verdict_directional,
    verdict_equivalence,
    verdict_threshold,
)

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
