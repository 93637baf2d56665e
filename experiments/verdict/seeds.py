"""Per-seed readings of stored records, beside the verdict rule (experiments/verdict/stats.py): the
range a metric can take, a gap's slope per seed, where a curve first falls to a level, the mean and
t-interval of a level across seeds (tables and figures describe levels; verdicts read medians), and
which runs of a cell pool across seeds. Plain numpy/scipy/pandas: figures import it without the
training stack."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from grdr.experiments.verdict.stats import median_interval

__all__ = ["metric_range", "slope_effects", "first_below", "crossing", "crossing_summary", "seed_summary",
           "one_config_per_cell"]

_RANGES = {"kl_true": (0.0, np.inf), "rowshift_sq_err": (0.0, np.inf), "fixed_point_kl": (0.0, np.inf)}
_UNIT_PREFIXES = ("Success@", "RR@", "nDCG@", "R@", "P@", "AP", "top2_accuracy")
# ratios: rel_success1 is Success@1 over the reference ESTIMATE (a model may pass it), rel_error_* an
# absolute error over an absolute value; neither is capped at 1
_RATIO_PREFIXES = ("rel_",)


def metric_range(name: str) -> tuple[float, float]:
    """The values a metric can take (intervals are clipped to it; the store refuses a record outside it)."""
    if name in _RANGES:
        return _RANGES[name]
    if name.startswith(_UNIT_PREFIXES):
        return (0.0, 1.0)
    if name.startswith(_RATIO_PREFIXES):
        return (0.0, np.inf)
    return (-np.inf, np.inf)


def slope_effects(gap: pd.DataFrame, x: str) -> pd.Series:
    """Per seed, the least-squares slope of a gap against log10(x). gap: columns seed, x, 'gap'."""
    def slope(g):
        g = g.dropna()
        if g[x].nunique() < 2:
            return np.nan
        return float(np.polyfit(np.log10(g[x].to_numpy(float)), g["gap"].to_numpy(float), 1)[0])

    return gap.groupby("seed")[[x, "gap"]].apply(slope)


def first_below(x, y, level: float) -> float:
    """The first x at which the curve y(x) falls to `level`, interpolated linearly in log x between the
    points around the crossing (x ascending); x[0] if it starts there, NaN if it never does."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    below = np.flatnonzero(y <= level)
    if not below.size:
        return float("nan")
    i = below[0]
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = np.log(x[i - 1]), np.log(x[i]), y[i - 1], y[i]
    return float(np.exp(x0 + (level - y0) * (x1 - x0) / (y1 - y0)))


def crossing(x, y, level) -> tuple[float, str]:
    """(width, mark): where the curve y(x) falls to `level`, interpolated in log width (mark ""); the first
    width with mark "<=" where it is at or below the level from the first width run (the crossing lies at
    or before it: left-censored); the last width with mark ">" where it stays above through the last
    width (right-censored). Never a bare first width for a curve that starts below."""
    from grdr.experiments.verdict.seeds import first_below

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if not x.size:
        return float("nan"), ""
    if y[0] <= level:
        return float(x[0]), "<="
    if not (y <= level).any():
        return float(x[-1]), ">"
    return first_below(x, y, level), ""


def crossing_summary(values, marks) -> str:
    """The median crossing width over the seeds that ran the comparison, with its distribution-free
    interval, censored values kept in their place among the order statistics ("<= 8" sorts below every
    crossing at 8 or more, "> 128" above every one at 128 or less), so a seed that starts below or
    never crosses is neither dropped nor read as a crossing at the first or last width."""
    v = np.asarray(values, float)
    m = np.asarray(marks, object)
    keep = np.isfinite(v)
    v, m = v[keep], m[keep]
    n = v.size
    if not n:
        return "not run"
    order = {"<=": -1, "": 0, ">": 1}
    key = np.log(v) + 1e-6 * np.array([order[str(x)] for x in m])
    idx = np.argsort(key)
    v, m, key = v[idx], m[idx], key[idx]

    def show(i):
        return f"{m[i]} {v[i]:.3g}".strip()

    lo, hi = (n - 1) // 2, n // 2
    median = show(lo) if lo == hi or (show(lo) == show(hi)) else (
        f"{np.exp((np.log(v[lo]) + np.log(v[hi])) / 2):.3g}" if m[lo] == m[hi] == "" else f"{show(lo)} to {show(hi)}")
    counts = {k: int(sum(str(x) == k for x in m)) for k in ("", "<=", ">")}
    text = (f"median {median} over the {n} seeds that ran it ({counts['']} cross between two widths, "
            f"{counts['<=']} are below from the first width, {counts['>']} stay above through the last)")
    if n >= 2:
        low, high, cov = median_interval(key)
        i_low, i_high = int(np.searchsorted(key, low)), int(np.searchsorted(key, high))
        text += f"; interval [{show(i_low)}, {show(i_high)}], coverage {cov:.0%}"
    return text


def seed_summary(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, 95% t-interval (clipped to the metric's range) and count of `value` across seeds per group.

    Columns: by..., mean, low, high, ci (half-width before clipping; NaN with one seed), n.
    """
    lo_range, hi_range = metric_range(value)

    def agg(x):
        x = x.dropna().to_numpy(float)
        n = len(x)
        mean = x.mean() if n else np.nan
        half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        return pd.Series({"mean": mean, "ci": half, "low": max(mean - half, lo_range) if n > 1 else np.nan,
                          "high": min(mean + half, hi_range) if n > 1 else np.nan, "n": n})

    return df.groupby(by)[value].apply(agg).unstack().reset_index()


def one_config_per_cell(df: pd.DataFrame, cell: list[str]) -> tuple[pd.DataFrame, int]:
    """Keep, in every cell (model and swept axes), only the runs of the configuration written last.

    Seeds are pooled only within an identical configuration (`config_id`, the record config without
    its seed): runs of the same cell under other settings (say, an earlier --train.steps) are left
    out. Returns (the kept rows, how many were left out).
    """
    if df.empty or "config_id" not in df:
        return df, 0
    cell = [c for c in cell if c in df]
    newest = df.sort_values("mtime").groupby(cell, dropna=False)["config_id"].transform("last").reindex(df.index)
    keep = df["config_id"] == newest
    return df[keep].copy(), int((~keep).sum())
