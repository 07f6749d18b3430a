"""``REPORT.md``: generated from the saved ``summary.json`` files, never edited by hand."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from ..pipeline.verdict_lines import EDGE_FLAG, QUICK_LABEL
from ..stats import VERDICTS
from .citations import cited, linked, reference
from .fields import is_fragile, is_premise, is_quick, replication

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
    return str(v).replace("|", "∣").replace("\n", " ")   # no pipe inside a table cell, even escaped


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
    of the first column, which holds their keys (``rows`` is then a list of (key, record)). With
    three rows or more, a column with the same value in every row is listed under the table instead."""
    if not rows:
        return "_(empty)_\n"
    keyed = [(k, _flat(r)) for k, r in rows] if key is not None else [(None, _flat(r)) for r in rows]
    cols = list(dict.fromkeys(c for _, r in keyed for c in r))
    same: dict[str, str] = {}
    if len(keyed) >= 3:
        for c in cols:
            values = {_fmt(r[c]) if c in r else None for _, r in keyed}
            if len(values) == 1 and None not in values and len(cols) - len(same) > 1:
                same[c] = values.pop()
        cols = [c for c in cols if c not in same]
    header = ([key] if key is not None else []) + cols
    lines = ["| " + " | ".join(_fmt(h) for h in header) + " |", "|" + "---|" * len(header)]
    for k, r in keyed[:MAX_TABLE_ROWS]:
        cells = ([_fmt(k)] if key is not None else []) + [_fmt(r.get(c)) if c in r else "" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"\n_{len(rows) - MAX_TABLE_ROWS} more rows in summary.json_")
    if same:
        lines.append("\n_every row: " + "; ".join(f"{_fmt(c)} {v}" for c, v in same.items()) + "_")
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
    """Every ``<folder>/summary.json`` under ``root``, each with its folder's name under ``"folder"``
    (an experiment can have several folders, e.g. compare_<problem>-<hash>)."""
    out = []
    for p in sorted(Path(root).glob("*/summary.json")):
        summary = json.loads(p.read_text(encoding="utf-8"))
        summary["folder"] = p.parent.name
        out.append(summary)
    return out


def folder(summary: dict) -> str:
    return summary.get("folder") or summary["experiment"]


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


FIT_GUARD_KEYS = ("fit_guard_fraction", "fit_fraction")   # the stats layer's fit-guard share, where recorded


def _fit_guard(t: dict) -> float | None:
    return next((t[k] for k in FIT_GUARD_KEYS if _number(t.get(k))), None)


def training_section(summary: dict) -> list[str]:
    """Per condition: runs, cap fraction (and fit-guard fraction where recorded), median stop epoch,
    chosen learning rates, edge share (flagged)."""
    rows = summary.get("training") or []
    if not rows:
        return []
    guard = any(_fit_guard(r) is not None for r in rows)
    out = ["", "## Training record per condition", ""]
    out += _wrapped("Cap = share of nets stopped by the epoch cap (over 5 %: under-trained)"
                    + ("; fit guard = share of nets the fit guard flagged" if guard else "")
                    + f"; edge = share of seeds whose chosen learning rate is a grid edge, flagged above {EDGE_FLAG:.0%}.")
    out += ["", "| condition | nets | cap |" + (" fit guard |" if guard else "")
            + " median stop epoch | chosen learning rates (rate: seeds) | edge |",
            "|---|---|---|" + ("---|" if guard else "") + "---|---|---|"]
    for r in rows:
        cap = "not recorded (v1 protocol)" if r.get("cap_fraction") is None else f"{r['cap_fraction']:.1%}"
        if _number(r.get("cap_fraction")) and r["cap_fraction"] > 0.05:
            cap += " ⚠"
        g = _fit_guard(r)
        edge = r.get("lr_edge_fraction")
        flag = "" if edge is None else f"{edge:.0%}" + (" ⚠ extend the grid" if edge > EDGE_FLAG else "")
        lrs = ", ".join(f"{k}: {v}" for k, v in (r.get("lr_chosen") or {}).items()) or "—"
        out.append(f"| {_fmt(r['condition'])} | {r['n']} | {cap} |" + (f" {DASH if g is None else f'{g:.1%}'} |" if guard else "")
                   + f" {_fmt(r.get('median_stop_epoch', '—'))} | {lrs} | {flag} |")
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


