"""Figure helpers: one style, deterministic PNGs, error bars that say what they are."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from ..pipeline.store import temp_path  # noqa: E402

PALETTE = {"STL": "#1f77b4", "MTL": "#d62728"}


def apply_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "svg.hashsalt": "mtlmech"})


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4):
    apply_style()
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)


def errorbars(ax, x: Sequence[float], mean: Sequence[float], lo: Sequence[float], hi: Sequence[float], *,
              label: str, color: str | None = None, marker: str = "o", offset: float = 0.0, linestyle: str = "-") -> None:
    """Means with asymmetric error bars [lo, hi] (say in the axis label or caption what they are)."""
    x = [xi + offset for xi in x]
    yerr = [[m - low for m, low in zip(mean, lo)], [high - m for m, high in zip(mean, hi)]]
    ax.errorbar(x, mean, yerr=yerr, label=label, color=color, marker=marker, capsize=3, lw=1.5, ms=4, linestyle=linestyle)


def legend_below(ax, **kw):
    """A legend centred under the axes, below its tick labels and x label (measured, so a legend
    never covers the x label whatever the fonts), without a frame. ``kw`` go to ``ax.legend``."""
    from matplotlib.transforms import ScaledTranslation
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    axis = ax.xaxis.get_tightbbox(renderer)
    drop = max(ax.bbox.y0 - axis.y0, 0.0) / fig.dpi + 0.03            # inches from the axes' bottom
    kw = {"loc": "upper center", "frameon": False, **kw}
    return ax.legend(bbox_to_anchor=(0.5, 0.0),
                     bbox_transform=ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans), **kw)


def caption(fig, text: str) -> None:
    """A small note under the axes (n, what the error bars are, the construction)."""
    fig.text(0.01, 0.005, text, fontsize=7, ha="left", va="bottom", wrap=True, gid="caption")


CAPTION_SPACE = 0.06   # figure fraction kept free under the axes at least (one or two caption lines)


def caption_space(fig) -> float:
    """Figure fraction to keep free under the axes: the wrapped captions' height plus a small gap,
    and at least ``CAPTION_SPACE``."""
    renderer = fig.canvas.get_renderer()
    heights = [t.get_window_extent(renderer).y1 / fig.bbox.height for t in fig.texts if t.get_gid() == "caption"]
    return max([CAPTION_SPACE] + [h + 0.015 for h in heights])


def _layout(fig) -> None:
    """``fig.tight_layout(rect=(0, caption_space(fig), 1, 1))`` in one measuring pass instead of two.

    Matplotlib measures every label twice when given a rect (once to lay out, once more inside the
    rect). Here: one plain tight layout, then the axes grid is moved up by the caption space keeping the
    label margins and the gaps between rows in absolute size (what the second pass finds when the
    tick labels stay the same)."""
    fig.tight_layout()
    grids = {ax.get_subplotspec().get_gridspec() for ax in fig.axes if ax.get_subplotspec() is not None}
    if len(grids) != 1:   # e.g. colorbars in their own grids: the two-pass layout inside the rect
        fig.tight_layout(rect=(0, caption_space(fig), 1, 1))
        return
    nrows = grids.pop().nrows
    p = fig.subplotpars
    height = (p.top - p.bottom) / (nrows + (nrows - 1) * p.hspace)
    gap = p.hspace * height
    bottom = p.bottom + caption_space(fig)
    new_height = (p.top - bottom - (nrows - 1) * gap) / nrows
    if new_height > 0:
        fig.subplots_adjust(bottom=bottom, hspace=gap / new_height if nrows > 1 else p.hspace)


def save(fig, path: Path, *, layout: bool = True) -> str:
    """Write a deterministic PNG (no timestamps or software tags) and close the figure. The file
    is written under a temporary name and renamed into place, so a kill never leaves a partial
    figure where a valid one was. ``layout=False``: the figure is laid out already."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        _layout(fig)
    fd, tmp = temp_path(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".") or "png", metadata={"Software": None},
                        pil_kwargs={"optimize": False})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path.name


