"""Power-law fits y = a x^-alpha + c: profile-likelihood intervals, a bootstrap over seeds, a robust
fit in log space, and an out-of-sample check.

docs/design.md, section 1, "Model-size effect": metric(x) = a x^(-alpha) + c, x = N, D or parameters.
The least-squares fit is by variable projection (Golub & Pereyra 1973): for fixed alpha, a and c
are linear and solved in closed form, so only alpha is searched (a dense grid on its bounds, then
zooming grids). x is scaled by its geometric mean for conditioning.

Profile intervals (`*_ci`) are profile-likelihood intervals calibrated by the F distribution (Bates & Watts 1988,
"Nonlinear Regression Analysis and Its Applications", sec. 6.1; Venzon & Moolgavkar 1988): for
a parameter theta, the set of values whose profile SSE(theta) = min over the other parameters of
the squared error stays below SSE_min (1 + F_{1, n-p}(level) / (n-p)). In a linear model with
Gaussian noise this is the exact t interval with n-p degrees of freedom; here the nonlinearity
enters only through alpha, and a profile interval, unlike a linearised (Wald) one, is unaffected
by how the parameters are curved against each other (parameter-effects curvature), so it keeps
its level at a handful of points. Measured at 5, 6 and 8 points (a = 3, alpha = 0.4, c = 0.2 on
x = 1e2..1e5, a curve spanning 0.45; Gaussian noise sd 0.003 to 0.1; 400-1500 simulated data sets
each): coverage 0.935-0.97 for each of a, alpha and c at nominal 0.95. The residual bootstrap-t it
replaced ranged from 0.79 (a, sd 0.1) to 0.99 (sd 0.03) in the same settings. A profile that never reaches the threshold gives an end on alpha's
search bound or an infinite one for a and c, said in the message (the data do not bound the
parameter there); an exact fit (residuals at rounding level) gets intervals collapsed onto the
estimate. A fit whose alpha sits on a bound, or whose y is constant, is reported with
converged=False and a message; `at_bound` names such parameters.

The profile treats every point as independent noise. The points of one seed are not: each seed
is its own corpus, whose whole curve sits above or below the others (a random effect). The
bootstrap over seeds (`groups`; Davison & Hinkley 1997, sec. 3.8) resamples the seeds with
replacement, each bringing all its points, refits each resample (least squares: weighted variable
projection on the per-x means, batched; other losses: one trust-region refit each) and reads
Hesterberg's expanded percentile interval ("What teachers should know about the bootstrap",
Am. Stat. 2015): quantiles at Phi(sqrt(S/(S-1)) t_{S-1}((1 - level)/2)) and its complement, the
(B+1)p-th order statistics, which undo the percentile interval's narrowness with S seeds.
Measured (5 x from 1e2 to 1e5, a = 30, alpha = 1, c = 0.2, each seed's curve shifted by N(0, 0.05^2),
noise sd 0.005; 1,000 resamples, 300 data sets, Monte Carlo SE 0.013): coverage of a, alpha, c at
nominal 0.95 was 0.94, 0.94, 0.94 at 10 seeds, 0.93, 0.93, 0.95 at 6, 0.87-0.88 at 4 and 0.74-0.75 at 3
(so fewer than 5 groups are flagged in the message, and fewer than 3 are not resampled), where the
profile intervals covered a and alpha always (1.00: the seed shifts inflate their noise estimate)
and c only 0.77 (10 seeds) and 0.66 (3): a shift moves a seed's whole curve, which is c's direction.
With seed effects on a (10%) and c (0.02), noise 0.01 and a slow curve (a = 3, alpha = 0.4): 0.87-0.90
at 4 seeds, 0.92-0.95 at 6 and 0.94-0.95 at 20 (the plain percentile interval: 0.79-0.84 at 4 and
0.83-0.87 at 6; BCa no better), the profile 0.99-1.00. Without a seed column the caller may pass one group per point.

A fit in log space with Huber's loss (`loss="huber", space="log"`) minimises sum rho(r / s) of
r = log y - log(a x^-alpha + c) (Huber 1981; threshold 1.345 s, s = 1.4826 median |r|, re-estimated
once from the fit; scipy's trust-region least squares within the bounds, started from the
least-squares fit and from the best of an alpha grid by absolute residuals). Residuals of log y,
not of log(y - c), keep the transform free of the parameters: log(y - c) needs c below every point
(so one low outlier pins the asymptote) and its least squares runs c to -inf unless a Jacobian term
is added. It helps where noise grows with y (multiplicative) and where a seed is an outlier
(a failed run). Measured (6 x, 5 seeds, a = 3, alpha = 0.4, c = 0.02, 100 data sets): with 10%
multiplicative noise the RMSE of alpha fell from 0.038 (least squares on y) to 0.026 (log space,
squared or Huber) and of c from 0.012 to 0.006; with additive noise sd 0.005 and one seed 3 times too
high at the two largest x, from 0.060 to 0.039 (least squares in log space) and 0.013 (Huber; c: 0.035,
0.022, 0.005). Its intervals are the bootstrap's (profile intervals belong to least squares on y).

`holdout_check` fits all but the largest x and predicts it: the prediction's interval is the
held-in fit's bootstrap interval of the curve there, the measurement the mean over seeds with its t
interval, and the law passes when the two overlap. Measured (5 x, seeds shifted N(0, 0.01^2), noise
sd 0.005, 150-200 data sets): no false fail on data from the law at 3, 5 or 10 seeds; a jump of 0.05
at the largest x (4.5 per-seed SDs) failed 0.83, 0.98 and 1.00 of the time, a jump of 0.02 0.14, 0.31
and 0.78. The stricter rule "the measured interval holds the point prediction" ignores the
extrapolation's error: it failed 0.24 of data sets drawn from the law with independent noise.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.stats

__all__ = ["PowerLawFit", "HoldOutCheck", "fit_power_law", "holdout_check", "LOSSES", "SPACES", "HUBER_DELTA"]

LOSSES = ("squared", "huber")
SPACES = ("linear", "log")
HUBER_DELTA = 1.345   # robust SDs: 95% efficiency under Gaussian noise (Huber 1981)
_MAD_TO_SD = 1.4826   # 1 / Phi^-1(3/4)
_TINY = np.finfo(float).tiny
_START_GRID = 33      # alpha grid of the robust fit's starting points
_BOOT_CHUNK = 256     # resamples refitted per batch (memory: chunk x grid x distinct x)
_MIN_GROUPS = 3       # fewer groups have too few distinct resamples (two groups: three) to give an interval
_FEW_GROUPS = 5       # below this the expanded percentile interval was measured to undercover (module docstring)

_FORMS = {"a*x^-alpha+c": 3, "a*x^-alpha": 2}
_GRID = 241
_ZOOM, _ZOOM_ROUNDS = 17, 6   # bracket / 8 per round: 2 grid steps -> ~1e-7 of the bounds
# Profile scan: offsets from the estimate in Wald standard errors, then bracket refinement.
_SCAN = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0, 50.0,
                  100.0, 300.0, 1e3, 1e4, 1e5])
_REFINE_POINTS, _REFINE_ROUNDS = 15, 2


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """A fitted power law with profile-likelihood intervals (`*_ci`, least squares on y only) and
    bootstrap intervals over groups (`*_boot_ci`, percentile) at `level`; `at_bound` names the
    parameters whose estimate sits on a bound of the search (alpha, or c on the metric's range).
    `replicates` holds the bootstrap's refits (resamples x (a, alpha, c); NaN rows were not refitted)."""
    a: float
    alpha: float
    c: float
    a_ci: tuple[float, float]
    alpha_ci: tuple[float, float]
    c_ci: tuple[float, float]
    r2: float
    n_points: int
    converged: bool
    message: str
    at_bound: tuple[str, ...]
    form: str
    level: float
    a_boot_ci: tuple[float, float] = (np.nan, np.nan)
    alpha_boot_ci: tuple[float, float] = (np.nan, np.nan)
    c_boot_ci: tuple[float, float] = (np.nan, np.nan)
    boot_resamples: int = 0    # resamples drawn (0: no bootstrap)
    boot_converged: int = 0    # refits with no parameter on a bound
    boot_groups: int = 0       # distinct groups resampled (seeds, or points)
    loss: str = "squared"
    space: str = "linear"
    replicates: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)

    def predict(self, x):
        """The fitted curve a x^-alpha + c at x."""
        return self.a * np.asarray(x, np.float64) ** -self.alpha + self.c

    def curve_interval(self, x, level: float | None = None) -> tuple[float, float]:
        """The bootstrap's interval (expanded percentile, as for the parameters) of the fitted curve's
        value at one x: an interval for the mean metric there, not for one new observation; NaNs
        without a bootstrap."""
        if self.replicates is None:
            return (np.nan, np.nan)
        a_B, alpha_B, c_B = self.replicates.T
        level = self.level if level is None else level
        return _percentile_interval(a_B * float(x) ** -alpha_B + c_B, _expanded_level(level, self.boot_groups))


