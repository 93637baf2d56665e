"""The two-level score profile of one query, and its drift quantities in exact and closed form.

docs/design.md, section 1, "Optimization drift". One query over N documents: the positive d+ at
index 0, k confusers at indices 1 ... k with weight c = e^s, the N-1-k other negatives with weight 1,
and d+ with the mean negative weight (p_+ = 1/N). c is set so that the confusers hold a share m of
the negatives' mass (m = None: the flat profile, c = 1). K negatives are drawn uniformly with
replacement from the N-1 documents other than d+ ("exclude", as theory.drift), so the number J of
draws that hit a confuser is Binomial(K, k/(N-1)) and, by symmetry within each block, every
expectation over the (N-1)^K samples is a sum over J = 0 ... K:
Z_S(J) = w_+ + a (J c + K - J), a = 1 plain, (N-1)/K with logQ. Here "corrected" (logQ) is the
importance-weighted partition of the negatives-only rule (theory.objectives, "logq_negatives"); with a
uniform proposal the standard rule, which corrects the positive too, is plain sampling.

- `exact_deficit`, `exact_gradient_bias`: E log Z_S - log Z and |E_S grad l_L - grad l_G|, exactly,
  for any N (theory.drift enumerates only small N and K).
- `closed_forms`: theory.normalizer_deficit's two approximations on this profile, -log((N-1)/K)
  and the delta method; `delta_relative_error`, `delta_boundary`: where the delta method breaks.
- `global_gradient`, `hit_probability`, `simulated_coverage`, `norm_error`: the global gradient's
  size, the chance that a sample holds a confuser (accurate where tiny), its simulation, and the
  Monte Carlo error of a gradient bias's norm.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["log_grid", "two_level_weights", "two_level_scores", "exact_deficit", "exact_gradient_bias",
           "closed_forms", "delta_relative_error", "delta_boundary", "global_gradient", "hit_probability",
           "simulated_coverage", "norm_error"]


def log_grid(lo: float, hi: float, per_decade: int) -> tuple[int, ...]:
    """Distinct integers spaced evenly in log from lo to hi, about `per_decade` per decade.

    >>> log_grid(10, 1_000, 2)
    (10, 32, 100, 316, 1000)
    """
    return tuple(int(n) for n in np.unique(np.round(np.logspace(math.log10(lo), math.log10(hi),
                                                                  round(per_decade * math.log10(hi / lo)) + 1))))


def two_level_weights(num_docs: int, share: float | None, confusers: int = 1) -> tuple[float, float]:
    """(c, w_pos): the confusers' weight c (the N-1-k other negatives weigh 1) so that the k confusers
    hold `share` of the negatives' mass (None: flat, c = 1), and the positive's weight w_pos, the mean
    negative weight (p_+ = 1/N).

    >>> two_level_weights(1_001, 0.5)   # one confuser weighs as much as the 999 other negatives
    (999.0, 1.998)
    """
    k, n = int(confusers), int(num_docs)
    if not 1 <= k <= n - 2:
        raise ValueError(f"confusers must be in [1, N-2], got {k} at N = {n}")
    c = 1.0 if share is None else float(share) * (n - 1 - k) / (k * (1.0 - float(share)))
    return c, (k * c + n - 1 - k) / (n - 1)


def two_level_scores(num_docs: int, share: float | None, confusers: int = 1) -> np.ndarray:
    """Scores s_N (float64) of the profile: d+ at index 0, the confusers at 1 ... k."""
    c, w_pos = two_level_weights(num_docs, share, confusers)
    scores_N = np.zeros(int(num_docs))
    scores_N[0], scores_N[1:confusers + 1] = math.log(w_pos), math.log(c)
    return scores_N


def _partition(num_docs, confusers, c, w_pos):
    return w_pos + confusers * c + (num_docs - 1 - confusers)


def _hits(num_docs, num_negatives, confusers):
    import scipy.stats

    hits_J = np.arange(int(num_negatives) + 1)
    return hits_J, scipy.stats.binom.pmf(hits_J, int(num_negatives), confusers / (num_docs - 1))


def _sampled_partition(num_docs, num_negatives, share, confusers, corrected):
    c, w_pos = two_level_weights(num_docs, share, confusers)
    hits_J, pmf_J = _hits(num_docs, num_negatives, confusers)
    a = (num_docs - 1) / num_negatives if corrected else 1.0
    z = _partition(num_docs, confusers, c, w_pos)
    return c, w_pos, z, a, hits_J, pmf_J, w_pos + a * (hits_J * c + (num_negatives - hits_J))


def exact_deficit(num_docs: int, num_negatives: int, share: float | None, confusers: int, corrected: bool) -> float:
    """E log Z_S - log Z on the two-level profile, exactly: sum_J P(J) log(Z_S(J) / Z), J ~ Bin(K, k/(N-1)).

    >>> round(exact_deficit(1_000, 16, None, 1, False), 6), round(math.log(17 / 1_000), 6)   # flat: Z_S = (K+1) w
    (-4.074542, -4.074542)
    """
    *_, z, _, _, pmf_J, zs_J = _sampled_partition(num_docs, num_negatives, share, confusers, corrected)
    return float(pmf_J @ np.log1p((zs_J - z) / z))


def exact_gradient_bias(num_docs: int, num_negatives: int, share: float | None, confusers: int,
                        corrected: bool) -> float:
    """|E_S grad l_L - grad l_G| on the two-level profile, exactly (by symmetry within the confusers and
    within the other negatives, each block's expected gradient is a binomial sum)."""
    c, w_pos, z, a, hits_J, pmf_J, zs_J = _sampled_partition(num_docs, num_negatives, share, confusers, corrected)
    others = num_docs - 1 - confusers
    bias_pos = pmf_J @ (w_pos / zs_J) - w_pos / z
    bias_conf = pmf_J @ (a * hits_J * c / zs_J) / confusers - c / z
    bias_other = pmf_J @ (a * (num_negatives - hits_J) / zs_J) / others - 1.0 / z
    return float(math.sqrt(bias_pos ** 2 + confusers * bias_conf ** 2 + others * bias_other ** 2))


def closed_forms(num_docs: int, num_negatives: int, share: float | None, confusers: int) -> tuple[float, float]:
    """theory.normalizer_deficit's two approximations on the two-level profile (uniform, "exclude"):
    -log((N-1)/K) uncorrected, and the delta method with logQ (tests check them against theory's)."""
    c, w_pos = two_level_weights(num_docs, share, confusers)
    z = _partition(num_docs, confusers, c, w_pos)
    p_pos, sum_sq = w_pos / z, (confusers * c * c + (num_docs - 1 - confusers)) / z ** 2
    delta = -((num_docs - 1) * sum_sq - (1 - p_pos) ** 2) / (2 * num_negatives)
    return -math.log((num_docs - 1) / num_negatives), delta


def delta_relative_error(num_docs: int, num_negatives: int, share: float | None, confusers: int) -> float:
    """|delta method - exact| / |exact| with logQ (NaN where the exact deficit is 0: the flat profile)."""
    exact = exact_deficit(num_docs, num_negatives, share, confusers, True)
    return abs(closed_forms(num_docs, num_negatives, share, confusers)[1] - exact) / abs(exact) if exact else math.nan


def delta_boundary(num_negatives: int, share: float, confusers: int, threshold: float, n_max: int,
                   per_decade: int) -> dict[str, float]:
    """Where the delta method's relative error first exceeds `threshold` for good, on a grid of N.

    The grid starts where the profile is peaked (the confusers at least as heavy as the other
    negatives, N >= 1 + k/share, and N >= 3 + k) and runs to n_max; boundary_n interpolates log N
    linearly at the last upward crossing. censored_low: the error already exceeds the threshold at
    the grid's start (boundary_n is that start); censored_high: it never does (boundary_n NaN).
    `segments` counts the grid's runs of exceedance (1 when the error crosses once).
    """
    n_min = max(confusers + 3, math.ceil(1 + confusers / share))
    grid = log_grid(n_min, max(n_max, n_min + 1), per_decade)
    rel = np.array([delta_relative_error(n, num_negatives, share, confusers) for n in grid])
    over = np.nan_to_num(rel, nan=0.0) > threshold
    segments = int(np.sum(over[1:] & ~over[:-1]) + over[0])
    out = {"n_min": float(grid[0]), "n_max": float(grid[-1]), "rel_error_at_n_min": float(rel[0]),
           "rel_error_at_n_max": float(rel[-1]), "segments": float(segments), "censored_low": 0.0,
           "censored_high": 0.0}
    if not over[-1]:
        return {**out, "boundary_n": math.nan, "censored_high": 1.0}
    first = len(over) - int(np.argmin(over[::-1])) if not over.all() else 0
    if first == 0:
        return {**out, "boundary_n": float(grid[0]), "censored_low": 1.0}
    lo, hi = grid[first - 1], grid[first]
    t = (math.log(threshold) - math.log(rel[first - 1])) / (math.log(rel[first]) - math.log(rel[first - 1]))
    return {**out, "boundary_n": float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))}


