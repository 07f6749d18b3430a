"""``REPORT.md``: generated from the saved ``summary.json`` files, never edited by hand."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from ..stats import VERDICTS
from .citations import cited, linked, reference

MAX_TABLE_ROWS = 40     # rows of one table shown; the rest are in summary.json
MAX_LIST_ITEMS = 8      # items of a list shown in a cell or line
MAX_COLUMNS = 30        # a dict of records wider than this (flattened) gets one table per record
WRAP = 100              # prose lines are wrapped to this width (markdown joins them again)
DASH = "—"


def _fmt(v: Any) -> str:
    """One value as short text: floats to 3 significant digits, None and NaN as a dash, booleans as
    yes/no, lists truncated, dicts as ``key: value`` pairs."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return DASH
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}" if abs(v) < 1e6 else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        shown = ", ".join(_fmt(x) for x in v[:MAX_LIST_ITEMS])
        return f"[{shown}" + (f", … ({len(v)} items)]" if len(v) > MAX_LIST_ITEMS else "]")
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v).replace("|", "\\|").replace("\n", " ")


def _scalar(v: Any) -> bool:
    """A value that fits in one table cell: a scalar or a short list of scalars (e.g. a CI)."""
    if isinstance(v, (list, tuple)):
        return len(v) <= MAX_LIST_ITEMS and all(not isinstance(x, (list, tuple, dict)) for x in v)
    return not isinstance(v, dict)


def _flat(record: dict, prefix: str = "") -> dict:
    """A record with nested dicts as dotted columns (``{"A": {"k": 3}}`` → ``{"A.k": 3}``)."""
    out: dict = {}
    for k, v in record.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def markdown_table(rows: list[dict], *, key: str | None = None) -> str:
    """Records as a markdown table (nested dicts as dotted columns; at most MAX_TABLE_ROWS rows,
    with a note on the rest). ``key``: the records are the values of a dict and this is the header
    of the first column, which holds their keys (``rows`` is then a list of (key, record))."""
    if not rows:
        return "_(empty)_\n"
    keyed = [(k, _flat(r)) for k, r in rows] if key is not None else [(None, _flat(r)) for r in rows]
    cols = list(dict.fromkeys(c for _, r in keyed for c in r))
    header = ([key] if key is not None else []) + cols
    lines = ["| " + " | ".join(_fmt(h) for h in header) + " |", "|" + "---|" * len(header)]
    for k, r in keyed[:MAX_TABLE_ROWS]:
        cells = ([_fmt(k)] if key is not None else []) + [_fmt(r.get(c)) if c in r else "" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"\n_{len(rows) - MAX_TABLE_ROWS} more rows in summary.json_")
    return "\n".join(lines) + "\n"


def _table(rows: list, **kw: Any) -> str:
    return markdown_table(rows, **kw).rstrip("\n")


def _record_like(v: Any) -> bool:
    """A dict that reads well as one table row: every flattened value fits a cell, not too many columns."""
    if not isinstance(v, dict) or not v:
        return False
    flat = _flat(v)
    return len(flat) <= MAX_COLUMNS and all(_scalar(x) for x in flat.values())


def _wrapped(text: str, *, first: str = "", indent: str = "") -> list[str]:
    return textwrap.wrap(text, WRAP, initial_indent=first, subsequent_indent=indent or " " * len(first),
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def render_value(title: str, value: Any) -> list[str]:
    """A nested summary table as markdown: one table per list of records, a dict of scalars as a
    two-column table, a dict of records as one table keyed by the dict's keys, anything deeper as
    one section per key (titled ``outer › inner``)."""
    head = [f"**{title}**", ""]
    if _scalar(value) and not isinstance(value, (list, tuple)):
        return _wrapped(f"**{title}**: {_fmt(value)}") + [""]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(r, dict) for r in value):
            return head + [_table(list(value)), ""]
        return _wrapped(f"**{title}**: {_fmt(list(value))}") + [""]
    if not value:
        return _wrapped(f"**{title}**: {DASH}") + [""]
    if all(_scalar(v) for v in value.values()):
        return head + [_table([(k, {"value": v}) for k, v in value.items()], key=""), ""]
    out: list[str] = []
    scalars = {k: v for k, v in value.items() if _scalar(v)}
    if scalars:
        out += head + [_table([(k, {"value": v}) for k, v in scalars.items()], key=""), ""]
    groups: dict[tuple, dict] = {}      # records with the same columns share one table
    for k, v in value.items():
        if _record_like(v):
            groups.setdefault(tuple(_flat(v)), {})[k] = v
    tabled = set()
    for records in groups.values():
        if len(records) >= 2:
            out += ([] if out else head) + [_table(list(records.items()), key=""), ""]
            tabled |= set(records)
    for k, v in value.items():
        if k not in scalars and k not in tabled and v not in ({}, []):
            out += render_value(f"{title} › {k}", v)
    return out