# ---- the overview figure: every claim's standardised effect --------------------------------------

VERDICT_COLORS = {"replicated": "#1a9850", "not replicated": "#d73027", "inconclusive": "#8c8c8c"}
UNDER_TRAINED_COLOR = "#c7c7c7"
CLIP = 3.0     # standardised effects beyond ±CLIP are drawn at the edge with their value


def _finite(*xs) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf") for x in xs)


def standardised(claim: dict) -> tuple[float, float, float] | None:
    """A claim's effect on one scale for every claim, with its 95 % CI: oriented so that > 0 is what
    was predicted (beyond 0 or the threshold in the predicted direction; for equivalence and band
    claims, inside the margin or band, by the distance to its nearer edge), in units of the spread
    of one seed's effect, sd ≈ SE·√n with SE = CI width / (2·1.96) (for a mean, Cohen's d_z).
    None for a composite or a claim without a finite effect and CI."""
    e, (lo, hi), n = claim.get("effect"), (claim.get("ci") or [None, None]), claim.get("n")
    if claim.get("rule") == "composite" or not _finite(e, lo, hi, n) or n < 2 or hi <= lo:
        return None
    sd = (hi - lo) / (2 * 1.959964) * n ** 0.5
    below, above = e - lo, hi - e             # the CI around the effect, in the effect's units
    rule, direction = claim.get("rule"), claim.get("direction")
    if rule in ("equivalence", "band"):
        edges = claim.get("margin") if rule == "equivalence" else claim.get("band")
        if not (isinstance(edges, (list, tuple)) and len(edges) == 2 and _finite(*edges)):
            return None
        inside = min(e - edges[0], edges[1] - e)
        spread = max(below, above)            # the nearer edge can switch sides: the wider half
        return inside / sd, (inside - spread) / sd, (inside + spread) / sd
    shift = e - (claim.get("threshold") or 0.0) if rule == "threshold" else e
    if direction == "less":
        return -shift / sd, (-shift - above) / sd, (-shift + below) / sd
    return shift / sd, (shift - below) / sd, (shift + above) / sd


def _verdict_color(claim: dict) -> str:
    if claim["verdict"] == "inconclusive" and "under-trained" in str(claim.get("verdict_reason", "")):
        return UNDER_TRAINED_COLOR
    return VERDICT_COLORS.get(claim["verdict"], "#000000")