def _linear_fit(phi_xn, y_xn, with_c, c_bounds=(-np.inf, np.inf), w_xn=None):
    """Least-squares (a, c) of y = a phi + c along the last axis (any leading shape), with c confined to
    c_bounds, and the SSE; with weights w_xn (>= 0, broadcastable to y) the weighted least squares. For
    fixed alpha the SSE is a convex quadratic in (a, c); minimised over a, it is a convex quadratic in
    c, so the constrained c is the unconstrained one clipped to its bounds, and a is then refitted to y - c."""
    if w_xn is not None:
        return _weighted_linear_fit(phi_xn, y_xn, with_c, c_bounds, w_xn)
    tiny = np.finfo(float).tiny
    if with_c:
        phi_c = phi_xn - phi_xn.mean(axis=-1, keepdims=True)
        y_c = y_xn - y_xn.mean(axis=-1, keepdims=True)
        a = np.sum(phi_c * y_c, axis=-1) / np.maximum(np.sum(np.square(phi_c), axis=-1), tiny)
        c = y_xn.mean(axis=-1) - a * phi_xn.mean(axis=-1)
        clipped = np.clip(c, c_bounds[0], c_bounds[1])
        moved = clipped != c
        if np.any(moved):
            refit = np.sum(phi_xn * (y_xn - clipped[..., None]), axis=-1) / np.maximum(
                np.sum(np.square(phi_xn), axis=-1), tiny)
            a, c = np.where(moved, refit, a), clipped
    else:
        a = np.sum(phi_xn * y_xn, axis=-1) / np.maximum(np.sum(np.square(phi_xn), axis=-1), tiny)
        c = np.zeros_like(a)
    return a, c, np.sum(np.square(y_xn - a[..., None] * phi_xn - c[..., None]), axis=-1)


