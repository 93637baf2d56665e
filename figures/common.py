"""Shared plotting helpers: mean and 95% interval across seeds, consistent model colours."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from experiments.common import LABELS  # noqa: E402

__all__ = ["plt", "seed_summary", "line_with_band", "LABELS"]

_ORDER = list(LABELS)
_COLORS = dict(zip(_ORDER, plt.get_cmap("tab10").colors))


def seed_summary(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, 95% t-interval half-width and count of `value` across seeds for each group."""

    def agg(x):
        x = x.dropna().to_numpy(float)
        n = len(x)
        half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        return pd.Series({"mean": x.mean() if n else np.nan, "ci": half, "n": n})

    return df.groupby(by)[value].apply(agg).unstack().reset_index()


def line_with_band(ax, df: pd.DataFrame, x: str, value: str, model: str):
    s = seed_summary(df[df["model"] == model], [x], value).sort_values(x)
    color = _COLORS.get(model)
    ax.plot(s[x], s["mean"], marker="o", label=LABELS.get(model, model), color=color)
    ax.fill_between(s[x], s["mean"] - s["ci"].fillna(0), s["mean"] + s["ci"].fillna(0), alpha=0.2, color=color)
