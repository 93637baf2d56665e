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

from grdr.theory.scaling.fit import fit_power_law
from grdr.theory.scaling.holdout import HoldOutCheck, holdout_check
from grdr.theory.scaling.profile import HUBER_DELTA, LOSSES, SPACES, PowerLawFit

__all__ = ["PowerLawFit", "HoldOutCheck", "fit_power_law", "holdout_check", "LOSSES", "SPACES", "HUBER_DELTA"]