def _weighted_linear_fit(phi_xn, y_xn, with_c, c_bounds, w_xn):
    """_linear_fit with weights: the same algebra with weighted means."""
    tiny = np.finfo(float).tiny
    w_xn = np.broadcast_to(w_xn, np.broadcast_shapes(np.shape(w_xn), phi_xn.shape))
    if with_c:
        total = np.maximum(np.sum(w_xn, axis=-1), tiny)
        phi_mean = np.sum(w_xn * phi_xn, axis=-1) / total
        y_mean = np.sum(w_xn * y_xn, axis=-1) / total
        phi_c = phi_xn - phi_mean[..., None]
        a = np.sum(w_xn * phi_c * (y_xn - y_mean[..., None]), axis=-1) / np.maximum(
            np.sum(w_xn * np.square(phi_c), axis=-1), tiny)
        c = y_mean - a * phi_mean
        clipped = np.clip(c, c_bounds[0], c_bounds[1])
        moved = clipped != c
        if np.any(moved):
            refit = np.sum(w_xn * phi_xn * (y_xn - clipped[..., None]), axis=-1) / np.maximum(
                np.sum(w_xn * np.square(phi_xn), axis=-1), tiny)
            a, c = np.where(moved, refit, a), clipped
    else:
        a = np.sum(w_xn * phi_xn * y_xn, axis=-1) / np.maximum(np.sum(w_xn * np.square(phi_xn), axis=-1), tiny)
        c = np.zeros_like(a)
    return a, c, np.sum(w_xn * np.square(y_xn - a[..., None] * phi_xn - c[..., None]), axis=-1)


