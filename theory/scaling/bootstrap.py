"""The bootstrap over groups (seeds): resample counts, and the refits of each resample by projection
(least squares) or by the robust fit."""
from __future__ import annotations

import numpy as np

from grdr.theory.scaling.profile import _BOOT_CHUNK, _fit_robust, _on_c_bound, _Problem, _profile_fit

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
