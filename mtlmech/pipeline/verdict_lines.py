"""What a run prints about its claims: one line per claim with its verdict, effect and CI, and the
flags a reader must not miss (quick profile: preliminary; a grid edge chosen by too many seeds)."""

from __future__ import annotations

import math
from typing import Any

EDGE_FLAG = 0.10   # a grid edge chosen by more than this share of seeds: the grid should be extended
QUICK_LABEL = "quick profile — preliminary"


def _num(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.4g}"


def edge_flags(training: dict) -> list[str]:
    """``MTL 61 %`` for each compared condition whose chosen learning rate is a grid edge in more
    than EDGE_FLAG of its seeds."""
    return [f"{name} {t['lr_edge_fraction']:.0%}" for name, t in (training or {}).items()
            if isinstance(t.get("lr_edge_fraction"), (int, float)) and t["lr_edge_fraction"] > EDGE_FLAG]


def edge_note(training: dict) -> str:
    flags = edge_flags(training)
    return f"⚠ extend the grid: a grid-edge learning rate chosen by {', '.join(flags)} of seeds" if flags else ""


def _replication(d: dict) -> str:
    """`` | replication: <verdict> (FRAGILE) | P(same verdict: <verdict>) 0.97`` where the claim has them."""
    out = ""
    rep = d.get("replication")
    if rep:
        out += f" | replication: {rep.get('verdict')}" + (" (FRAGILE)" if d.get("fragile") else "")
    if d.get("p_same_verdict") is not None:
        of = (d.get("details") or {}).get("p_same_verdict_of", d.get("verdict"))
        out += f" | P(same verdict: {of}) {d['p_same_verdict']:.2f}"
    return out


def claim_lines(claims: list, *, profile: str = "full") -> list[str]:
    """The lines a run prints for its claims (``ClaimResult`` objects or their dicts)."""
    out = [f"  ({QUICK_LABEL}: few seeds and sizes; the committed verdicts are the full profile's)"] \
        if profile == "quick" else []
    for c in claims:
        d = c if isinstance(c, dict) else c.to_dict()
        verdict = d["verdict"] + (f" ({d['verdict_reason']})" if d.get("verdict_reason") else "")
        if profile == "quick":
            verdict += " [preliminary]"
        ci = d.get("ci") or [None, None]
        p = d.get("p_value")
        out.append(f"  {d['id']:5s} {verdict:15s} effect {_num(d.get('effect'))} CI [{_num(ci[0])}, {_num(ci[1])}]"
                   f" p={p if p is None else f'{p:.3g}'} n={d.get('n')}"
                   + _replication(d))
        note = edge_note(d.get("training") or {})
        if note:
            out.append(f"        {note}")
    return out
