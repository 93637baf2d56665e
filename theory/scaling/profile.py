"""The power law metric = a x^-alpha + c and its fits: least squares with the asymptote in a range,
Huber's loss in log space, and profile-likelihood intervals (see the package docstring)."""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize
import scipy.stats

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