# ----------------------------------------------------------------------------------------------
# The report: REPORT.md (one screen or a few: tally, overview figure, short ledger, what changed)
# and one page per experiment (<experiment>/README.md: every claim in full, tables, figures).
# Everything below is a function of the summary.json files alone (no command line, no clock), so
# regenerating the report from committed summaries reproduces the committed files byte for byte.

OVERVIEW = "overview.png"        # the forest plot, next to REPORT.md
PAGE = "README.md"               # an experiment's page, in its folder
MAX_ROW = 250                    # characters of one ledger row at most
STATEMENT_CHARS = 110            # a claim's statement in the ledger is cut to this (in full on its page)
REASON_CHARS = 170               # a changed verdict's reason in "What changed" (in full on the page)


def _cut(text: str, n: int) -> str:
    """``text`` on one line, at most ``n`` characters, cut at a word with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= n:
        return text
    return text[: n - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _anchor(claim_id: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", claim_id.lower())


def _short_verdict(claim: dict) -> str:
    """The verdict with its reason's first words when it is a guard (under-trained, ...), for one cell."""
    reason = str(claim.get("verdict_reason") or "")
    guard = re.match(r"([a-z][a-z -]*?)(?::|$)", reason)
    tag = f" ({guard.group(1)})" if guard and claim["verdict"] == "inconclusive" and len(guard.group(1)) <= 30 else ""
    return claim["verdict"] + tag


def tally(claims: list[dict], key=lambda c: c["verdict"]) -> dict[str, int]:
    """Counts per verdict of the claims that count (premise checks do not)."""
    counted = [c for c in claims if not is_premise(c)]
    return {v: sum(key(c) == v for c in counted) for v in VERDICTS}


def _tally_text(counts: dict[str, int]) -> str:
    return " · ".join(f"{v} **{n}**" for v, n in counts.items())


def headline(summaries: list[dict]) -> list[str]:
    """The tally: confirmatory verdicts, the replication sample's where summaries have one, fragile and premise counts."""
    claims = [c for s in summaries for c in s["claims"]]
    counted = [c for c in claims if not is_premise(c)]
    line = f"**{len(counted)} claims**: {_tally_text(tally(claims))}"
    reps = [c for c in counted if replication(c)]
    out = [line + ("" if not reps else " (confirmatory sample)")]
    if reps:
        out.append(f"Replication sample ({len(reps)} claims): "
                   + _tally_text({v: sum(replication(c)["verdict"] == v for c in reps) for v in VERDICTS})
                   + f"; **{sum(is_fragile(c) for c in counted)} fragile** (the two samples disagree).")
    premises = [c for c in claims if is_premise(c)]
    if premises:
        out.append(f"Premise checks (not counted): {len(premises)}, "
                   + _tally_text(tally([{**c, 'kind': ''} for c in premises])) + ".")
    under = sum("under-trained" in str(c.get("verdict_reason", "")) for c in counted)
    if under:
        out.append(f"{under} of the inconclusive verdicts are *under-trained* (over 5 % of a compared condition's runs stopped at the epoch cap or did not fit: the fit guard).")
    return out


def readme_tally(summaries: list[dict]) -> str:
    """The tally line the README opens with (after the set-up commands)."""
    return headline(summaries)[0]


def _page_link(summary: dict, anchor: str = "") -> str:
    return f"{folder(summary)}/{PAGE}" + (f"#{anchor}" if anchor else "")


