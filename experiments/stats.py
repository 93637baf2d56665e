"""Statistics for verdicts, tables and figures: seed summaries and the verdict rule (docs/design.md,
"Ceilings and verdicts"). Plain numpy/scipy/pandas: figures import it without the training stack.

The verdict rule. A claim predicts the sign of an effect: a paired difference, or the slope of a
paired gap against log10 of a swept size. Each seed gives one effect (the gap of two models on
that seed's corpus, or the least-squares slope of that gap over every swept size), and the verdict
reads the 95% t-interval of the seeds' effects:
- held: the interval lies above 0;
- did not hold: it lies below 0, or inside (-negligible, +negligible), i.e. it excludes every
  effect as large as the smallest one the claim cares about;
- inconclusive: otherwise; it states its minimum detectable effect (80% power at this many seeds)
  and how many seeds would resolve the estimate seen;
- not testable here: the comparison sits where it cannot show (a level near the floor at the
  smallest size, or runs that had not converged); it says why.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CONVERGED_SHARE", "converged", "Verdict", "effect_verdict", "paired_verdict", "slope_effects", "seed_summary", "metric_range",
           "one_config_per_cell", "not_testable"]

# A run has converged when the last quarter of its training brought less than this share of the total
# fall of its held-out NLL (H(p*) + KL, on average): its learning curve has flattened.
CONVERGED_SHARE = 0.05


def converged(last_fall: float, total_fall: float) -> float:
    """1.0 when the last quarter brought less than CONVERGED_SHARE of the held-out NLL's total fall
    (or the NLL did not fall at all), 0.0 otherwise, NaN when not measured."""
    if not (np.isfinite(last_fall) and np.isfinite(total_fall)):
        return float("nan")
    return float(total_fall <= 0 or last_fall <= CONVERGED_SHARE * total_fall)

_RANGES = {"kl_true": (0.0, np.inf), "rowshift_sq_err": (0.0, np.inf), "fixed_point_kl": (0.0, np.inf)}
_UNIT_PREFIXES = ("Success@", "RR@", "nDCG@", "R@", "P@", "AP", "top2_accuracy", "rel_")


def metric_range(name: str) -> tuple[float, float]:
    """The values a metric can take (intervals are clipped to it)."""
    if name in _RANGES:
        return _RANGES[name]
    if name.startswith(_UNIT_PREFIXES):
        return (0.0, 1.0)
    return (-np.inf, np.inf)


@dataclasses.dataclass(frozen=True)
class Verdict:
    word: str  # "held" | "did not hold" | "inconclusive" | "not testable here"
    estimate: float
    low: float
    high: float
    n: int
    mde: float = float("nan")  # minimum detectable effect at 80% power and these seeds
    seeds_needed: int | None = None  # seeds at which the estimate seen would be resolved
    why: str = ""  # for "not testable here" and extra context

    @property
    def decisive(self) -> bool:
        return self.word in ("held", "did not hold")

    def interval(self) -> str:
        if self.n < 2 or not np.isfinite(self.low):
            return f"{self.estimate:+.3f} (no interval: {self.n} seed{'s' if self.n != 1 else ''})"
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    def resolution(self) -> str:
        """For an inconclusive verdict with a spread: its minimum detectable effect and the seeds that
        would resolve the estimate seen, or that none up to _SEEDS_MAX would (an estimate this close
        to 0 needs a regime with a larger effect, not more seeds). Empty otherwise."""
        if self.word != "inconclusive" or not np.isfinite(self.mde):
            return ""
        text = f"minimum detectable effect {self.mde:.3f}"
        if self.seeds_needed:
            return text + f"; about {self.seeds_needed} seeds would resolve {self.estimate:+.3f}"
        return text + (f"; no number of seeds up to {_SEEDS_MAX:,} would resolve {self.estimate:+.3f}: "
                       f"it needs a regime with a larger effect")

    def __str__(self):
        if self.word == "not testable here":
            return f"**{self.word}** ({self.why})"
        text = f"**{self.word}** ({self.interval()}, n = {self.n}"
        if self.resolution():
            text += f"; {self.resolution()}"
        if self.why:
            text += f"; {self.why}"
        return text + ")"


def _power_t(n: int) -> float:
    """(t_0.975 + t_0.80) at n - 1 degrees of freedom: an effect of this many standard errors is
    detected with 80% power by a two-sided 5% test."""
    return float(stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.80, n - 1))


_SEEDS_MAX = 1000  # seeds beyond which an estimate counts as unresolvable by seeds alone


def _seeds_to_resolve(mean: float, sd: float, n_max: int = _SEEDS_MAX) -> int | None:
    if not (np.isfinite(mean) and np.isfinite(sd)) or mean == 0 or sd == 0:
        return None
    for n in range(3, n_max + 1):
        if _power_t(n) * sd / math.sqrt(n) <= abs(mean):
            return n
    return None


def effect_verdict(effects, negligible: float = 0.0) -> Verdict:
    """The verdict on 'effect > 0' from one effect per seed (see the module docstring)."""
    d = np.asarray(effects, float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        mean = float(d.mean()) if n else float("nan")
        return Verdict("inconclusive", mean, float("nan"), float("nan"), n, why="fewer than 2 seeds")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if lo > 0:
        word = "held"
    elif hi < 0 or (negligible > 0 and -negligible < lo and hi < negligible):
        word = "did not hold"
    else:
        word = "inconclusive"
    mde = _power_t(n) * sd / math.sqrt(n)
    return Verdict(word, mean, lo, hi, n, mde, _seeds_to_resolve(mean, sd) if word == "inconclusive" else None)


def paired_verdict(differences, negligible: float = 0.0) -> Verdict:
    """'difference > 0' from per-seed paired differences."""
    return effect_verdict(differences, negligible)


def not_testable(why: str, n: int = 0) -> Verdict:
    return Verdict("not testable here", float("nan"), float("nan"), float("nan"), n, why=why)


def slope_effects(gap: pd.DataFrame, x: str) -> pd.Series:
    """Per seed, the least-squares slope of a gap against log10(x). gap: columns seed, x, 'gap'."""
    def slope(g):
        g = g.dropna()
        if g[x].nunique() < 2:
            return np.nan
        return float(np.polyfit(np.log10(g[x].to_numpy(float)), g["gap"].to_numpy(float), 1)[0])

    return gap.groupby("seed")[[x, "gap"]].apply(slope)


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
