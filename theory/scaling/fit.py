"""fit_power_law: a law's estimate, profile intervals and bootstrap over seeds (see the package docstring)."""
from __future__ import annotations

import numpy as np
import scipy.stats

from grdr.theory.scaling.profile import _expanded_level, _FEW_GROUPS, _fit_given_alpha, _fit_robust, _FORMS, HUBER_DELTA, LOSSES, _MIN_GROUPS, _minimise_over_alpha, _on_c_bound, _percentile_interval, PowerLawFit, _Problem, _profile_fit, _profile_interval, SPACES, _sse_of_shift, _starts, _wald_standard_errors
from grdr.theory.scaling.bootstrap import _bootstrap_projection, _bootstrap_robust, _resample_counts

__all__ = ["fit_power_law"]


def fit_power_law(x, y, *, form: str = "a*x^-alpha+c", bootstrap: int = 1000, seed: int = 0,
                  level: float = 0.95, alpha_bounds: tuple[float, float] = (0.0, 8.0),
                  c_bounds: tuple[float, float] = (-np.inf, np.inf), groups=None, loss: str = "squared",
                  space: str = "linear", huber_delta: float = HUBER_DELTA, profile: bool = True) -> PowerLawFit:
    """Fit y = a x^-alpha + c (or c = 0), with profile-likelihood intervals and a bootstrap over groups.

    Args:
      x: positive abscissae (corpus size, dimension, parameter count), at least 3 distinct values.
      y: the metric at each x (same length); noise is assumed additive in `space` (Gaussian for the
        profile intervals' level).
      form: "a*x^-alpha+c" (3 parameters, n >= 4) or "a*x^-alpha" (c = 0, n >= 3).
      bootstrap: resamples of the bootstrap over `groups`; 0 skips every interval (the profile
        intervals collapse onto the estimate, the bootstrap's are NaN: for callers that need only the
        curve). The profile intervals need no resampling.
      seed: seed of the bootstrap's draws.
      level: two-sided confidence level of the intervals.
      alpha_bounds: search interval for alpha; a fit on either bound is flagged converged=False.
      c_bounds: the range the asymptote c may take, that of the metric (KL: (0, inf); Success@1:
        (0, 1)); least squares within it (for fixed alpha the constrained c is the unconstrained one
        clipped), and a fit whose c sits on a finite end is flagged (at_bound "c", converged=False):
        the data put the asymptote at or beyond the metric's range.
      groups: one label per point naming the unit that is resampled (the seed whose corpus gave the
        point: a seed brings its whole curve). None: no bootstrap (np.arange(len(x)) resamples points).
      loss: "squared" (least squares) or "huber" (Huber's loss at huber_delta robust standard
        deviations of the residuals: quadratic near the curve, linear beyond, so a few outlying
        points pull the fit less).
      space: "linear" (residuals y - f) or "log" (log y - log f, y > 0: noise that grows with y,
        multiplicative noise, weighs every point alike).
      huber_delta: Huber's threshold in robust standard deviations (1.4826 median |residual|).
      profile: False skips the profile intervals (NaN; they cost most of a fit's time).

    Returns:
      PowerLawFit with the estimate, the profile intervals (least squares on y only; NaN otherwise),
      the bootstrap intervals (NaN without groups), the bootstrap's replicates, the flags and message.

    Reference: docs/design.md, section 1 (model-size effect); Golub & Pereyra 1973 (variable projection);
    Bates & Watts 1988, sec. 6.1 (profile-t / F intervals for nonlinear least squares); Davison & Hinkley
    1997, sec. 3.8 (resampling clusters); Huber 1981 (the loss).

    >>> import numpy as np
    >>> x = np.array([1e2, 3e2, 1e3, 3e3, 1e4, 3e4])
    >>> f = fit_power_law(x, 5.0 * x ** -0.5 + 0.1, bootstrap=0)
    >>> round(f.a, 6), round(f.alpha, 6), round(f.c, 6), f.converged, f.at_bound
    (5.0, 0.5, 0.1, True, ())
    """
    if form not in _FORMS:
        raise ValueError(f"form must be one of {sorted(_FORMS)}, got {form!r}")
    if loss not in LOSSES or space not in SPACES:
        raise ValueError(f"loss must be one of {LOSSES} and space one of {SPACES}, got {loss!r}, {space!r}")
    x_n = np.asarray(x, dtype=np.float64)
    y_n = np.asarray(y, dtype=np.float64)
    num_params = _FORMS[form]
    if x_n.ndim != 1 or x_n.shape != y_n.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x_n.shape} and {y_n.shape}")
    if not (np.all(np.isfinite(x_n)) and np.all(np.isfinite(y_n))):
        raise ValueError("x and y must be finite")
    if np.any(x_n <= 0):
        raise ValueError("x must be strictly positive")
    if space == "log" and np.any(y_n <= 0):
        raise ValueError(f"space='log' needs y > 0, got min(y) = {np.min(y_n):g}")
    num_distinct = np.unique(x_n).shape[0]
    if x_n.shape[0] < num_params + 1 or num_distinct < 3:
        raise ValueError(f"form {form!r} needs at least {num_params + 1} points and 3 distinct x, "
                         f"got {x_n.shape[0]} point{'s' * (x_n.shape[0] != 1)} and {num_distinct} distinct x")
    lo, hi = float(alpha_bounds[0]), float(alpha_bounds[1])
    if not 0.0 <= lo < hi:
        raise ValueError(f"alpha_bounds must satisfy 0 <= low < high, got {alpha_bounds}")
    c_lo, c_hi = float(c_bounds[0]), float(c_bounds[1])
    if not c_lo < c_hi:
        raise ValueError(f"c_bounds must satisfy low < high, got {c_bounds}")
    c_bounds = (c_lo, c_hi)
    if int(bootstrap) < 0 or not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap must be >= 0 and level in (0, 1), got {bootstrap}, {level}")
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
    if groups is not None:
        groups_n = np.asarray(groups)
        if groups_n.shape != x_n.shape:
            raise ValueError(f"groups must name one group per point, got shape {groups_n.shape} for {x_n.shape[0]} "
                             "points")
    with_c = num_params == 3
    log_x_n = np.log(x_n)
    log_x_ref = float(np.mean(log_x_n))
    log_u_n = log_x_n - log_x_ref

    a_s, alpha, c, sse, on_bound = (v[0] for v in _profile_fit(log_u_n, y_n[None, :], (lo, hi), with_c, c_bounds))
    projection = loss == "squared" and space == "linear"
    problem = None
    if not projection:
        problem = _Problem(log_u_n, y_n, with_c, space, (lo, hi), c_bounds)
        vp_p = np.array([a_s, alpha] + ([c] if with_c else []))
        p, active = _fit_robust(problem, loss, float(huber_delta), _starts(problem, vp_p, (lo, hi), c_bounds))
        a_s, alpha, c = p[0], p[1], (p[2] if with_c else 0.0)
        sse = float(np.sum(np.square(y_n - a_s * np.exp(-alpha * log_u_n) - c)))
        on_bound = bool(active[1]) or min(alpha - lo, hi - alpha) < 1e-6 * (hi - lo)
    sst = float(np.sum(np.square(y_n - (y_n.mean() if with_c else 0.0))))
    messages = []
    if sst == 0.0:
        messages.append("y is constant: alpha is not identified")
    at_bound = ("alpha",) if on_bound else ()
    if on_bound:
        messages.append(f"alpha is on its bound {alpha_bounds}: no power-law curvature resolved")
    c_end = _on_c_bound(c, c_bounds, with_c)
    if c_end is not None:
        at_bound += ("c",)
        messages.append(f"c is on its bound {c_end:g}: the unconstrained asymptote lies outside the metric's "
                        f"range {c_bounds}")
    r2 = 1.0 - float(sse) / sst if sst > 0 else float("nan")
    converged = not messages
    estimate = np.array([a_s * np.exp(alpha * log_x_ref), alpha, c])
    profiled = projection and bool(profile)
    intervals = [(float(v), float(v)) for v in estimate] if profiled else [(np.nan, np.nan)] * 3

    num_points = y_n.shape[0]
    if profiled and int(bootstrap) > 0 and sse > 1e-24 * max(sst, float(np.sum(np.square(y_n)))):
        dof = num_points - num_params
        threshold = float(sse) * (1.0 + scipy.stats.f.ppf(level, 1, dof) / dof)
        se_3 = _wald_standard_errors(log_u_n, y_n, a_s, alpha, c, log_x_ref, with_c)
        # The scan's unit: the Wald standard error where finite, else a tenth of the natural scale.
        fallback_3 = 0.1 * np.array([max(abs(estimate[0]), np.std(y_n)), hi - lo, max(abs(c), np.std(y_n))])
        scale_3 = np.where(np.isfinite(se_3) & (se_3 > 0), se_3, fallback_3)

        def profile_a(a_T):   # min over alpha (and c) with a fixed, in original units
            def sse_BxG(alpha_BxG):
                curve_BxGxn = a_T[:, None, None] * np.exp(-alpha_BxG[:, :, None] * log_x_n)
                return _sse_of_shift(y_n - curve_BxGxn, with_c, c_bounds)
            return _minimise_over_alpha(sse_BxG, a_T.shape[0], (lo, hi))[1]

        def profile_alpha(alpha_T):
            return _fit_given_alpha(log_u_n, np.broadcast_to(y_n, (alpha_T.shape[0], num_points)), alpha_T, with_c,
                                    c_bounds)[2]

        def profile_c(c_T):   # min over alpha and a with c fixed: the c = 0 fit of y - c
            return _profile_fit(log_u_n, y_n[None, :] - c_T[:, None], (lo, hi), False)[3]

        profiles = [(profile_a, (-np.inf, np.inf)), (profile_alpha, (lo, hi))]
        if with_c:
            profiles.append((profile_c, c_bounds))
        for i, (name, (profile, limits)) in enumerate(zip(("a", "alpha", "c"), profiles)):
            intervals[i], open_ = _profile_interval(profile, estimate[i], scale_3[i], threshold, limits)
            if np.isnan(intervals[i][0]):
                messages.append(f"{name} interval not resolved: its profile does not reach the fit")
            open_sides = [("unbounded " if np.isinf(end) else f"cut at the search bound {end:g} ") + side
                          for side, is_open, end in zip(("below", "above"), open_, intervals[i]) if is_open]
            if open_sides and name not in at_bound:
                messages.append(f"{name} interval {' and '.join(open_sides)}: the data do not bound it there")

    boot = dict(a_boot_ci=(np.nan, np.nan), alpha_boot_ci=(np.nan, np.nan), c_boot_ci=(np.nan, np.nan))
    replicates, boot_converged, num_groups = None, 0, 0
    if groups is not None and int(bootstrap) > 0:
        labels, group_n = np.unique(groups_n, return_inverse=True)
        num_groups = labels.shape[0]
        if num_groups < _MIN_GROUPS:
            messages.append(f"bootstrap skipped: {num_groups} group{'s' * (num_groups != 1)} to resample, "
                            f"{_MIN_GROUPS} needed")
        else:
            counts_BxS = _resample_counts(num_groups, int(bootstrap), np.random.default_rng(seed))
            weights_Bxn = counts_BxS[:, group_n]
            if projection:
                replicates, converged_B = _bootstrap_projection(log_u_n, y_n, weights_Bxn, (lo, hi), with_c, c_bounds,
                                                                log_x_ref)
            else:
                start_p = np.array([a_s, alpha] + ([c] if with_c else []))
                replicates, converged_B = _bootstrap_robust(problem, weights_Bxn, loss, float(huber_delta), start_p,
                                                            (lo, hi), c_bounds, log_x_ref)
            boot_converged = int(converged_B.sum())
            boot_level = _expanded_level(level, num_groups)
            for name, column in zip(("a", "alpha", "c"), replicates.T):
                boot[f"{name}_boot_ci"] = _percentile_interval(column, boot_level)
            if num_groups < _FEW_GROUPS:
                messages.append(f"{num_groups} groups resampled: the bootstrap intervals cover less than {level:g} "
                                f"(simulated: about 0.75 at 3 groups, 0.87-0.9 at 4)")
            fitted = int(np.isfinite(replicates[:, 0]).sum())
            if fitted < int(bootstrap):
                messages.append(f"bootstrap: {int(bootstrap) - fitted} of {int(bootstrap)} resamples drew fewer than "
                                "3 distinct x and were not refitted")
    return PowerLawFit(a=float(estimate[0]), alpha=float(alpha), c=float(c), a_ci=intervals[0],
                       alpha_ci=intervals[1], c_ci=intervals[2], r2=r2, n_points=int(num_points),
                       converged=converged, message="; ".join(messages) or "ok", at_bound=at_bound, form=form,
                       level=float(level), **boot, boot_resamples=int(bootstrap) if replicates is not None else 0,
                       boot_converged=boot_converged, boot_groups=num_groups, loss=loss, space=space,
                       replicates=replicates)