def ledger(summaries: list[dict]) -> list[str]:
    """One short table per experiment: ID (linked to the claim on its page), claim, effect [CI], verdict(s)."""
    two = any(replication(c) for s in summaries for c in s["claims"])
    out: list[str] = []
    for s in summaries:
        counts = tally(s["claims"])
        label = f" — {QUICK_LABEL}" if is_quick(s) else ""
        out += ["", f"### [{folder(s)}]({_page_link(s)}){label}", "",
                _cut(s.get("description", ""), 200) + " "
                + " · ".join(f"{v} {n}" for v, n in counts.items() if n), ""]
        if two:
            out += ["| ID | claim | effect [95% CI] | verdict | replication |", "|---|---|---|---|---|"]
        else:
            out += ["| ID | claim | effect [95% CI] | verdict |", "|---|---|---|---|"]
        for c in s["claims"]:
            verdict = ("premise: " if is_premise(c) else "") + _short_verdict(c)
            cells = [f"[{_fmt(c['id'])}]({_page_link(s, _anchor(c['id']))})", _fmt(_cut(c["statement"], STATEMENT_CHARS)),
                     _effect(c) if c.get("rule") != "composite" else f"composite of {len(c.get('parts') or [])}",
                     f"**{verdict}**"]
            if two:
                rep = replication(c)
                cells.append(DASH if rep is None else _short_verdict(rep) + (" ⚠ fragile" if is_fragile(c) else ""))
            out.append("| " + " | ".join(cells) + " |")
    return out


def _one_line_reason(why: str) -> str:
    """The reason's first clauses, up to REASON_CHARS, cut at a clause boundary where there is one."""
    why = " ".join(str(why or "").split())
    if not why:
        return "reason not recorded"
    if len(why) <= REASON_CHARS:
        return why
    head = why[:REASON_CHARS]
    cut = max(head.rfind(sep) for sep in ("; ", ": ", " — ", ", "))
    return (head[:cut] if cut >= 60 else _cut(why, REASON_CHARS).rstrip("…")).rstrip(",;:") + "…"


def what_changed(summaries: list[dict]) -> list[str]:
    """Every claim whose verdict differs from version 1's, with its one-line reason (in full on its page)."""
    rows = [(s, c, s["v1"][c["id"]]) for s in summaries for c in s["claims"]
            if (s.get("v1") or {}).get(c["id"], {}).get("changed")]
    out = ["", "## What changed", ""]
    if not any(s.get("v1") is not None for s in summaries):
        return out + ["_No summary records a comparison with version 1._"]
    out += _wrapped(f"{len(rows)} verdicts differ from version 1's (the committed v1 results, "
                    "`mtlmech/v1_verdicts.json`); the full reasons are on each experiment's page.") + [""]
    for s, c, old in rows:
        out += _wrapped(f"[{c['id']}]({_page_link(s, _anchor(c['id']))}) {old['verdict']} → **{c['verdict']}**: "
                        f"{_fmt(_one_line_reason(old.get('why', '')))}", first="- ", indent="  ")
    new = [c["id"] for s in summaries if s.get("v1") is not None for c in s["claims"] if c["id"] not in s["v1"]]
    if new:
        out += [""] + _wrapped(f"New since version 1 ({len(new)}): {', '.join(new)}.")
    return out


def build_report(root: Path, *, command: str | None = None) -> str:
    """REPORT.md for every experiment summary under ``root``: tally, overview figure, short ledger,
    what changed, references. ``command`` is accepted for callers that pass it and not written: the
    report is a function of the summaries alone."""
    summaries = load_summaries(root)
    commits = sorted({str(s["provenance"].get("git_commit"))[:12] for s in summaries})
    profiles = sorted({s["profile"] for s in summaries})
    quick = any(is_quick(s) for s in summaries)
    out = ["# mtlmech report" + (f" ({QUICK_LABEL})" if quick else ""), "",
           "_Generated from the `summary.json` files next to this file by `mtlmech report` "
           "(or `run_all.py`); do not edit by hand._", ""]
    if quick:
        out += _wrapped(f"**{QUICK_LABEL.capitalize()}**: few seeds and sizes, for trying things; the committed "
                        "full-profile report is `figures/REPORT.md`.") + [""]
    for line in headline(summaries):
        out += [line, ""]
    out += [f"Profile(s) {', '.join(profiles) or DASH}; code commit(s) {', '.join(commits) or DASH}.", "",
            f"![Every claim's standardised effect with its 95 % CI, by experiment, coloured by verdict]({OVERVIEW})", ""]
    out += _wrapped(
        "Verdicts ([docs/CLAIMS.md](../docs/CLAIMS.md)): *replicated* = the pre-registered test is significant at "
        "α = 0.01 after Holm correction within the experiment, in the predicted direction (equivalence: TOST within "
        "the margin); *not replicated* = the CI excludes the predicted effect or the effect is significant the other "
        "way (v3 claims with a smallest effect of interest: the effect shown within ±SESOI by TOST, or significant "
        "the other way); else *inconclusive* — *under-trained* when over 5 % of a compared condition's runs "
        "stopped at the epoch cap or did not fit (the fit guard). Premise checks are shown, never counted. "
        "Each ID links to the claim in full on its experiment's page (test, training record, chosen "
        "learning rates, edge and cap flags, tables and figures).")
    out += ["", "## Claims"]
    out += ledger(summaries)
    out += what_changed(summaries)
    out += references_section(summaries)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


