"""Figure helpers: one style, deterministic PNGs, error bars that say what they are."""

from __future__ import annotations

import os
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
    if len(grids) != 1:
        return
    nrows = grids.pop().nrows
    p = fig.subplotpars
    height = (p.top - p.bottom) / (nrows + (nrows - 1) * p.hspace)
    gap = p.hspace * height
    bottom = p.bottom + caption_space(fig)
    new_height = (p.top - bottom - (nrows - 1) * gap) / nrows
    if new_height > 0:
        fig.subplots_adjust(bottom=bottom, hspace=gap / new_height if nrows > 1 else p.hspace)


def save(fig, path: Path) -> str:
    """Write a deterministic PNG (no timestamps or software tags) and close the figure. The file
    is written under a temporary name and renamed into place, so a kill never leaves a partial
    figure where a valid one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
