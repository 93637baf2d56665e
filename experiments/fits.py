"""Scaling-law fits as data: metric(x) = a x^-alpha + c per model, read from stored records.

`FITS` (experiments.registry) says which (experiment, x, metric) to fit and which config fields name a curve; every
seed's record is one point. A Fit with `pairs` fits the paired gap instead (`paired_gaps`: per seed and x,
the metric of a model minus that of its reference, e.g. drift_corpus's sampled minus full softmax, tower
and table), one point per seed and x, with the same intervals and check; its metric is "<metric>_gap". A curve is fitted only where the design allows it: at least 4 distinct x
(3 to fit and the largest held out for the out-of-sample check); below that it is kept as a row with
no numbers and the distinct x found in `message`, so the table says what is missing. An experiment
with no records is skipped.

Each row has three readings of uncertainty, each with its own columns:
- profile-likelihood intervals (`a_low`, ...; least squares on y only), which treat every point as
  independent noise;
- a bootstrap over seeds (`a_boot_low`, ...): the seeds are resampled with replacement, each bringing
  its whole curve (one corpus), and refitted (`boot_resamples` draws, `boot_converged` refits with no
  parameter on a bound; expanded percentile intervals, theory.scaling). Records without a seed column
  resample points instead (`boot_over` = "point", said in `message`);
- the out-of-sample check (`oos_*`): the law fitted without the largest x predicts it (interval from
  the held-in fit's bootstrap over seeds), the mean over seeds measured there has its t interval, and
  `oos_pass` is True when the two intervals overlap (False when they do not, NaN where not checkable;
  the reason in `oos_note`).
The asymptote c is confined to the metric's range (experiments.verdict.seeds.metric_range: KL >= 0,
Success@1 in [0, 1]); a c on an end of it is flagged in `at_bound`. `loss` and `space` record how
it was fitted: least squares on y (the default), or Huber's loss on log y (`grdr fit --loss huber`),
for outlying seeds or noise that grows with the metric.
`write_fits(out)` writes the table to `<out>/fits.csv` (the `grdr fit` command), replacing only the
rows of the experiments it fitted: the other experiments' rows stay.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from grdr.experiments.registry import FITS, Fit
from grdr.experiments.sweep import store
from grdr.experiments.verdict.seeds import metric_range
from grdr.theory.scaling import LOSSES, fit_power_law, holdout_check

__all__ = ["Fit", "FITS", "COLUMNS", "MIN_DISTINCT_X", "SPACE_OF_LOSS", "fit_rows", "paired_gaps", "fit_table",
           "write_fits",
           "format_fits", "oos_summary"]

MIN_DISTINCT_X = 4  # 3 distinct x fit a 3-parameter law; the out-of-sample check holds out the largest
SPACE_OF_LOSS = {"squared": "linear", "huber": "log"}  # where each loss fits unless told


COLUMNS = ["experiment", "model", "x", "metric", "loss", "space",
           "a", "a_low", "a_high", "a_boot_low", "a_boot_high",
           "alpha", "alpha_low", "alpha_high", "alpha_boot_low", "alpha_boot_high",
           "c", "c_low", "c_high", "c_boot_low", "c_boot_high",
           "r2", "n_points", "n_x", "converged", "at_bound", "boot_over", "boot_units", "boot_resamples",
           "boot_converged", "oos_x", "oos_pred", "oos_pred_low", "oos_pred_high", "oos_measured", "oos_measured_low",
           "oos_measured_high", "oos_units", "oos_pass", "oos_note", "message"]
# fits.csv as written before the bootstrap over seeds and the out-of-sample check: its rows are kept on a merge.
_EARLIER_COLUMNS = ["experiment", "model", "x", "metric", "a", "a_low", "a_high", "alpha", "alpha_low", "alpha_high",
                    "c", "c_low", "c_high", "r2", "n_points", "converged", "at_bound", "message"]


def _curve_name(fit: Fit, key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    head, rest = str(key[0]), [f"{f}={v}" for f, v in zip(fit.by[1:], key[1:])]
    return head + (f" ({', '.join(rest)})" if rest else "")


def _seed_groups(part: pd.DataFrame):
    """The seed of each point, or None where the records carry no usable seed column."""
    if "seed" not in part.columns:
        return None
    seeds = part["seed"]
    return None if seeds.isna().any() else seeds.to_numpy()


def fit_rows(fit: Fit, df: pd.DataFrame, bootstrap: int = 1000, seed: int = 0, *, loss: str = "squared",
             space: str | None = None) -> list[dict]:
    """One row per curve of `fit` in `df` (COLUMNS); the reason in `message` where none could be fitted.

    bootstrap: resamples of the bootstrap over seeds (0: no intervals and no out-of-sample check);
    seed: its draws; loss, space: theory.fit_power_law's (space None: SPACE_OF_LOSS[loss])."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    space = SPACE_OF_LOSS[loss] if space is None else space
    metric = fit.fitted_metric
    missing = [c for c in (fit.x, fit.metric, *fit.by, *(("seed",) if fit.pairs else ())) if c not in df.columns]
    if missing:
        return [{"experiment": fit.experiment, "model": "", "x": fit.x, "metric": metric, "loss": loss,
                 "space": space, "converged": False, "n_points": 0, "message": f"records lack {missing}"}]
    if fit.pairs:
        df = paired_gaps(fit, df)
    rows = []
    for key, part in df.groupby(list(fit.by), sort=True):
        part = part[np.isfinite(part[fit.x].astype(float)) & np.isfinite(part[metric].astype(float))]
        x_n, y_n = part[fit.x].to_numpy(float), part[metric].to_numpy(float)
        distinct = np.unique(x_n)
        row = {"experiment": fit.experiment, "model": _curve_name(fit, key), "x": fit.x, "metric": metric,
               "loss": loss, "space": space, "n_points": len(part), "n_x": len(distinct), "converged": False}
        if len(distinct) < MIN_DISTINCT_X:
            found = ", ".join(f"{v:g}" for v in distinct) or "none"
            rows.append({**row, "message": f"not fitted: needs at least {MIN_DISTINCT_X} distinct x (3 to fit, the "
                                           f"largest held out); {fit.x} takes {len(distinct)}: {found}"})
            continue
        groups, notes = _seed_groups(part), []
        if groups is None:
            groups = np.arange(len(part))
            notes.append("no seed column: the bootstrap resamples points")
        options = dict(bootstrap=bootstrap, seed=seed, c_bounds=metric_range(metric), loss=loss, space=space)
        try:
            law = fit_power_law(x_n, y_n, groups=groups, **options)
            check = holdout_check(x_n, y_n, groups=groups, y_range=metric_range(metric), **options)
        except ValueError as e:  # e.g. a metric <= 0 in log space: say so in the table
            rows.append({**row, "message": str(e)})
            continue
        rows.append({**row, "a": law.a, "a_low": law.a_ci[0], "a_high": law.a_ci[1], "a_boot_low": law.a_boot_ci[0],
                     "a_boot_high": law.a_boot_ci[1], "alpha": law.alpha, "alpha_low": law.alpha_ci[0],
                     "alpha_high": law.alpha_ci[1], "alpha_boot_low": law.alpha_boot_ci[0],
                     "alpha_boot_high": law.alpha_boot_ci[1], "c": law.c, "c_low": law.c_ci[0], "c_high": law.c_ci[1],
                     "c_boot_low": law.c_boot_ci[0], "c_boot_high": law.c_boot_ci[1], "r2": law.r2,
                     "n_points": law.n_points, "converged": law.converged, "at_bound": ",".join(law.at_bound),
                     "boot_over": "point" if notes else "seed", "boot_units": law.boot_groups,
                     "boot_resamples": law.boot_resamples, "boot_converged": law.boot_converged,
                     "oos_x": check.x, "oos_pred": check.predicted, "oos_pred_low": check.predicted_ci[0],
                     "oos_pred_high": check.predicted_ci[1], "oos_measured": check.measured,
                     "oos_measured_low": check.measured_ci[0], "oos_measured_high": check.measured_ci[1],
                     "oos_units": check.units, "oos_pass": np.nan if check.passed is None else check.passed,
                     "oos_note": check.message, "message": "; ".join([law.message] + notes)})
    return rows