def overview_figure(summaries: list[dict], path: Path) -> str:
    """The report's forest plot: per experiment, every claim's standardised effect (see
    :func:`standardised`) with its 95 % CI, coloured by verdict; premise checks as squares,
    fragile claims (the replication sample disagrees) ringed and marked †; effects beyond ±CLIP
    drawn at the edge with their value."""
    from matplotlib.lines import Line2D

    from .fields import is_fragile, is_premise, is_quick, replication
    groups = []
    for s in summaries:
        rows = [(c, standardised(c)) for c in s["claims"]]
        shown = [(c, d) for c, d in rows if d is not None]
        if shown:
            groups.append((s.get("folder") or s["experiment"], shown, len(rows) - len(shown)))
    # two columns, the experiments in order, split where the row counts balance best
    sizes = [len(g[1]) + 1 for g in groups]
    total, acc, cut = sum(sizes), 0, len(groups)
    best = total
    for i, size in enumerate(sizes):
        acc += size
        if abs(total - 2 * acc) < best:
            best, cut = abs(total - 2 * acc), i + 1
    columns = [groups[:cut], groups[cut:]] if len(groups) > 1 else [groups]
    height_rows = max(sum(len(g[1]) + 1 for g in col) for col in columns) if groups else 1
    apply_style()
    fig, axes = plt.subplots(1, len(columns), figsize=(7.5, 1.6 + 0.125 * height_rows), squeeze=False)
    any_premise = any_fragile = any_clipped = False
    for ax, col in zip(axes[0], columns):
        y, ticks, labels = 0, [], []
        for name, rows, hidden in col:
            ax.text(-CLIP - 0.15, y, name.replace("_", " ") + (f"  (+{hidden} composite)" if hidden else ""),
                    fontsize=7, fontweight="bold", va="center", ha="left", zorder=5,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"))
            if y:
                ax.axhline(y - 0.5, color="#bbbbbb", lw=0.6, zorder=0)
            y += 1
            for c, (d, lo, hi) in rows:
                color = _verdict_color(c)
                premise, fragile = is_premise(c), is_fragile(c)
                any_premise |= premise
                any_fragile |= fragile
                ax.plot([max(lo, -CLIP), min(hi, CLIP)], [y, y], color=color, lw=1.4, solid_capstyle="butt")
                x = min(max(d, -CLIP), CLIP)
                ax.plot([x], [y], marker="s" if premise else "o", ms=3.6, color=color,
                        mfc="white" if premise else color, mew=1.0, zorder=3)
                if fragile:
                    ax.plot([x], [y], marker="o", ms=7, mfc="none", mec="#222222", mew=0.8, zorder=4)
                if abs(d) > CLIP:
                    any_clipped = True
                    ax.annotate(f"{d:.1f}", (x, y), xytext=(-3 if d > 0 else 3, 0), textcoords="offset points",
                                fontsize=5.5, va="center", ha="right" if d > 0 else "left", color=color)
                ticks.append(y)
                labels.append(c["id"] + (" †" if fragile else "") + (" (premise)" if premise else ""))
                y += 1
        ax.set_yticks(ticks, labels, fontsize=6)
        ax.set_ylim(y - 0.4, -0.7)
        ax.set_xlim(-CLIP - 0.2, CLIP + 0.2)
        ax.axvline(0, color="#444444", lw=0.8, zorder=1)
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", length=0, pad=2)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("standardised effect (> 0: as predicted)", fontsize=7.5)
    handles = [Line2D([], [], color=c, marker="o", lw=1.4, ms=3.6, label=v) for v, c in VERDICT_COLORS.items()]
    handles.append(Line2D([], [], color=UNDER_TRAINED_COLOR, marker="o", lw=1.4, ms=3.6, label="inconclusive (under-trained)"))
    if any_premise:
        handles.append(Line2D([], [], color="#555555", marker="s", mfc="white", lw=0, ms=3.6, label="premise check (not counted)"))
    if any_fragile:
        handles.append(Line2D([], [], color="#222222", marker="o", mfc="none", lw=0, ms=7, label="† fragile (samples disagree)"))
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 4), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    title = "Every claim's standardised effect with its 95 % CI" + (" — quick profile, preliminary" if any(is_quick(s) for s in summaries) else "")
    fig.suptitle(title, fontsize=9, y=1.0 - 0.25 / fig.get_figheight(), va="top")
    caption(fig, "\n".join(textwrap.wrap("Effect oriented so that > 0 is the prediction (beyond 0 or the threshold; for equivalence and band "
                 "claims, inside the margin or band by the distance to the nearer edge), in units of one seed's spread "
                 "sd ≈ SE·√n (SE from the CI; for a mean, Cohen's d_z). Composite claims (verdicts from their parts) "
                 "are in the ledger." + (f" Beyond ±{CLIP:g}: drawn at the edge with the value." if any_clipped else "")
                 + (" Replication verdicts: REPORT.md." if any(replication(c) for s in summaries for c in s["claims"]) else ""), 125)))
    fig.tight_layout()
    legend_rows = -(-len(handles) // 4)
    top = 1 - (0.45 + 0.17 * legend_rows) / fig.get_figheight()
    fig.subplots_adjust(top=top, bottom=caption_space(fig) + 0.55 / fig.get_figheight(), wspace=0.28)
    return save(fig, path, layout=False)