# ---- an experiment's page --------------------------------------------------------------------

def _rule(c: dict) -> str:
    rule = c.get("rule", "")
    if rule == "directional":
        return f"directional, predicted {'below' if c.get('direction') == 'less' else 'above'} 0"
    if rule == "threshold":
        return f"threshold, predicted {'below' if c.get('direction') == 'less' else 'above'} {_fmt(c.get('threshold'))}"
    if rule == "equivalence":
        return f"equivalence within margin {_fmt(c.get('margin'))}"
    if rule == "band":
        return f"band, predicted inside {_fmt(c.get('band'))}"
    if rule == "composite":
        return "composite: " + ", ".join(f"[{p}](#{_anchor(p)})" for p in c.get("parts") or [])
    return _fmt(rule)


def _condition_line(name: str, t: dict) -> str:
    """One compared condition's training record, with the cap and edge flags."""
    parts = [f"{t.get('n', DASH)} nets"]
    cap = t.get("cap_fraction")
    parts.append("cap not recorded" if cap is None else f"cap {cap:.1%}" + (" ⚠ under-trained" if cap > 0.05 else ""))
    if _fit_guard(t) is not None:
        parts.append(f"fit guard {_fit_guard(t):.1%}")
    if _number(t.get("median_stop_epoch")):
        parts.append(f"median stop epoch {_fmt(float(t['median_stop_epoch']))}")
    for key in ("n_diverged", "n_saturated"):
        if t.get(key):
            parts.append(f"{key[2:]} {t[key]}")
    lrs = t.get("lr_chosen") or {}
    if lrs:
        parts.append("chosen rates " + ", ".join(f"{k}: {v}" for k, v in lrs.items()))
    edge = t.get("lr_edge_fraction")
    if _number(edge):
        parts.append(f"edge {edge:.0%}" + (" ⚠ extend the grid" if edge > EDGE_FLAG else ""))
    return f"{name}: " + "; ".join(parts)


def _v1_line(summary: dict, claim: dict) -> str | None:
    v1 = summary.get("v1")
    if v1 is None:
        return None
    old = v1.get(claim["id"])
    if not old:
        return "new in version 2"
    if not old.get("changed"):
        return f"{old['verdict']} (unchanged), effect {_effect(old)}"
    return f"{old['verdict']}, effect {_effect(old)} — superseded: {old.get('why') or 'reason not recorded'}"