def _fit_given_alpha(log_u_n, y_Bxn, alpha_B, with_c, c_bounds=(-np.inf, np.inf), w_Bxn=None):
    """Closed-form (a_scaled, c) and SSE at alpha for each row of y."""
    phi_Bxn = np.exp(-alpha_B[:, None] * log_u_n[None, :])
    return _linear_fit(phi_Bxn, y_Bxn, with_c, c_bounds, w_Bxn)


def _sse_of_shift(resid_BxGxn, with_c, c_bounds=(-np.inf, np.inf)):
    """SSE after the best constant within c_bounds (with_c) or none."""
    if with_c:
        shift = np.clip(resid_BxGxn.mean(axis=-1, keepdims=True), c_bounds[0], c_bounds[1])
        resid_BxGxn = resid_BxGxn - shift
    return np.sum(np.square(resid_BxGxn), axis=-1)


def _minimise_over_alpha(sse_BxG, num_rows, bounds, grid_sse=None):
    """min over alpha in bounds of sse_BxG(alpha_BxG) for each of num_rows problems: a global grid,
    then zooming grids on the bracket around the best point (each round narrows it 8-fold; one
    batched call per round). `grid_sse(grid_G)`, if given, evaluates the global grid for every row
    at once (shape num_rows x G). Returns (alpha_B, min_B)."""
    lo, hi = bounds
    grid_G = np.linspace(lo, hi, _GRID)
    values_BxG = grid_sse(grid_G) if grid_sse is not None else sse_BxG(np.broadcast_to(grid_G, (num_rows, _GRID)))
    best_B = np.argmin(values_BxG, axis=1)
    left_B, right_B = grid_G[np.maximum(best_B - 1, 0)], grid_G[np.minimum(best_B + 1, _GRID - 1)]
    rows_B, steps_Z = np.arange(num_rows), np.linspace(0.0, 1.0, _ZOOM)
    for _ in range(_ZOOM_ROUNDS):
        alpha_BxZ = left_B[:, None] + (right_B - left_B)[:, None] * steps_Z
        values_BxZ = sse_BxG(alpha_BxZ)
        best_B = np.argmin(values_BxZ, axis=1)
        left_B = alpha_BxZ[rows_B, np.maximum(best_B - 1, 0)]
        right_B = alpha_BxZ[rows_B, np.minimum(best_B + 1, _ZOOM - 1)]
    return alpha_BxZ[rows_B, best_B], values_BxZ[rows_B, best_B]


