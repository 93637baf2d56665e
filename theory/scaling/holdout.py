"""The out-of-sample check of a law: fitted without its largest x, the bootstrap interval of its
prediction there against the t interval of the seeds' mean measured there."""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats

from grdr.theory.scaling.fit import fit_power_law

__all__ = ["HoldOutCheck", "holdout_check"]


@dataclasses.dataclass(frozen=True)
class HoldOutCheck:
    """The out-of-sample check of a law: fitted without its largest x, predicted there.

    `predicted_ci` is the percentile interval of the held-in fit's curve at `x` over the bootstrap's
    refits (an interval for the mean metric there); `measured` is the mean over the `units` (seeds, or
    points) at `x` and `measured_ci` its t interval (n - 1 degrees of freedom). `passed`: whether the two
    intervals overlap (None where either is missing)."""
    x: float
    predicted: float
    predicted_ci: tuple[float, float]
    measured: float
    measured_ci: tuple[float, float]
    units: int
    passed: bool | None
    message: str


def _mean_interval(values_N, level):
    """The mean and its t interval (NaNs below 2 values)."""
    n = values_N.shape[0]
    mean = float(np.mean(values_N)) if n else np.nan
    if n < 2:
        return mean, (np.nan, np.nan)
    half = float(scipy.stats.t.ppf((1.0 + level) / 2.0, n - 1) * np.std(values_N, ddof=1) / np.sqrt(n))
    return mean, (mean - half, mean + half)


def holdout_check(x, y, *, groups=None, bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
                  y_range: tuple[float, float] = (-np.inf, np.inf), **fit_kwargs) -> HoldOutCheck:
    """Fit on every x but the largest, predict the largest, and compare with what was measured there.

    The rule: the law passes when the held-in fit's interval for the curve at the largest x (the
    percentile interval over the bootstrap's refits, resampling `groups`) overlaps the t interval of
    the mean measured there (each group averaged first, so a seed counts once). Overlap of two 95%
    intervals is a lenient test (it misses a real gap of up to about the sum of their half-widths),
    chosen because both the extrapolation and the measurement are uncertain and neither is a reference.

    Args:
      x, y: the points of one curve (as fit_power_law); at least 4 distinct x, so that 3 remain.
      groups: the unit resampled and averaged (the seed of each point); None: every point its own.
      bootstrap, seed, level: the held-in fit's bootstrap (0: nothing to compare, passed None).
      y_range: the values the metric can take; the measured interval is clipped to it (Success@1 in [0, 1]).
      **fit_kwargs: fit_power_law's form, bounds, loss, space, huber_delta.

    Returns:
      HoldOutCheck(x, predicted, predicted_ci, measured, measured_ci, units, passed, message).

    >>> import numpy as np
    >>> x = np.repeat([1e2, 1e3, 1e4, 1e5], 3)
    >>> y = 2.0 * x ** -0.5 + 0.1 + np.tile([-0.01, 0.0, 0.01], 4)
    >>> check = holdout_check(x, y, groups=np.tile([0, 1, 2], 4), bootstrap=200)
    >>> check.x, round(check.predicted, 4), check.passed
    (100000.0, 0.1063, True)
    """
    x_n = np.asarray(x, dtype=np.float64)
    y_n = np.asarray(y, dtype=np.float64)
    if x_n.ndim != 1 or x_n.shape != y_n.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x_n.shape} and {y_n.shape}")
    groups_n = np.arange(x_n.shape[0]) if groups is None else np.asarray(groups)
    if groups_n.shape != x_n.shape:
        raise ValueError(f"groups must name one group per point, got shape {groups_n.shape} for {x_n.shape[0]} points")
    distinct = np.unique(x_n)
    if distinct.shape[0] < 4:
        raise ValueError(f"the out-of-sample check needs at least 4 distinct x (3 to fit, the largest held out), "
                         f"got {distinct.shape[0]}: {', '.join(f'{v:g}' for v in distinct)}")
    x_out = float(distinct[-1])
    held = x_n < x_out
    fit = fit_power_law(x_n[held], y_n[held], groups=groups_n[held], bootstrap=bootstrap, seed=seed, level=level,
                        profile=False, **fit_kwargs)
    at_x = ~held
    labels, inverse = np.unique(groups_n[at_x], return_inverse=True)
    unit_means = np.bincount(inverse, weights=y_n[at_x]) / np.bincount(inverse)
    measured, measured_ci = _mean_interval(unit_means, level)
    measured_ci = tuple(float(np.clip(end, *y_range)) for end in measured_ci)
    predicted, predicted_ci = float(fit.predict(x_out)), fit.curve_interval(x_out, level)
    notes = [] if fit.converged else [f"held-in fit: {fit.message}"]
    if not np.all(np.isfinite(predicted_ci)):
        notes.insert(0, "no interval for the prediction (no bootstrap)")
    if not np.all(np.isfinite(measured_ci)):
        notes.insert(0, f"{labels.shape[0]} unit at x = {x_out:g}: no interval for the measurement")
    passed = None
    if np.all(np.isfinite(predicted_ci)) and np.all(np.isfinite(measured_ci)):
        passed = bool(predicted_ci[0] <= measured_ci[1] and measured_ci[0] <= predicted_ci[1])
    return HoldOutCheck(x=x_out, predicted=predicted, predicted_ci=predicted_ci, measured=measured,
                        measured_ci=measured_ci, units=int(labels.shape[0]), passed=passed,
                        message="; ".join(notes) or "ok")
