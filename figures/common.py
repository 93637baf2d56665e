"""Shared plotting helpers: mean and 95% interval across seeds, one colour and label per model.

Labels and colours come from experiments.variants and intervals from experiments.stats, neither of
which loads the training stack.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.stats import seed_summary  # noqa: E402
from experiments.variants import color, label  # noqa: E402

__all__ = ["plt", "seed_summary", "line_with_band", "label", "color"]


def line_with_band(ax, df: pd.DataFrame, x: str, value: str, model: str, **style):
    """Mean over seeds against x with its 95% interval (clipped to the metric's range) as a band."""
    s = seed_summary(df[df["model"] == model], [x], value).sort_values(x)
    c = style.pop("color", color(model))
    (line,) = ax.plot(s[x], s["mean"], marker="o", label=style.pop("label", label(model)), color=c, **style)
    ax.fill_between(s[x], s["low"].fillna(s["mean"]), s["high"].fillna(s["mean"]), alpha=0.2, color=line.get_color())
    return line
