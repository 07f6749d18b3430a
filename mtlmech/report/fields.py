"""What a summary says about a claim beyond its verdict, read the same way by the markdown and the
figures: its replication-sample verdict, whether it is a premise check or fragile, the profile."""

from __future__ import annotations


def replication(claim: dict) -> dict | None:
    """The claim's replication-sample result (a dict with at least ``verdict``), where the summary has one."""
    rep = claim.get("replication")
    return rep if isinstance(rep, dict) and rep.get("verdict") else None


def is_premise(claim: dict) -> bool:
    """A premise check (does the construction do what it should?): shown, not counted in the tallies."""
    return claim.get("kind") == "premise" or claim.get("premise") is True


def is_fragile(claim: dict) -> bool:
    """The confirmatory and replication verdicts disagree (recorded as ``fragile``, else derived)."""
    if "fragile" in claim:
        return bool(claim["fragile"])
    rep = replication(claim)
    return rep is not None and rep["verdict"] != claim["verdict"]


def is_quick(summary: dict) -> bool:
    return summary.get("profile") == "quick"