def _sources(text: str) -> str:
    """A claim's source with each citation key linked to its entry under References."""
    return linked(_fmt(text), lambda key: f"[{key}](#ref-{key.lower()})")


def references_section(summaries: list[dict]) -> list[str]:
    """The sources the claims cite, in order of first citation, with their full references."""
    keys = list(dict.fromkeys(k for s in summaries for c in s["claims"] for k in cited(str(c.get("source", "")))))
    if not keys:
        return []
    out = ["", "## References", ""]
    for k in keys:
        out += _wrapped(f'<a id="ref-{k.lower()}"></a>**{k}** — {reference(k)}', first="- ", indent="  ")
    return out


def load_summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(root).glob("*/summary.json"))]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _p(claim: dict) -> str:
    p = claim.get("p_value")
    if not _number(p):
        return DASH
    holm = claim.get("details", {}).get("p_holm")
    return f"{p:.2g}" + (f" (Holm {holm:.2g})" if _number(holm) else "")


def _effect(claim: dict) -> str:
    ci = claim.get("ci") or [None, None]
    interval = f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if any(_number(x) for x in ci) else ""
    return f"{_fmt(claim.get('effect'))}{interval}"


EDGE_FLAG = 0.10   # a grid edge chosen by more than this share of seeds: the grid should be extended


def _verdict(claim: dict) -> str:
    reason = claim.get("verdict_reason", "")
    return f"**{claim['verdict']}**" + (f" ({_fmt(reason)})" if reason else "")


def _training(claim: dict) -> str:
    """Cap fraction and chosen learning rates of each compared condition, in one cell."""
    parts = []
    for name, t in claim.get("training", {}).items():
        cap = "cap n/a" if t.get("cap_fraction") is None else f"cap {t['cap_fraction']:.0%}"
        lrs = t.get("lr_chosen")
        lr = ""
        if lrs:
            top = max(lrs, key=lrs.get)
            lr = f", lr {top} in {lrs[top]}/{t['n']}" + (f", edge {t['lr_edge_fraction']:.0%}" if t.get("lr_edge_fraction") else "")
        parts.append(f"{name}: {cap}{lr}")
    return "; ".join(parts) or "—"


def _v1(summary: dict, claim: dict) -> str:
    old = summary.get("v1", {}).get(claim["id"])
    if not old:
        return "new in v2" if summary.get("v1") is not None else "—"
    if not old["changed"]:
        return f"{old['verdict']} (unchanged)"
    return f"{old['verdict']} — superseded: {_fmt(old['why']) or 'reason not recorded'}"


def training_section(summary: dict) -> list[str]:
    """Per condition: runs, cap fraction, median stop epoch, chosen learning rates, edge share (flagged)."""
    rows = summary.get("training") or []
    if not rows:
        return []
    out = ["", *_wrapped("**Training record per condition** (cap = share of nets stopped by the epoch cap; "
                         f"edge = share of seeds whose chosen learning rate is a grid edge, flagged above "
                         f"{EDGE_FLAG:.0%})"), "",
           "| condition | nets | cap | median stop epoch | chosen learning rates (rate: seeds) | edge |", "|---|---|---|---|---|---|"]
    for r in rows:
        cap = "not recorded (v1 protocol)" if r.get("cap_fraction") is None else f"{r['cap_fraction']:.1%}"
        edge = r.get("lr_edge_fraction")
        flag = "" if edge is None else f"{edge:.0%}" + (" ⚠ extend the grid" if edge > EDGE_FLAG else "")
        lrs = ", ".join(f"{k}: {v}" for k, v in (r.get("lr_chosen") or {}).items()) or "—"
        out.append(f"| {r['condition']} | {r['n']} | {cap} | {_fmt(r.get('median_stop_epoch', '—'))} | {lrs} | {flag} |")
    return out


def _tried(i: int, item: Any) -> list[str]:
    """One construction tried: a numbered item, its fields as wrapped sub-bullets."""
    if not isinstance(item, dict):
        return _wrapped(_fmt(item), first=f"{i}. ", indent="   ")
    fields = list(item.items())
    out = _wrapped(f"{_fmt(fields[0][0])}: {_fmt(fields[0][1])}", first=f"{i}. ", indent="   ") if fields else [f"{i}."]
    for k, v in fields[1:]:
        out += _wrapped(f"{_fmt(k)}: {_fmt(v)}", first="   - ", indent="     ")
    return out


