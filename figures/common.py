"""Shared plotting helpers and the paper settings every figure uses.

Sizes are a paper's: a figure is one column (COLUMN_WIDTH, 3.5 in) or two (PAGE_WIDTH, 7 in) wide,
drawn at that size with fonts of 6-8 pt (PAPER_RC), so that it goes into a paper unscaled and its
smallest text stays at least MIN_FONT points. PDFs embed TrueType fonts (pdf.fonttype 42), which
journals and arXiv accept and which stay searchable, rather than matplotlib's default Type 3.

Bands: the mean over seeds with its 95% t-interval; with fewer than MIN_SEEDS_FOR_CI seeds at a point
the t-interval is uninformative (two seeds: the mean plus or minus 12.7 standard errors, which covers
any metric's whole range), so the band is the seeds' own range there, and the caption says so.
Labels and colours come from experiments.variants and intervals from experiments.stats, neither of
which loads the training stack.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from grdr.experiments.verdict.seeds import seed_summary  # noqa: E402
from grdr.experiments.variants import color, label  # noqa: E402

__all__ = ["plt", "seed_summary", "line_with_band", "label", "color", "COLUMN_WIDTH", "PAGE_WIDTH", "PAPER_RC",
           "MIN_FONT", "MIN_SEEDS_FOR_CI", "panels", "outside_legend", "seed_band"]

COLUMN_WIDTH = 3.5  # inches: one column of a two-column paper
PAGE_WIDTH = 7.0  # inches: both columns (a figure* in LaTeX)
MIN_FONT = 5.5  # points: the smallest text a figure may carry at its own size
MIN_SEEDS_FOR_CI = 3  # below this a band is the seeds' range, not a t-interval

PAPER_RC = {
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType, not Type 3
    "font.size": 7.0, "axes.titlesize": 7.0, "axes.labelsize": 7.0, "xtick.labelsize": 6.0, "ytick.labelsize": 6.0,
    "legend.fontsize": 6.0, "legend.title_fontsize": 6.0, "figure.titlesize": 8.0,
    "lines.linewidth": 1.0, "lines.markersize": 3.5, "axes.linewidth": 0.6, "grid.linewidth": 0.4,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "legend.handlelength": 3.0, "legend.borderpad": 0.3, "legend.labelspacing": 0.3, "legend.framealpha": 0.85,
    "savefig.dpi": 300,
}
matplotlib.rcParams.update(PAPER_RC)


def panels(rows: int, cols: int, *, width: float = PAGE_WIDTH, row_height: float = 2.1, extra: float = 0.0,
           **kwargs):
    """A figure of rows x cols panels at a paper's width (PAGE_WIDTH or COLUMN_WIDTH), laid out by
    constrained_layout so that labels never overlap a neighbouring panel; `extra` inches of height
    for a title and a legend below the panels."""
    kwargs.setdefault("squeeze", False)
    return plt.subplots(rows, cols, figsize=(width, row_height * rows + extra), layout="constrained", **kwargs)


def outside_legend(fig, axes, ncol: int = 4, **kwargs):
    """One legend for the whole figure, below its panels (it never covers data), from the labelled
    artists of `axes` (each label once)."""
    handles, labels = {}, []
    for ax in list(axes):
        for h, text in zip(*ax.get_legend_handles_labels()):
            if text not in handles and not text.startswith("_"):
                handles[text] = h
                labels.append(text)
    if labels:
        fig.legend([handles[t] for t in labels], labels, loc="outside lower center", ncol=min(ncol, len(labels)),
                   frameon=False, **kwargs)


def seed_band(part: pd.DataFrame, x: str, value: str):
    """(seed_summary of value against x, band low, band high): the 95% t-interval where a point has at
    least MIN_SEEDS_FOR_CI seeds, the seeds' range (min to max) where it has fewer."""
    s = seed_summary(part, [x], value).sort_values(x).reset_index(drop=True)
    spread = part.groupby(x)[value].agg(["min", "max"]).reindex(s[x]).reset_index(drop=True)
    few = (s["n"] < MIN_SEEDS_FOR_CI).to_numpy()
    low = s["low"].fillna(s["mean"]).to_numpy().copy()
    high = s["high"].fillna(s["mean"]).to_numpy().copy()
    low[few], high[few] = spread["min"].to_numpy()[few], spread["max"].to_numpy()[few]
    return s, low, high


def line_with_band(ax, df: pd.DataFrame, x: str, value: str, model: str, **style):
    """Mean over seeds against x with a band: its 95% interval (clipped to the metric's range) where a
    point has at least MIN_SEEDS_FOR_CI seeds, the seeds' range (min to max) where it has fewer."""
    s, low, high = seed_band(df[df["model"] == model], x, value)
    c = style.pop("color", color(model))
    (line,) = ax.plot(s[x], s["mean"], marker="o", label=style.pop("label", label(model)), color=c, **style)
    ax.fill_between(s[x], low, high, alpha=0.2, color=line.get_color(), linewidth=0)
    return line