def _weighted_grid_sse(log_u_n, y_Bxn, w_Bxn, alpha_G, with_c, c_bounds):
    """The weighted SSE of every row of y at every alpha of a grid shared by the rows, from weighted
    sums (matrix products over the points: the bootstrap's rows share x). Only for locating the
    minimum on the grid: the sums cancel to rounding level near an exact fit, where the zoom that
    follows evaluates the residuals themselves."""
    tiny = np.finfo(float).tiny
    phi_Gxn = np.exp(-alpha_G[:, None] * log_u_n[None, :])
    wy_Bxn = w_Bxn * y_Bxn
    s_w, s_y, s_yy = (np.sum(v, axis=1)[:, None] for v in (w_Bxn, wy_Bxn, wy_Bxn * y_Bxn))
    s_p, s_pp, s_py = w_Bxn @ phi_Gxn.T, w_Bxn @ np.square(phi_Gxn).T, wy_Bxn @ phi_Gxn.T
    if not with_c:
        return s_yy - np.square(s_py) / np.maximum(s_pp, tiny)
    s_w = np.maximum(s_w, tiny)
    var_p = s_pp - np.square(s_p) / s_w
    flat = var_p <= 1e-10 * np.maximum(s_pp, tiny)   # phi constant over the points (alpha = 0): a = 0
    var_p = np.where(flat, 1.0, var_p)
    cov_py = np.where(flat, 0.0, s_py - s_p * s_y / s_w)
    c = (s_y - cov_py / var_p * s_p) / s_w
    sse = s_yy - np.square(s_y) / s_w - np.square(cov_py) / var_p
    clipped = np.clip(c, c_bounds[0], c_bounds[1])
    moved = clipped != c
    if np.any(moved):   # c held on a bound: SSE = sum w (y - c)^2 - (sum w phi (y - c))^2 / sum w phi^2
        held = (s_yy - 2.0 * clipped * s_y + np.square(clipped) * s_w
                - np.square(s_py - clipped * s_p) / np.maximum(s_pp, tiny))
        sse = np.where(moved, held, sse)
    return np.maximum(sse, 0.0)


def _profile_fit(log_u_n, y_Bxn, bounds, with_c, c_bounds=(-np.inf, np.inf), w_Bxn=None):
    """Variable projection for every row of y (weighted by the rows of w_Bxn if given):
    (a_scaled, alpha, c, sse, on_bound), each shape B."""
    w_BxGxn = None if w_Bxn is None else w_Bxn[:, None, :]

    def sse_BxG(alpha_BxG):
        phi_BxGxn = np.exp(-alpha_BxG[:, :, None] * log_u_n)
        return _linear_fit(phi_BxGxn, np.broadcast_to(y_Bxn[:, None, :], phi_BxGxn.shape), with_c, c_bounds,
                           w_BxGxn)[2]

    grid_sse = None if w_Bxn is None else lambda grid_G: _weighted_grid_sse(log_u_n, y_Bxn, w_Bxn, grid_G, with_c,
                                                                           c_bounds)
    alpha_B, _ = _minimise_over_alpha(sse_BxG, y_Bxn.shape[0], bounds, grid_sse)
    a_B, c_B, sse_B = _fit_given_alpha(log_u_n, y_Bxn, alpha_B, with_c, c_bounds, w_Bxn)
    lo, hi = bounds
    # The zoom stays on a bound when the profile is monotone there.
    on_bound_B = np.minimum(alpha_B - lo, hi - alpha_B) < 1e-6 * (hi - lo)
    return a_B, alpha_B, c_B, sse_B, on_bound_B


def _wald_standard_errors(log_u_n, y_n, a_s, alpha, c, log_x_ref, with_c):
    """sigma^2 (J^T J)^-1 in (a_scaled, alpha, c), with a = a_scaled x_ref^alpha by the delta method:
    only the scale of the profile scan, never an interval."""
    phi_n = np.exp(-alpha * log_u_n)
    jac_nxp = np.stack([phi_n, -a_s * log_u_n * phi_n] + ([np.ones_like(phi_n)] if with_c else []), axis=1)
    num_points, num_params = jac_nxp.shape
    sigma2 = np.sum(np.square(y_n - a_s * phi_n - c)) / (num_points - num_params)
    cov_pxp = sigma2 * np.linalg.pinv(jac_nxp.T @ jac_nxp)
    scale = np.exp(alpha * log_x_ref)
    grad_a_p = np.array([scale, a_s * log_x_ref * scale] + ([0.0] if with_c else []))
    var_3 = [grad_a_p @ cov_pxp @ grad_a_p, cov_pxp[1, 1], cov_pxp[2, 2] if with_c else 0.0]
    return np.sqrt(np.maximum(var_3, 0.0))


