"""Every claim ID an experiment declares is in the claims ledger docs/CLAIMS.md, and every source
key a claim cites is a known reference (mtlmech/report/citations.py, docs/SOURCES.md)."""

import ast
import json
import re
from pathlib import Path

from mtlmech.report.citations import CITATIONS, cited

ROOT = Path(__file__).resolve().parent.parent
LEDGER = ROOT / "docs" / "CLAIMS.md"
ID_TEXT = r"[A-Z]{2,4}\d+[a-z]?(?:[-@][\w=.]+)?"   # e.g. DA4, RB1a, PK1c-neg, IO2c@s=0.5
ID = re.compile(ID_TEXT)


def ledger_ids(text: str) -> set[str]:
    """IDs in the first column of the ledger's tables."""
    return {m.group(1) for m in re.finditer(rf"^\|\s*({ID_TEXT})\s*\|", text, flags=re.M)}


def summary_ids() -> dict[str, str]:
    """claim ID -> the summary.json that declares it, for every committed summary."""
    return {c["id"]: str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("figures/*/summary.json"))
            for c in json.loads(path.read_text())["claims"]}


def source_ids(source: str) -> set[str]:
    """Claim IDs written as string literals in an ``id=...`` keyword argument (also inside a
    conditional such as ``id="DA4" if tuned else "DA4u"``). IDs built with f-strings cannot be
    seen here; the committed summaries list those."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "id":
            found |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)
                      and isinstance(c.value, str) and ID.fullmatch(c.value)}
    return found


def declared_ids() -> dict[str, str]:
    """claim ID -> where it is declared (experiment files and committed summaries)."""
    declared = summary_ids()
    for path in sorted(ROOT.glob("experiments/*.py")):
        for claim_id in source_ids(path.read_text()):
            declared.setdefault(claim_id, str(path.relative_to(ROOT)))
    return declared


def test_the_scanner_finds_ids_in_keywords_and_conditionals():
    code = 'f(id="DA4" if t else "DA4u", statement="x"); g(claim_id="ZZ9"); h(id=f"CT{k}"); C(id="RB1a")'
    assert source_ids(code) == {"DA4", "DA4u", "RB1a"}
    assert ledger_ids("| ID | claim |\n|---|---|\n| DA4 | a |\n| **no** | b |\n|  PK1b  | c |\n") == {"DA4", "PK1b"}


def test_every_declared_claim_id_is_in_the_ledger():
    declared = declared_ids()
    assert len(declared) >= 54, f"only {len(declared)} claim IDs found: the scan is broken"
    ledger = ledger_ids(LEDGER.read_text())
    missing = sorted(set(declared) - ledger)
    assert not missing, ("claim IDs declared by experiments but missing from docs/CLAIMS.md (add a row with "
                         "statement, source and measurable form): "
                         + ", ".join(f"{i} ({declared[i]})" for i in missing))


def test_every_cited_source_is_a_known_reference():
    sources = {c["source"] for path in ROOT.glob("figures/*/summary.json")
               for c in json.loads(path.read_text())["claims"]}
    assert sources
    unknown = sorted(s for s in sources if s.split()[0].rstrip(";,") != "none" and not cited(s))
    assert not unknown, f"claim sources that cite no key of mtlmech/report/citations.py: {unknown}"
    text = (ROOT / "docs" / "SOURCES.md").read_text()
    assert all(f"| {key} |" in text for key in CITATIONS), "docs/SOURCES.md must list every citation key"
