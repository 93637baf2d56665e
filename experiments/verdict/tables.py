"""Markdown tables of levels: mean ± 95% half-width across seeds, and the corpora's references
against x. They describe levels, not verdicts."""
from __future__ import annotations

import numpy as np
import pandas as pd

from grdr.experiments.verdict.seeds import seed_summary

__all__ = ["mean_table", "CEILINGS", "ceiling_table"]


def mean_table(df: pd.DataFrame, index: str, columns: str, value: str, fmt: str = "{:.3f}") -> str:
    """A markdown table of mean ± 95% half-width across seeds (no interval with one seed)."""
    s = seed_summary(df, [index, columns], value)
    cols = sorted(s[columns].unique())
    lines = [f"| {index} | " + " | ".join(f"{c:,}" if isinstance(c, (int, np.integer)) else str(c) for c in cols)
             + " |", "|---" * (len(cols) + 1) + "|"]
    for key, rows in s.groupby(index, sort=False):
        cells = []
        for c in cols:
            r = rows[rows[columns] == c]
            if r.empty or not np.isfinite(r["mean"].iloc[0]):
                cells.append("")
            else:
                m, h = r["mean"].iloc[0], r["ci"].iloc[0]
                cells.append(fmt.format(m) + ("" if np.isnan(h) else " ± " + fmt.format(h)))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CEILINGS = (("label_accuracy",
             "label accuracy E max p* (Success@1 of p* if relevance were drawn from p*; argmax qrels: 1)"),
            ("eff_docs", "effective documents exp H(p*)"), ("top_gap", "top-1/top-2 log gap (nats)"),
            ("reference_success1", "reference Success@1 from the features (estimate)"),
            ("reference_success1_se", "  its Monte Carlo standard error"),
            ("reference_kl", "reference KL from the features (nats, estimate)"),
            ("reference_kl_se", "  its Monte Carlo standard error (nats)"))


def ceiling_table(df: pd.DataFrame, x: str = "n_docs") -> str:
    """The corpora's ceilings against x (one row per ceiling)."""
    present = [(c, name) for c, name in CEILINGS if c in df]
    if not present:
        return "(no ceilings recorded)"
    one = df.drop_duplicates(["seed", x])
    xs = sorted(one[x].unique())
    lines = ["| ceiling | " + " | ".join(f"{v:,}" for v in xs) + " |", "|---" * (len(xs) + 1) + "|"]
    for column, name in present:
        m = one.groupby(x)[column].mean()
        lines.append(f"| {name} | " + " | ".join(f"{m[v]:.3g}" for v in xs) + " |")
    return "\n".join(lines)