def _profile_interval(profile_T, estimate, scale, threshold, limits):
    """The connected set around `estimate` where profile(theta) <= threshold: a scan outward in
    multiples of `scale`, bracket refinement, then linear interpolation of the profile in the last
    bracket (both ends in each batched call). An end the scan cannot close is its limit.
    Returns ((low, high), (low_open, high_open)), *_open meaning the profile stayed below threshold;
    (nan, nan) if the profile at the estimate itself exceeds the threshold (an ill-posed fit)."""
    sides = ((-1.0, float(limits[0])), (1.0, float(limits[1])))
    scans = [np.array([estimate])]
    for sign, limit in sides:
        theta_T = estimate + sign * scale * _SCAN
        if np.isfinite(limit):   # stop at the limit, and try the limit itself
            theta_T = np.append(theta_T[sign * (limit - theta_T) > 0], limit)
        scans.append(theta_T)
    values_T = profile_T(np.concatenate(scans))
    if not values_T[0] <= threshold:
        return (float("nan"), float("nan")), (False, False)
    values_T, scans = values_T[1:], scans[1:]
    # A bracket is (side, theta inside, its profile, theta outside, its profile).
    brackets, ends, open_ = [], [None, None], [False, False]
    for i, ((sign, limit), theta_T) in enumerate(zip(sides, scans)):
        side_T, values_T = values_T[:len(theta_T)], values_T[len(theta_T):]
        if not np.any(side_T > threshold):
            ends[i], open_[i] = (limit if np.isfinite(limit) else sign * np.inf), True
            continue
        k = int(np.argmax(side_T > threshold))
        inside = (estimate, -np.inf) if k == 0 else (theta_T[k - 1], side_T[k - 1])
        brackets.append((i, *inside, theta_T[k], side_T[k]))
    fractions_R = np.arange(1, _REFINE_POINTS + 1) / (_REFINE_POINTS + 1)
    for _ in range(_REFINE_ROUNDS if brackets else 0):
        theta_BxR = np.stack([inside + (outside - inside) * fractions_R for _, inside, _, outside, _ in brackets])
        values_BxR = profile_T(theta_BxR.ravel()).reshape(theta_BxR.shape)
        refined = []
        for (i, *ends_), points_R, row_R in zip(brackets, theta_BxR, values_BxR):
            k = int(np.argmax(row_R > threshold)) if np.any(row_R > threshold) else _REFINE_POINTS
            inside = (points_R[k - 1], row_R[k - 1]) if k > 0 else tuple(ends_[:2])
            outside = (points_R[k], row_R[k]) if k < _REFINE_POINTS else tuple(ends_[2:])
            refined.append((i, *inside, *outside))
        brackets = refined
    for i, inside, f_in, outside, f_out in brackets:
        weight = np.clip((threshold - f_in) / (f_out - f_in), 0.0, 1.0) if np.isfinite(f_in) else 0.5
        ends[i] = inside + weight * (outside - inside)
    return (float(ends[0]), float(ends[1])), (open_[0], open_[1])


def _on_c_bound(c, c_bounds, with_c):
    """The finite end of c_bounds that c sits on, else None."""
    return next((end for end in c_bounds if with_c and np.isfinite(end) and abs(c - end) <= 1e-12 * max(1.0, abs(end))),
                None)


def _robust_scale(resid_n):
    """1.4826 median |r|: the residuals' standard deviation under Gaussian noise, unmoved by a few outliers."""
    return max(_MAD_TO_SD * float(np.median(np.abs(resid_n))), 1e-12)