def claim_section(summary: dict, c: dict) -> list[str]:
    """A claim in full: statement, source, test, rule, effect, verdict(s), training record, details, v1."""
    premise = " (premise check, not counted)" if is_premise(c) else ""
    fragile = " ⚠ fragile" if is_fragile(c) else ""
    out = ["", f'### <a id="{_anchor(c["id"])}"></a>{_fmt(c["id"])} — {c["verdict"]}{premise}{fragile}', ""]
    out += _wrapped(f"> {_fmt(c['statement'])}", indent="> ") + [""]
    link = lambda key: f"[{key}](../REPORT.md#ref-{key.lower()})"
    items = [("source", linked(_fmt(c.get("source", "")), link)), ("test", _fmt(c.get("test"))), ("rule", _rule(c))]
    if c.get("rule") != "composite":
        items.append(("effect", f"{_effect(c)}, p {_p(c)}, n {_fmt(c.get('n'))}"))
    items.append(("verdict", _verdict(c)))
    rep = replication(c)
    if rep:
        items.append(("replication sample", f"**{rep['verdict']}**"
                      + (f" ({_fmt(rep['verdict_reason'])})" if rep.get("verdict_reason") else "")
                      + (f", effect {_effect(rep)}" if "effect" in rep else "")
                      + (f", p {_p(rep)}" if "p_value" in rep else "") + (f", n {_fmt(rep['n'])}" if "n" in rep else "")))
    if c.get("where"):
        items.append(("where", _fmt(c["where"])))
    for key, v in items:
        out += _wrapped(f"**{key}**: {v}", first="- ", indent="  ")
    training = c.get("training") or {}
    if training:
        out.append("- **training record** (cap = share stopped by the epoch cap; edge = share of seeds whose "
                   "chosen learning rate is a grid edge):")
        for name, t in training.items():
            out += _wrapped(_condition_line(name, t), first="  - ", indent="    ")
    details = {k: v for k, v in (c.get("details") or {}).items() if k != "p_holm" and v is not None}
    if details:
        out += _wrapped("**details**: " + "; ".join(f"{k} {_fmt(v)}" for k, v in details.items()),
                        first="- ", indent="  ")
    v1 = _v1_line(summary, c)
    if v1:
        out += _wrapped(f"**version 1**: {_fmt(v1)}", first="- ", indent="  ")
    if c.get("figure"):
        fig = c["figure"]
        rel = fig.split("/", 1)[1] if fig.startswith(folder(summary) + "/") else f"../{fig}"
        out += [f"- **figure**: [{Path(fig).name}]({rel})"]
    return out


def build_page(summary: dict) -> str:
    """``<experiment>/README.md``: registration summary, provenance, every claim in full, training
    record, figures inline, the tables as tables, the constructions tried."""
    s, prov = summary, summary["provenance"]
    quick = f" ({QUICK_LABEL})" if is_quick(s) else ""
    title = s["experiment"] if folder(s) == s["experiment"] else f"{s['experiment']}: {folder(s)}"
    out = [f"# {title}{quick}", "",
           "_Generated from `summary.json` in this folder by `mtlmech report`; do not edit by hand. "
           "[← all experiments](../REPORT.md)_", ""]
    if s.get("description"):
        out += _wrapped(_fmt(s["description"])) + [""]
    out += _wrapped(f"Profile {s['profile']}, seeds {_fmt(prov.get('seeds'))}, {_fmt(s.get('n_runs'))} run records, "
                    f"device {_fmt(prov.get('device'))}, backend {_fmt(prov.get('backend'))}, code commit "
                    f"{str(prov.get('git_commit'))[:12]}; training time behind these results "
                    f"{_fmt(prov.get('compute_seconds'))} s.")
    counts = tally(s["claims"])
    out += ["", f"## Claims ({len(s['claims'])}: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n) + ")"]
    for c in s["claims"]:
        out += claim_section(s, c)
    out += training_section(s)
    if s.get("figures"):
        out += ["", "## Figures"]
        for fig in s["figures"]:
            out += ["", f"![{fig}]({fig})"]
    if s.get("tables"):
        out += ["", "## Tables", ""]
        out += _wrapped("Numbers to 3 significant digits; columns with the same value in every row are listed "
                        "under their table; `summary.json` holds them all.")
        for name, table in s["tables"].items():
            out += [""] + render_value(name, table)
    tried = s.get("constructions_tried", [])
    out += ["", f"## Constructions tried ({len(tried)})", ""]
    out += [line for i, t in enumerate(tried, 1) for line in _tried(i, t)] or ["_none listed_"]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


def write_report(root: Path, *, command: str | None = None) -> Path:
    """REPORT.md, the overview figure and every experiment's page under ``root``; returns REPORT.md's path."""
    from ..pipeline.store import atomic_write_text
    from .plots import overview_figure
    root = Path(root)
    summaries = load_summaries(root)
    for s in summaries:
        atomic_write_text(root / folder(s) / PAGE, build_page(s))
    overview_figure(summaries, root / OVERVIEW)
    path = root / "REPORT.md"
    atomic_write_text(path, build_report(root))
    return path
