"""The report reads as a document: REPORT.md is short (tally, overview figure, a short ledger with
rows under MAX_ROW characters and no pipes inside cells, what changed, references); every
experiment has its page with every claim in full; everything is a function of the summaries alone
(regenerating from committed summaries reproduces the committed markdown)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from mtlmech.report.citations import CITATIONS
from mtlmech.report.markdown import (
    MAX_LIST_ITEMS,
    MAX_ROW,
    MAX_TABLE_ROWS,
    PAGE,
    build_page,
    build_report,
    load_summaries,
    readme_tally,
    render_value,
    write_report,
)
from mtlmech.report.plots import standardised

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "figures"


def _cells(row: str) -> list[str]:
    """A markdown table row split the naive way (on every pipe)."""
    return row.strip().strip("|").split("|")


def test_the_report_is_short_with_the_figure_tally_and_a_ledger_of_short_rows():
    text = build_report(FIGURES)
    lines = text.splitlines()
    assert len(text) < 40_000 and len(lines) < 400, (len(text), len(lines))
    assert "![" in text and "(overview.png)" in text
    assert re.search(r"\*\*\d+ claims\*\*: replicated \*\*\d+\*\*", text)
    rows = [line for line in lines if line.startswith("| [")]
    n_claims = sum(len(s["claims"]) for s in load_summaries(FIGURES))
    assert len(rows) == n_claims
    assert max(map(len, rows)) <= MAX_ROW, max(rows, key=len)
    two_samples = any(c.get("replication") for s in load_summaries(FIGURES) for c in s["claims"])
    for row in rows:   # no pipe inside a cell: the naive split gives the header's column count
        assert len(_cells(row)) == (5 if two_samples else 4), row
    assert "PK1c-slight" in text and "∣" in text     # its statement's |…| kept, without a pipe
    assert "None" not in text and not re.search(r"\bnan\b", text)
    assert "## What changed" in text and "→ **not replicated**" in text


def test_every_changed_verdict_is_listed_once_with_its_reason():
    text = build_report(FIGURES).split("## What changed")[1]
    changed = [(c["id"], s["v1"][c["id"]]) for s in load_summaries(FIGURES) for c in s["claims"]
               if (s.get("v1") or {}).get(c["id"], {}).get("changed")]
    assert changed
    for cid, old in changed:
        line = next(line for line in text.splitlines() if line.startswith(f"- [{cid}]("))
        assert line.split("]")[0] == f"- [{cid}" and f"{old['verdict']} →" in line


def test_citation_keys_link_to_the_references_listed_at_the_end():
    text = build_report(FIGURES)
    refs = text.split("\n## References\n")[1]
    anchors = set(re.findall(r'<a id="ref-([a-z0-9]+)"></a>', refs))
    cited = set()
    for s in load_summaries(FIGURES):
        cited |= set(re.findall(r"\(\.\./REPORT\.md#ref-([a-z0-9]+)\)", build_page(s)))
    assert cited and cited == anchors                       # every link has its entry, no entry unused
    assert CITATIONS["C97"] in " ".join(refs.split())       # the full reference, not just the key


def test_the_output_depends_on_the_summaries_alone(tmp_path):
    assert build_report(FIGURES, command="a") == build_report(FIGURES, command="b")
    for name in ("peaks", "transfer"):
        shutil.copytree(FIGURES / name, tmp_path / name)
    write_report(tmp_path, command="one")
    first = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*.md"))}
    png = (tmp_path / "overview.png").read_bytes()
    write_report(tmp_path, command="two")
    assert first == {p: p.read_bytes() for p in sorted(tmp_path.rglob("*.md"))}
    assert png == (tmp_path / "overview.png").read_bytes()
    assert set(first) == {tmp_path / "REPORT.md", tmp_path / "peaks" / PAGE, tmp_path / "transfer" / PAGE}


def test_the_committed_report_and_pages_are_what_the_summaries_give():
    """``mtlmech report`` on a clean checkout leaves the committed markdown as it is."""
    assert (FIGURES / "REPORT.md").read_text(encoding="utf-8") == build_report(FIGURES)
    for s in load_summaries(FIGURES):
        page = FIGURES / s["experiment"] / PAGE
        assert page.exists(), page
        assert page.read_text(encoding="utf-8") == build_page(s), page
    assert (FIGURES / "overview.png").exists()


def test_a_page_has_every_claim_in_full_its_tables_and_figures():
    for s in load_summaries(FIGURES):
        page = build_page(s)
        for c in s["claims"]:
            anchor = re.sub(r"[^a-z0-9-]", "-", c["id"].lower())
            assert f'<a id="{anchor}"></a>' in page
        for fig in s["figures"]:
            assert f"]({fig})" in page
        assert page.count("\n|---|") >= len(s["tables"]) > 0 or not s["tables"]
        if any(c.get("training") for c in s["claims"]):
            assert "- **training record**" in page and "cap " in page and "chosen rates" in page
        for line in page.splitlines():
            if line.startswith("|") and not line.startswith("|---"):
                assert "\\|" not in line
        prose = [line for line in page.splitlines() if not line.startswith("|") and not line.startswith("_every row")]
        assert max(map(len, prose)) <= 400


def _claim(**kw):
    claim = {"id": "DA4", "statement": "MTL beats STL", "source": "C93", "test": "Wilcoxon", "effect": -0.05,
             "ci": [-0.06, -0.04], "p_value": None, "n": 300, "verdict": "inconclusive", "rule": "directional",
             "verdict_reason": "under-trained: MTL 12% of runs stopped at the epoch cap", "figure": "p/e.png",
             "direction": "less", "details": {"p_holm": None, "mean_treatment": float("nan")},
             "training": {"MTL": {"n": 300, "cap_fraction": 0.12, "lr_chosen": {"0.5": 200, "1": 100},
                                  "lr_edge_fraction": 0.2}}}
    claim.update(kw)
    return claim


def _summary(claims, **kw):
    summary = {"experiment": "p", "description": "d", "profile": "full", "claims": claims,
               "constructions_tried": [{"stage": "pilot", "result": "x " * 400}], "tables": {},
               "training": [{"condition": "MTL", "n": 300, "cap_fraction": 0.12, "median_stop_epoch": 900.0,
                             "lr_chosen": {"0.5": 200}, "lr_edge_fraction": 0.2}],
               "v1": {"DA4": {"verdict": "replicated", "effect": -0.055, "ci": [-0.06, -0.05], "n": 300,
                              "changed": True, "why": "learning rate explained it"}},
               "figures": ["e.png"], "n_runs": 600, "provenance": {"seeds": [0, 300], "device": "cpu", "git_commit": "abc"}}
    summary.update(kw)
    return summary


def _write(tmp_path, summary):
    (tmp_path / summary["experiment"]).mkdir()
    (tmp_path / summary["experiment"] / "summary.json").write_text(json.dumps(summary))


def test_training_flags_v1_and_guards_reach_the_page_and_ledger(tmp_path):
    _write(tmp_path, _summary([_claim()]))
    text = build_report(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| [DA4]"))
    assert "**inconclusive (under-trained)**" in row and "-0.05 [-0.06, -0.04]" in row
    assert "- [DA4](p/README.md#da4) replicated → **inconclusive**: learning rate explained it" in text
    page = " ".join(build_page(load_summaries(tmp_path)[0]).split())
    assert "MTL: 300 nets; cap 12.0% ⚠ under-trained; chosen rates 0.5: 200, 1: 100; edge 20% ⚠ extend the grid" in page
    assert "superseded: learning rate explained it" in page and "p —" in page
    assert "⚠ extend the grid" in page and "None" not in page and "nan" not in page
    assert "![e.png](e.png)" in page


def test_replication_premise_and_fragile_fields_are_shown_when_present(tmp_path):
    claims = [_claim(id="A1", verdict="replicated", verdict_reason="",
                     replication={"verdict": "inconclusive", "effect": -0.01, "ci": [-0.03, 0.01], "n": 300}),
              _claim(id="A2", verdict="replicated", verdict_reason="", replication={"verdict": "replicated"}),
              _claim(id="P1", verdict="replicated", verdict_reason="", kind="premise")]
    claims[0]["training"]["MTL"]["fit_guard_fraction"] = 0.03
    summary = _summary(claims, v1={})
    summary["training"][0]["fit_guard_fraction"] = 0.03
    _write(tmp_path, summary)
    text = build_report(tmp_path)
    assert "| ID | claim | effect [95% CI] | verdict | replication |" in text
    assert "**2 claims**: replicated **2**" in text            # the premise check is not counted
    assert "1 fragile" in text and "Premise checks (not counted): 1" in text
    a1 = next(line for line in text.splitlines() if line.startswith("| [A1]"))
    assert a1.endswith("| inconclusive ⚠ fragile |") and len(_cells(a1)) == 5
    page = build_page(load_summaries(tmp_path)[0])
    assert "A1 — replicated ⚠ fragile" in page and "**replication sample**: **inconclusive**" in page
    assert "P1 — replicated (premise check, not counted)" in page
    assert "cap 12.0% ⚠ under-trained; fit guard 3.0%" in " ".join(page.split()) and "| fit guard |" in page


def test_quick_profile_is_labelled_preliminary(tmp_path):
    _write(tmp_path, _summary([_claim()], profile="quick"))
    text = build_report(tmp_path)
    assert "quick profile — preliminary" in text.splitlines()[0]
    assert "quick profile — preliminary" in build_page(load_summaries(tmp_path)[0]).splitlines()[0]


@pytest.mark.parametrize("claim, expected", [
    (dict(rule="directional", direction="less", effect=-2.0, ci=[-3.0, -1.0], n=4), (1.96, 0.98, 2.94)),
    (dict(rule="directional", direction="greater", effect=2.0, ci=[1.0, 3.0], n=4), (1.96, 0.98, 2.94)),
    (dict(rule="threshold", direction="greater", threshold=1.0, effect=2.0, ci=[1.0, 3.0], n=4), (0.98, 0.0, 1.96)),
    (dict(rule="equivalence", margin=[-1.0, 1.0], effect=0.0, ci=[-0.5, 0.5], n=4), (1.96, 0.98, 2.94)),
])
def test_standardised_effects_are_oriented_to_the_prediction(claim, expected):
    assert standardised(claim) == pytest.approx(expected, abs=0.01)
    assert standardised(dict(rule="composite", effect=float("nan"), ci=[None, None], n=3)) is None


def test_nested_values_render_as_tables():
    lines = render_value("T", {"a": 1.23456, "b": None, "c": float("nan"), "d": True, "ci": [0.1, 0.2]})
    text = "\n".join(lines)
    assert "| a | 1.23 |" in text and "| b | — |" in text and "| c | — |" in text and "| d | yes |" in text
    assert "| ci | [0.1, 0.2] |" in text
    records = [{"n": i, "x": {"k": i, "rate": 0.5}} for i in range(MAX_TABLE_ROWS + 5)]
    text = "\n".join(render_value("R", {"part": records}))
    assert "**R › part**" in text and "| n | x.k |" in text      # nested dicts become dotted columns
    assert "_every row: x.rate 0.5_" in text                      # a constant column is listed under the table
    assert f"_{5} more rows in summary.json_" in text and text.count("\n| ") == MAX_TABLE_ROWS + 1
    text = "\n".join(render_value("D", {"MTL-h4": {"n": 3, "diff": 0.5}, "MTL-h8": {"n": 3, "diff": 0.25}}))
    assert "|  | n | diff |" in text and "| MTL-h4 | 3 | 0.5 |" in text          # a dict of records: one table
    text = "\n".join(render_value("L", list(range(3 * MAX_LIST_ITEMS))))
    assert f"… ({3 * MAX_LIST_ITEMS} items)]" in text
    assert "a∣b" in "\n".join(render_value("P", {"k": "a|b"}))


def test_the_readme_opens_with_the_overview_figure_and_the_current_tally():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme.split("\n## ")[0]
    assert readme_tally(load_summaries(FIGURES)) in head, "README's tally is stale: copy readme_tally()'s line"
    assert "](figures/overview.png)" in head and "](docs/performance.md)" in readme
    assert "\n## Speed\n" not in readme and "\n## Speed\n" in (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")


def test_a_legend_below_the_axes_never_covers_the_x_label():
    from mtlmech.report import plots
    fig, axes = plots.new_figure(ncols=2)
    for ax in axes[0]:
        for k in range(6):
            ax.plot([0, 1], [k, k + 1], label=f"series {k}")
        ax.set_xlabel("a label\non two lines")
        plots.legend_below(ax, ncol=2, fontsize=7)
    plots.caption(fig, "caption " * 40)
    plots._layout(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes[0]:
        legend, label = ax.get_legend().get_window_extent(renderer), ax.xaxis.label.get_window_extent(renderer)
        assert legend.y1 <= label.y0 and legend.y0 >= 0
    caption = next(t for t in fig.texts if t.get_gid() == "caption").get_window_extent(renderer)
    assert all(ax.get_legend().get_window_extent(renderer).y0 >= caption.y1 for ax in axes[0])


def test_console_claim_lines_flag_grid_edges_and_the_quick_profile():
    from mtlmech.pipeline.verdict_lines import claim_lines
    claim = _claim(id="CMP1", verdict="inconclusive", verdict_reason="",
                   training={"MTL": {"n": 16, "cap_fraction": 0.0, "lr_edge_fraction": 0.61},
                             "STL": {"n": 16, "cap_fraction": 0.0, "lr_edge_fraction": 0.58}})
    lines = claim_lines([claim], profile="quick")
    assert "quick profile — preliminary" in lines[0]
    assert lines[1].startswith("  CMP1  inconclusive [preliminary]")
    assert "⚠ extend the grid" in lines[2] and "MTL 61%, STL 58%" in lines[2]
    assert claim_lines([{**claim, "training": {}}])[0].startswith("  CMP1  inconclusive ")


def test_a_report_over_several_folders_of_one_experiment_names_each_folder(tmp_path):
    for name in ("compare_a-1111", "compare_b-2222"):
        (tmp_path / name).mkdir()
        summary = _summary([_claim(id="CMP1", figure=f"{name}/compare.png")], experiment="compare", v1=None)
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    write_report(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "### [compare_a-1111](compare_a-1111/README.md)" in text and "(compare_b-2222/README.md#cmp1)" in text
    page = (tmp_path / "compare_b-2222" / PAGE).read_text()
    assert page.startswith("# compare: compare_b-2222") and "[compare.png](compare.png)" in page