class _Problem:
    """Residuals of y = a_s u^-alpha (+ c) in linear space (y - f) or log space (log y - log f), with
    their Jacobian, for scipy's trust-region least squares (any loss, bounds on alpha and c)."""

    def __init__(self, log_u_n, y_n, with_c, space, bounds, c_bounds):
        self.log_u_n, self.y_n, self.with_c, self.space = log_u_n, y_n, with_c, space
        self.log_y_n = np.log(y_n) if space == "log" else None
        self.lower = np.array([-np.inf, bounds[0]] + ([c_bounds[0]] if with_c else []))
        self.upper = np.array([np.inf, bounds[1]] + ([c_bounds[1]] if with_c else []))

    def curve(self, p):
        phi_n = np.exp(-p[1] * self.log_u_n)
        return phi_n, p[0] * phi_n + (p[2] if self.with_c else 0.0)

    def resid(self, p):
        _, f_n = self.curve(p)
        if self.space == "log":   # a curve at or below 0 cannot be logged: a huge residual, never NaN
            return self.log_y_n - np.log(np.maximum(f_n, _TINY))
        return self.y_n - f_n

    def jac(self, p):
        phi_n, f_n = self.curve(p)
        d_nxp = np.stack([phi_n, -p[0] * self.log_u_n * phi_n] + ([np.ones_like(phi_n)] if self.with_c else []),
                         axis=1)
        return -d_nxp / np.maximum(f_n, _TINY)[:, None] if self.space == "log" else -d_nxp

    def solve(self, p0, loss, scale, delta):
        """One trust-region fit from p0 (clipped into the bounds); Huber's threshold is delta * scale."""
        p0 = np.clip(np.asarray(p0, float), self.lower, self.upper)
        options = dict(loss="huber", f_scale=delta * scale) if loss == "huber" else dict(loss="linear")
        return scipy.optimize.least_squares(self.resid, p0, jac=self.jac, bounds=(self.lower, self.upper),
                                            method="trf", **options)


def _fit_robust(problem, loss, delta, starts):
    """The least-cost fit over `starts`; for Huber the scale is the robust scale of the first start's
    residuals, then re-estimated from the fit's own and the fit polished once. Returns (params, active):
    the trust region keeps iterates strictly inside the bounds, so a parameter it holds at a bound
    (active) is put on it."""
    scale = _robust_scale(problem.resid(starts[0])) if loss == "huber" else 1.0
    best = min((problem.solve(p, loss, scale, delta) for p in starts), key=lambda r: r.cost)
    if loss == "huber":
        best = problem.solve(best.x, loss, _robust_scale(best.fun), delta)
    active = best.active_mask != 0
    params = np.where(best.active_mask < 0, problem.lower, np.where(best.active_mask > 0, problem.upper, best.x))
    return params, active


def _starts(problem, vp_params, bounds, c_bounds):
    """Starting points: the least-squares fit (variable projection on y) and, on a grid of alpha, the
    closed-form least-squares (a, c) whose residuals in the fit's space have the least absolute sum (a
    start that few outliers move)."""
    alpha_G = np.linspace(bounds[0], bounds[1], _START_GRID)
    y_Gxn = np.broadcast_to(problem.y_n, (_START_GRID, problem.y_n.shape[0]))
    a_G, c_G, _ = _fit_given_alpha(problem.log_u_n, y_Gxn, alpha_G, problem.with_c, c_bounds)
    params_Gxp = np.stack([a_G, alpha_G] + ([c_G] if problem.with_c else []), axis=1)
    l1_G = [np.sum(np.abs(problem.resid(p))) for p in params_Gxp]
    return [params_Gxp[int(np.argmin(l1_G))], vp_params]


def _resample_counts(num_groups, resamples, rng):
    """How many times each group is drawn in each resample (num_groups draws with replacement)."""
    draws_BxS = rng.integers(0, num_groups, size=(resamples, num_groups))
    return np.stack([np.bincount(row, minlength=num_groups) for row in draws_BxS]).astype(np.float64)


