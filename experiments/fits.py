"""Scaling-law fits as data: metric(x) = a x^-alpha + c per model, read from stored records.

`FITS` says which (experiment, x, metric) to fit and which config fields name a curve; every
seed's record is one point (the bootstrap's residuals carry the seed-to-seed noise). An experiment
with no records is skipped; a curve that cannot be fitted (fewer than 3 distinct x, or 4 points) is
kept as a row with NaN estimates and the reason in `message`, so the table says what is missing.
The asymptote c is confined to the metric's range (experiments.stats.metric_range: KL >= 0,
Success@1 in [0, 1]); a c on an end of it is flagged in `at_bound`.
`write_fits(out)` writes the table to `<out>/fits.csv` (the `grdr fit` command), replacing only the
rows of the experiments it fitted: the other experiments' rows stay.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import store
from experiments.stats import metric_range
from theory import fit_power_law

__all__ = ["Fit", "FITS", "COLUMNS", "fit_rows", "fit_table", "write_fits", "format_fits"]


@dataclasses.dataclass(frozen=True)
class Fit:
    """One family of fits: `metric` against config field `x`, one curve per value of `by`."""
    experiment: str
    x: str
    metric: str
    by: tuple[str, ...] = ("model",)

    def __post_init__(self):
        if not self.by:
            raise ValueError("Fit.by: expected at least one config field naming a curve")


FITS = (
    Fit("drift_corpus", "n_docs", "Success@1"),
    Fit("drift_corpus", "n_docs", "kl_true"),
    Fit("capacity_dim", "dim", "kl_true", by=("model", "corpus_latent_rank", "corpus_zipf")),
    Fit("model_scale", "params", "kl_true", by=("model", "depth")),
    Fit("model_scale", "params", "Success@1", by=("model", "depth")),
    Fit("negatives", "n_docs", "kl_true", by=("model", "corpus_zipf")),
)

COLUMNS = ["experiment", "model", "x", "metric", "a", "a_low", "a_high", "alpha", "alpha_low", "alpha_high",
           "c", "c_low", "c_high", "r2", "n_points", "converged", "at_bound", "message"]


def _curve_name(fit: Fit, key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    head, rest = str(key[0]), [f"{f}={v}" for f, v in zip(fit.by[1:], key[1:])]
    return head + (f" ({', '.join(rest)})" if rest else "")


def fit_rows(fit: Fit, df: pd.DataFrame, bootstrap: int = 1000, seed: int = 0) -> list[dict]:
    """One row per curve of `fit` in `df` (COLUMNS); the reason in `message` where none could be fitted."""
    missing = [c for c in (fit.x, fit.metric, *fit.by) if c not in df.columns]
    if missing:
        return [{"experiment": fit.experiment, "model": "", "x": fit.x, "metric": fit.metric, "converged": False,
                 "n_points": 0, "message": f"records lack {missing}"}]
    rows = []
    for key, part in df.groupby(list(fit.by), sort=True):
        part = part[np.isfinite(part[fit.x].astype(float)) & np.isfinite(part[fit.metric].astype(float))]
        row = {"experiment": fit.experiment, "model": _curve_name(fit, key), "x": fit.x, "metric": fit.metric,
               "n_points": len(part)}
        try:
            law = fit_power_law(part[fit.x].to_numpy(float), part[fit.metric].to_numpy(float), bootstrap=bootstrap,
                                seed=seed, c_bounds=metric_range(fit.metric))
        except ValueError as e:  # too few points or distinct x: say so in the table
            rows.append({**row, "converged": False, "message": str(e)})
            continue
        rows.append({**row, "a": law.a, "a_low": law.a_ci[0], "a_high": law.a_ci[1], "alpha": law.alpha,
                     "alpha_low": law.alpha_ci[0], "alpha_high": law.alpha_ci[1], "c": law.c, "c_low": law.c_ci[0],
                     "c_high": law.c_ci[1], "r2": law.r2, "n_points": law.n_points, "converged": law.converged,
                     "at_bound": ",".join(law.at_bound), "message": law.message})
    return rows


def fit_table(out, experiments=None, *, fits=FITS, bootstrap: int = 1000, seed: int = 0,
              quarantine: bool = False) -> pd.DataFrame:
    """Fit every law in `fits` whose experiment has records under `out`.

    Args:
      out: the results folder (records at <out>/<experiment>/*.json).
      experiments: experiment names to fit (None: all in `fits`).
      fits: the (experiment, x, metric, by) families.
      bootstrap: residual-bootstrap replicates per fit (95% intervals).
      seed: seed of the bootstrap.
      quarantine: move unreadable record files aside (experiments.store.load) instead of raising.

    Returns:
      One row per curve with COLUMNS; estimates are NaN where the curve could not be fitted.
    """
    wanted = None if experiments is None else {experiments} if isinstance(experiments, str) else set(experiments)
    rows, loaded = [], {}
    for fit in fits:
        if wanted is not None and fit.experiment not in wanted:
            continue
        if fit.experiment not in loaded:
            loaded[fit.experiment] = store.load(out, fit.experiment, missing_ok=True, quarantine=quarantine)
        if loaded[fit.experiment].empty:
            continue  # not run (yet), or not written: nothing to fit
        rows += fit_rows(fit, loaded[fit.experiment], bootstrap, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def write_fits(out, experiments=None, **kwargs) -> Path:
    """Fit the laws of `experiments` (None: every experiment with records) and merge them into
    <out>/fits.csv: the rows of the experiments fitted are replaced, every other row is kept as it
    was. Returns its path. With no records to fit, raise StoreError and leave fits.csv as it is; a
    fits.csv that is not such a table is not overwritten (StoreError naming it)."""
    table = fit_table(out, experiments, **kwargs)
    if table.empty:
        which = "any experiment" if experiments is None else ", ".join(
            [experiments] if isinstance(experiments, str) else experiments)
        raise store.StoreError(f"{out}: no records of {which} to fit; {Path(out) / 'fits.csv'} left as it was")
    path = Path(out) / "fits.csv"
    if path.exists():
        try:
            old = pd.read_csv(path)
        except (ValueError, OSError, UnicodeDecodeError) as err:
            raise store.StoreError(f"{path}: not a table of fits ({' '.join(str(err).split())}); not overwritten: "
                                   "move it aside and fit again") from None
        if list(old.columns) != COLUMNS:
            raise store.StoreError(f"{path}: not a table of fits (its columns are not {', '.join(COLUMNS)}); not "
                                   "overwritten: move it aside and fit again")
        kept = old[~old["experiment"].isin(set(table["experiment"]))]
        table = pd.concat([kept, table], ignore_index=True) if not kept.empty else table
        order = {name: i for i, name in enumerate(dict.fromkeys(f.experiment for f in FITS))}
        table = table.sort_values("experiment", key=lambda e: e.map(order).fillna(len(order)), kind="stable")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def format_fits(table: pd.DataFrame) -> str:
    """The fits as a markdown table: estimate [95% interval] for a, alpha and c, then R^2."""
    def cell(r, name):
        if not np.isfinite(r.get(name, np.nan)):
            return ""
        return f"{r[name]:.3g} [{r[f'{name}_low']:.3g}, {r[f'{name}_high']:.3g}]"

    lines = ["| experiment | model | metric vs x | a | alpha | c | R^2 | n | on a bound | note |", "|---" * 10 + "|"]
    for _, r in table.iterrows():
        r2 = f"{r['r2']:.3f}" if np.isfinite(r["r2"]) else ""
        lines.append(f"| {r['experiment']} | {r['model']} | {r['metric']} vs {r['x']} | {cell(r, 'a')} | "
                     f"{cell(r, 'alpha')} | {cell(r, 'c')} | {r2} | {int(r['n_points'])} | "
                     f"{r['at_bound'] if isinstance(r.get('at_bound'), str) and r['at_bound'] else 'no'} | {r['message']} |")
    return "\n".join(lines)