def paired_gaps(fit: Fit, df: pd.DataFrame) -> pd.DataFrame:
    """The records of `fit.pairs` as paired gaps: per (model, reference) pair, seed, x and the other `by`
    fields, metric(model) - metric(reference) (each side averaged over its records there), in a column
    named `fit.fitted_metric`, with `model` = "model - reference". A pair with either model absent has no
    rows; a seed or x run by one side only is left out (no pair)."""
    keys = [fit.x, "seed", *fit.by[1:]]
    parts = []
    for local, ref in fit.pairs:
        a = df[df["model"] == local].groupby(keys)[fit.metric].mean()
        b = df[df["model"] == ref].groupby(keys)[fit.metric].mean()
        gap = (a - b).dropna()
        if not gap.empty:
            parts.append(gap.rename(fit.fitted_metric).reset_index().assign(model=f"{local} - {ref}"))
    if not parts:
        return pd.DataFrame(columns=[*keys, fit.fitted_metric, "model"])
    return pd.concat(parts, ignore_index=True)


def fit_table(out, experiments=None, *, fits=FITS, bootstrap: int = 1000, seed: int = 0, loss: str = "squared",
              space: str | None = None, quarantine: bool = False) -> pd.DataFrame:
    """Fit every law in `fits` whose experiment has records under `out`.

    Args:
      out: the results folder (records at <out>/<experiment>/*.json).
      experiments: experiment names to fit (None: all in `fits`).
      fits: the (experiment, x, metric, by) families.
      bootstrap: resamples of the bootstrap over seeds per fit (95% intervals; 0: none, and no
        out-of-sample check).
      seed: seed of the bootstrap.
      loss, space: how each law is fitted (fit_rows).
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
        rows += fit_rows(fit, loaded[fit.experiment], bootstrap, seed, loss=loss, space=space)
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
        if list(old.columns) == _EARLIER_COLUMNS:  # written before the bootstrap and the check: keep its rows
            old = old.reindex(columns=COLUMNS)
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


def _oos_cell(r) -> str:
    passed = r.get("oos_pass")
    if isinstance(passed, str):  # read back from fits.csv
        passed = {"True": True, "False": False}.get(passed)
    if passed is None or (isinstance(passed, float) and np.isnan(passed)):
        note = r.get("oos_note")
        return "not checked" + (f": {note}" if isinstance(note, str) and note else "")
    note = r.get("oos_note")
    flagged = " (the held-in fit is flagged: see oos_note)" if isinstance(note, str) and "held-in fit" in note else ""
    return (f"{'pass' if bool(passed) else 'FAIL'} at {r['oos_x']:g}: predicted {r['oos_pred']:.3g} "
            f"[{r['oos_pred_low']:.3g}, {r['oos_pred_high']:.3g}], measured {r['oos_measured']:.3g} "
            f"[{r['oos_measured_low']:.3g}, {r['oos_measured_high']:.3g}]{flagged}")


def format_fits(table: pd.DataFrame) -> str:
    """The fits as a markdown table: for a, alpha and c the estimate, its profile interval and its
    bootstrap-over-seeds interval ("boot"); R^2; and the out-of-sample check at the largest x (pass when
    the prediction's interval overlaps the measured one)."""
    def cell(r, name):
        if not np.isfinite(r.get(name, np.nan)):
            return ""
        parts = [f"{r[name]:.3g}"]
        if np.isfinite(r.get(f"{name}_low", np.nan)):
            parts.append(f"[{r[f'{name}_low']:.3g}, {r[f'{name}_high']:.3g}]")
        if np.isfinite(r.get(f"{name}_boot_low", np.nan)):
            parts.append(f"boot [{r[f'{name}_boot_low']:.3g}, {r[f'{name}_boot_high']:.3g}]")
        return " ".join(parts)

    lines = ["| experiment | model | metric vs x | loss | a | alpha | c | R^2 | n | on a bound | out of sample | note |",
             "|---" * 12 + "|"]
    for _, r in table.iterrows():
        r2 = f"{r['r2']:.3f}" if np.isfinite(r["r2"]) else ""
        loss = r.get("loss")
        loss = f"{loss} ({r['space']})" if isinstance(loss, str) and loss else ""
        fitted = np.isfinite(r.get("alpha", np.nan))
        bound = (r["at_bound"] if isinstance(r.get("at_bound"), str) and r["at_bound"] else "no") if fitted else ""
        lines.append(f"| {r['experiment']} | {r['model']} | {r['metric']} vs {r['x']} | {loss} | {cell(r, 'a')} | "
                     f"{cell(r, 'alpha')} | {cell(r, 'c')} | {r2} | {int(r['n_points'])} | {bound} | "
                     f"{_oos_cell(r) if fitted else ''} | {r['message']} |")
    return "\n".join(lines)


def oos_summary(table: pd.DataFrame) -> str:
    """One line: how many laws passed, failed and could not be checked out of sample, naming the failures."""
    passed = table.get("oos_pass", pd.Series(np.nan, index=table.index)).map(
        lambda v: {"True": True, "False": False}.get(v, v) if isinstance(v, str) else v)
    fitted = np.isfinite(table["alpha"].astype(float))
    ok, failed = fitted & (passed == True), fitted & (passed == False)  # noqa: E712 (NaN is neither)
    names = [f"{r['experiment']} {r['model']} {r['metric']}" for _, r in table[failed].iterrows()]
    return (f"out of sample (each law fitted without its largest x): {int(ok.sum())} pass, {int(failed.sum())} fail"
            + (f" ({'; '.join(names)})" if names else "") + f", {int((fitted & ~(ok | failed)).sum())} not checked, "
            f"{int((~fitted).sum())} not fitted")