def global_gradient(num_docs: int, share: float | None, confusers: int) -> tuple[float, float]:
    """(|grad l_G|, k c / Z) on the two-level profile with d+ the positive: the global gradient's norm
    in score space, and its push on the confusers, which a sample without them lacks."""
    c, w_pos = two_level_weights(num_docs, share, confusers)
    z = _partition(num_docs, confusers, c, w_pos)
    norm = math.sqrt((w_pos / z - 1) ** 2 + confusers * (c / z) ** 2 + (num_docs - 1 - confusers) / z ** 2)
    return norm, confusers * c / z


def hit_probability(num_docs: int, num_negatives: int, confusers: int) -> float:
    """P(J >= 1) = 1 - (1 - k/(N-1))^K, by expm1: accurate to the last digits where it is tiny.

    >>> hit_probability(1_000_001, 4, 1)
    3.999994000004e-06
    """
    return -math.expm1(num_negatives * math.log1p(-confusers / (num_docs - 1)))


def simulated_coverage(num_docs: int, num_negatives: int, confusers: int, trials: int,
                       seed: int) -> tuple[float, float]:
    """(rate, standard error) of `trials` simulated samples of K uniform draws from the N-1 negatives
    holding one of the k confusers (its exact value: theory.confuser_coverage). The standard error
    never falls below that of one hit in `trials`."""
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < trials:  # negatives 0 ... k-1 are the confusers
        block = min(trials - done, max(1, 4_000_000 // num_negatives))
        hits += int(np.sum(np.any(rng.integers(0, num_docs - 1, size=(block, num_negatives)) < confusers, axis=1)))
        done += block
    rate = hits / trials
    return rate, math.sqrt(max(rate * (1 - rate), 1.0 / trials) / trials)


def norm_error(bias_N, standard_error_N, norm: float) -> tuple[float, float]:
    """(standard error, noise) of a Monte Carlo gradient bias's norm (theory.GradientBias): the delta
    method's standard error plus the norm's upward noise bias sum(se^2) / |b|, and sqrt(sum(se^2))."""
    se_N, bias_N = np.asarray(standard_error_N, np.float64), np.asarray(bias_N)
    noise = float(np.sqrt(np.sum(se_N ** 2)))
    return float(math.sqrt(np.sum((bias_N * se_N) ** 2)) / norm + np.sum(se_N ** 2) / norm), noise