def _claim_lines(c: dict) -> list[str]:
    """A claim in a few short lines: verdict, effect, p, n; then its scalar details."""
    out = _wrapped(f"**{c['id']}** — {_verdict(c)}: effect {_effect(c)}, p {_p(c)}, n {_fmt(c.get('n'))}.",
                   first="- ", indent="  ")
    details = {k: v for k, v in c.get("details", {}).items() if k != "p_holm" and _scalar(v)}
    if details:
        out += _wrapped("details: " + "; ".join(f"{k} {_fmt(v)}" for k, v in details.items()), first="  - ",
                        indent="    ")
    return out


def build_report(root: Path, *, command: str) -> str:
    """The whole report for every experiment summary found under ``root``."""
    summaries = load_summaries(root)
    claims = [(s["experiment"], c) for s in summaries for c in s["claims"]]
    counts = {v: sum(c["verdict"] == v for _, c in claims) for v in VERDICTS}
    commits = sorted({str(s["provenance"].get("git_commit"))[:12] for s in summaries})
    profiles = sorted({s["profile"] for s in summaries})
    out = ["# mtlmech report", "",
           "_Generated by `mtlmech.report.markdown` from the `summary.json` files next to this file; do not edit by hand._", "",
           f"- command: `{command}`", f"- profile(s): {', '.join(profiles) or DASH}; code commit(s): {', '.join(commits) or DASH}",
           f"- claims: **{len(claims)}** — replicated **{counts['replicated']}**, not replicated "
           f"**{counts['not replicated']}**, inconclusive **{counts['inconclusive']}**", ""]
    out += _wrapped(
        "Verdict rule (docs/CLAIMS.md): *replicated* = pre-registered test significant at α = 0.01 after Holm "
        "correction within the experiment, in the predicted direction (equivalence claims: TOST within the "
        "pre-registered margin); *not replicated* = the CI excludes the predicted effect or the effect is "
        "significant the other way; otherwise *inconclusive*. A claim whose compared conditions have more than "
        "5 % of runs stopped by the epoch cap is *inconclusive (under-trained)*. Effects are given with 95 % CIs. "
        "Column *training*: per compared condition, the share stopped by the cap and the most often chosen "
        "learning rate. Sources are listed under [References](#references).")
    out += ["", "## Claims ledger", "",
            "| ID | claim | source | test | effect [95% CI] | p | n | verdict | training | v1 verdict | figure |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s_, c in [(summary, c) for summary in summaries for c in summary["claims"]]:
        fig = f"[{Path(c['figure']).name}]({c['figure']})" if c.get("figure") else DASH
        out.append(f"| {c['id']} | {_fmt(c['statement'])} | {_sources(c['source'])} | {_fmt(c['test'])} | "
                   f"{_effect(c)} | {_p(c)} | {_fmt(c.get('n'))} | {_verdict(c)} | {_training(c)} | {_v1(s_, c)} | {fig} |")
    for s in summaries:
        prov = s["provenance"]
        out += ["", f"## {s['experiment']}", ""]
        if s.get("description"):
            out += _wrapped(s["description"]) + [""]
        out += _wrapped(f"Profile {s['profile']}, seeds {_fmt(prov.get('seeds'))}, {_fmt(s.get('n_runs'))} run records, "
                        f"device {_fmt(prov.get('device'))}, wall time {_fmt(prov.get('wall_seconds'))} s "
                        f"({prov.get('cache') or 'cache use not recorded'}; training time behind these results "
                        f"{_fmt(prov.get('compute_seconds'))} s).")
        out.append("")
        for c in s["claims"]:
            out += _claim_lines(c)
        out += training_section(s)
        for fig in s.get("figures", []):
            out += ["", f"![{fig}]({s['experiment']}/{fig})"]
        tried = s.get("constructions_tried", [])
        out += ["", f"**Constructions tried ({len(tried)})**", ""]
        out += [line for i, t in enumerate(tried, 1) for line in _tried(i, t)] or ["_none listed_"]
        for name, table in s.get("tables", {}).items():
            out += [""] + render_value(f"Table: {name}", table)
    out += references_section(summaries)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


def write_report(root: Path, *, command: str) -> Path:
    from ..pipeline.store import atomic_write_text
    path = Path(root) / "REPORT.md"
    atomic_write_text(path, build_report(root, command=command))
    return path
