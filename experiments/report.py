"""The demo report: one section per theory claim, with the prediction, the measured figure and
table, and a plain verdict decided by a 95% interval (held / did not hold / inconclusive)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments import store
from experiments.runner import EXPERIMENTS, load_experiment

__all__ = ["Verdict", "paired_verdict", "mean_table", "write_report"]


@dataclasses.dataclass(frozen=True)
class Verdict:
    word: str  # "held" | "did not hold" | "inconclusive"
    estimate: float
    low: float
    high: float
    n: int

    def __str__(self):
        return f"**{self.word}** (estimate {self.estimate:+.3f}, 95% interval [{self.low:+.3f}, {self.high:+.3f}], n = {self.n})"


def paired_verdict(differences) -> Verdict:
    """The claim 'difference > 0', judged by a t-interval over paired (per-seed) differences."""
    d = np.asarray(differences, float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n < 2:
        return Verdict("inconclusive", float(d.mean()) if n else float("nan"), float("nan"), float("nan"), n)
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    lo, hi = d.mean() - half, d.mean() + half
    word = "held" if lo > 0 else "did not hold" if hi < 0 else "inconclusive"
    return Verdict(word, float(d.mean()), float(lo), float(hi), n)


def mean_table(df: pd.DataFrame, index: str, columns: str, value: str, fmt: str = "{:.3f}") -> str:
    """A markdown table of mean ± 95% half-width across seeds."""
    from figures.common import seed_summary

    s = seed_summary(df, [index, columns], value)
    cols = sorted(s[columns].unique())
    lines = [f"| {index} | " + " | ".join(str(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for key, rows in s.groupby(index, sort=False):
        cells = []
        for c in cols:
            r = rows[rows[columns] == c]
            if r.empty:
                cells.append("")
            else:
                m, h = r["mean"].iloc[0], r["ci"].iloc[0]
                cells.append(fmt.format(m) + ("" if np.isnan(h) else " ± " + fmt.format(h)))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(out, preset: str = "quick", seconds: float | None = None) -> Path:
    out = Path(out)
    parts = ["# grdr report", ""]
    if seconds is not None:
        parts += [f"Preset `{preset}`; {seconds:.0f} s of wall time for this demo run.", ""]
    for name in EXPERIMENTS:
        module = load_experiment(name)
        df = store.load(out, name)
        if df.empty:
            continue
        parts += [f"## {name}", "", f"Claim: {(module.__doc__ or '').strip().splitlines()[0]}", ""]
        if (out / "figures" / f"{name}.png").exists():
            parts += [f"![{name}](figures/{name}.png)", ""]
        parts += [module.report(df), ""]
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path