def _bootstrap_projection(log_u_n, y_n, weights_Bxn, bounds, with_c, c_bounds, log_x_ref):
    """Least-squares refits (variable projection) of every weighted resample, batched. With weights the
    SSE is, up to a constant, the weighted SSE of the per-x weighted means, so each refit runs on the
    distinct x only. Returns (params_Bx3 in original units, NaN where fewer than 3 distinct x were drawn;
    converged_B: no parameter on a bound and y not constant)."""
    log_u_k, inverse_n = np.unique(log_u_n, return_inverse=True)
    onehot_nxk = np.eye(log_u_k.shape[0])[inverse_n]
    params_Bx3 = np.full((weights_Bxn.shape[0], 3), np.nan)
    converged_B = np.zeros(weights_Bxn.shape[0], bool)
    for start in range(0, weights_Bxn.shape[0], _BOOT_CHUNK):
        w_Bxn = weights_Bxn[start:start + _BOOT_CHUNK]
        w_Bxk = w_Bxn @ onehot_nxk
        mean_Bxk = np.divide((w_Bxn * y_n) @ onehot_nxk, w_Bxk, out=np.zeros_like(w_Bxk), where=w_Bxk > 0)
        a_s, alpha, c, _, on_bound = _profile_fit(log_u_k, mean_Bxk, bounds, with_c, c_bounds, w_Bxk)
        centre_B = np.sum(w_Bxk * mean_Bxk, axis=1) / np.sum(w_Bxk, axis=1)
        varies_B = np.sum(w_Bxk * np.square(mean_Bxk - centre_B[:, None] * with_c), axis=1) > 0
        valid_B = np.sum(w_Bxk > 0, axis=1) >= 3
        rows = slice(start, start + w_Bxn.shape[0])
        params_Bx3[rows] = np.where(valid_B[:, None], np.stack([a_s * np.exp(alpha * log_x_ref), alpha, c], 1), np.nan)
        c_free_B = np.array([_on_c_bound(v, c_bounds, with_c) is None for v in c])
        converged_B[rows] = valid_B & varies_B & ~on_bound & c_free_B
    return params_Bx3, converged_B


def _bootstrap_robust(problem, weights_Bxn, loss, delta, estimate_p, bounds, c_bounds, log_x_ref):
    """Refits of every resample by the robust / log-space fit, each from the full data's estimate (the
    Huber scale re-estimated on the resample). Same returns as _bootstrap_projection."""
    params_Bx3 = np.full((weights_Bxn.shape[0], 3), np.nan)
    converged_B = np.zeros(weights_Bxn.shape[0], bool)
    for b, w_n in enumerate(weights_Bxn):
        take_n = np.repeat(np.arange(w_n.shape[0]), w_n.astype(np.int64))
        if np.unique(problem.log_u_n[take_n]).shape[0] < 3:
            continue
        sub = _Problem(problem.log_u_n[take_n], problem.y_n[take_n], problem.with_c, problem.space, bounds, c_bounds)
        p, active = _fit_robust(sub, loss, delta, [estimate_p])
        params_Bx3[b] = (p[0] * np.exp(p[1] * log_x_ref), p[1], p[2] if problem.with_c else 0.0)
        converged_B[b] = not np.any(active[1:]) and np.ptp(sub.y_n) > 0
    return params_Bx3, converged_B


def _percentile_interval(values_B, level):
    values_B = values_B[np.isfinite(values_B)]
    if values_B.shape[0] == 0:
        return (np.nan, np.nan)
    low, high = np.quantile(values_B, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="weibull")
    return (float(low), float(high))


def _expanded_level(level, num_groups):
    """The level whose percentile interval is Hesterberg's expanded percentile interval at `level`:
    tail probability Phi(sqrt(S / (S - 1)) t_{S-1}((1 - level) / 2)) on each side, which undoes the
    bootstrap's narrowness with S groups (its variance is (S - 1) / S of the plug-in one, and t, not
    normal, quantiles)."""
    tail = scipy.stats.norm.cdf(np.sqrt(num_groups / (num_groups - 1)) *
                                scipy.stats.t.ppf((1.0 - level) / 2.0, num_groups - 1))
    return float(1.0 - 2.0 * tail)


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
