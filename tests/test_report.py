"""REPORT.md reads as a document: nested tables are markdown tables, lines are short, missing values
are dashes, citation keys link to a references section, and the v2 columns stay."""

import json
import re
from pathlib import Path

from mtlmech.report.citations import CITATIONS
from mtlmech.report.markdown import MAX_LIST_ITEMS, MAX_TABLE_ROWS, build_report, render_value

ROOT = Path(__file__).resolve().parent.parent


def test_the_report_of_the_committed_summaries_has_short_lines_and_no_dumps():
    text = build_report(ROOT / "figures", command="python run_all.py")
    prose = [line for line in text.splitlines() if not line.startswith("|")]
    long = [line[:80] for line in prose if len(line) > 400]
    assert not long, long
    assert "p=None" not in text and "None" not in text
    assert not re.search(r"\bnan\b", text)
    # every summary's tables became markdown tables, not one line per table
    assert text.count("\n|---|") > 50


def test_citation_keys_link_to_the_references_listed_at_the_end():
    text = build_report(ROOT / "figures", command="x")
    body, refs = text.split("\n## References\n")
    cited = set(re.findall(r"\]\(#ref-([a-z0-9]+)\)", body))
    anchors = set(re.findall(r'<a id="ref-([a-z0-9]+)"></a>', refs))
    assert cited and cited == anchors                       # every link has its entry, no entry unused
    assert CITATIONS["C97"] in " ".join(refs.split())       # the full reference, not just the key
    assert "| [C93](#ref-c93) |" in body


def test_nested_values_render_as_tables():
    lines = render_value("T", {"a": 1.23456, "b": None, "c": float("nan"), "d": True, "ci": [0.1, 0.2]})
    text = "\n".join(lines)
    assert "| a | 1.23 |" in text and "| b | — |" in text and "| c | — |" in text and "| d | yes |" in text
    assert "| ci | [0.1, 0.2] |" in text
    records = [{"n": i, "x": {"k": i, "rate": 0.5}} for i in range(MAX_TABLE_ROWS + 5)]
    text = "\n".join(render_value("R", {"part": records}))
    assert "**R › part**" in text and "| n | x.k | x.rate |" in text      # nested dicts become dotted columns
    assert f"_{5} more rows in summary.json_" in text and text.count("\n| ") == MAX_TABLE_ROWS + 1
    text = "\n".join(render_value("D", {"MTL-h4": {"n": 3, "diff": 0.5}, "MTL-h8": {"n": 3, "diff": 0.25}}))
    assert "|  | n | diff |" in text and "| MTL-h4 | 3 | 0.5 |" in text          # a dict of records: one table
    text = "\n".join(render_value("L", list(range(3 * MAX_LIST_ITEMS))))
    assert f"… ({3 * MAX_LIST_ITEMS} items)]" in text


def test_v2_fields_stay_in_the_ledger_and_claim_lines(tmp_path):
    claim = {"id": "DA4", "statement": "MTL beats STL", "source": "C93", "test": "Wilcoxon", "effect": -0.05,
             "ci": [-0.06, -0.04], "p_value": None, "n": 300, "verdict": "inconclusive",
             "verdict_reason": "under-trained: MTL 12% of runs stopped at the epoch cap", "figure": "p/e.png",
             "direction": "less", "details": {"p_holm": None, "mean_treatment": float("nan")},
             "training": {"MTL": {"n": 300, "cap_fraction": 0.12, "lr_chosen": {"0.5": 200, "1": 100},
                                  "lr_edge_fraction": 0.2}}}
    summary = {"experiment": "p", "description": "d", "profile": "full", "claims": [claim],
               "constructions_tried": [{"stage": "pilot", "result": "x " * 400}], "tables": {},
               "training": [{"condition": "MTL", "n": 300, "cap_fraction": 0.12, "median_stop_epoch": 900.0,
                             "lr_chosen": {"0.5": 200}, "lr_edge_fraction": 0.2}],
               "v1": {"DA4": {"verdict": "replicated", "effect": -0.055, "ci": [-0.06, -0.05], "n": 300,
                              "changed": True, "why": "learning rate explained it"}},
               "figures": [], "n_runs": 600, "provenance": {"seeds": [0, 300], "device": "cpu", "git_commit": "abc"}}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "summary.json").write_text(json.dumps(summary))
    text = build_report(tmp_path, command="x")
    row = next(line for line in text.splitlines() if line.startswith("| DA4 |"))
    assert "under-trained" in row and "MTL: cap 12%, lr 0.5 in 200/300, edge 20%" in row
    assert "replicated — superseded: learning rate explained it" in row and "| — |" in row   # p is a dash
    assert "⚠ extend the grid" in text and "None" not in text and "nan" not in text
    assert max(len(line) for line in text.splitlines() if not line.startswith("|")) <= 120
