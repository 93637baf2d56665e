"""Optimization drift of sampled softmax: expected gradients and the sampled log-partition.

DESIGN.md section 1, "Optimization drift". One query, scores s_N over the N documents, positive
d+ = `pos`. The K negatives are drawn i.i.d. (with replacement) from a distribution Q, and the
logQ correction uses that same Q, so the corrected sampled partition
Z_S = e^{s+} + sum_{i: d_i != d+} e^{s_i} / (K Q(d_i)) is unbiased for Z = sum_j e^{s_j}. Two
sampling models (argument `sampling`):
  "exclude" (default): Q is the proposal restricted to the N-1 documents other than d+ and
    renormalized; for a uniform proposal Q = 1/(N-1), the (N-1) of DESIGN.md's formulas.
  "mask": Q is the whole proposal and draws that hit d+ are dropped, as `sim.train` does
    (uniform Q = 1/N). The two agree up to O(K Q(d+)).

Exact values enumerate all (N-1)^K ordered samples (small N and K); otherwise Monte Carlo with an
explicit key reports a standard error beside each mean. `population_fixed_point` finds the free
scores that minimise the expected loss (the drift that training never removes) by sample-average
approximation with common random numbers, solved in float64 with L-BFGS.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from theory.objectives import sampled_grad, sampled_loss

__all__ = [
    "SampledGrad", "GradientBias", "NormalizerDeficit", "ConfuserCoverage", "FixedPoint",
    "expected_sampled_grad", "gradient_bias", "normalizer_deficit", "confuser_coverage",
    "population_fixed_point", "pmi_target",
]

_MAX_ENUMERATED = 200_000  # ordered samples; beyond this, exact enumeration is not "small"


@dataclasses.dataclass(frozen=True)
class SampledGrad:
    """E_S[d l_L / d s_N] and its Monte Carlo standard error (zeros when exact)."""
    mean: jax.Array
    standard_error: jax.Array


@dataclasses.dataclass(frozen=True)
class GradientBias:
    """bias = E_S[grad l_L] - grad l_G (numpy float64); `cosine` is cos(bias, grad l_G) and
    `direction_cosine` is cos(E_S[grad l_L], grad l_G). Under Monte Carlo, `norm` carries the
    noise too: E[norm^2] = |bias|^2 + sum(standard_error^2)."""
    bias: np.ndarray
    standard_error: jax.Array
    norm: float
    cosine: float
    direction_cosine: float


@dataclasses.dataclass(frozen=True)
class NormalizerDeficit:
    """E[log Z_S] - log Z (negative when Z_S falls short), its closed-form approximation and
    error = approximation - monte_carlo. `monte_carlo` is exact (standard_error 0) when enumerated."""
    monte_carlo: float
    standard_error: float
    approximation: float
    error: float


@dataclasses.dataclass(frozen=True)
class ConfuserCoverage:
    """P(a sample of K negatives holds at least one of k confusers): exact, and DESIGN's Kk/N."""
    exact: float
    approximation: float


_SAMPLING = ("exclude", "mask")


def _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling):
    """Validate (eagerly) and return the distribution Q the negatives are drawn from (numpy float64)."""
    num_docs = scores_N.shape[0]
    if scores_N.ndim != 1 or num_docs < 2:
        raise ValueError(f"scores_N must be a vector over N >= 2 documents, got shape {scores_N.shape}")
    if not 0 <= int(pos) < num_docs:
        raise ValueError(f"pos must index a document in [0, {num_docs}), got {pos}")
    if int(num_negatives) < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    if sampling not in _SAMPLING:
        raise ValueError(f"sampling must be one of {_SAMPLING}, got {sampling!r}")
    q_N = np.array(proposal_N, dtype=np.float64)
    if q_N.shape != scores_N.shape:
        raise ValueError(f"proposal_N must have shape {scores_N.shape}, got {q_N.shape}")
    if not np.all(np.isfinite(q_N)) or np.any(q_N < 0):
        raise ValueError("proposal_N must be finite and non-negative")
    if q_N.sum() - q_N[int(pos)] <= 0:
        raise ValueError("proposal_N must put mass on some document other than pos")
    if sampling == "exclude":
        q_N[int(pos)] = 0.0
    return q_N / q_N.sum()


def _sample_negatives(key, q_N, num_samples, num_negatives):
    """Inverse-CDF draws from q_N: O(S K log N), no S x K x N noise tensor."""
    cdf_N = jnp.cumsum(q_N)
    u_SxK = jax.random.uniform(key, (num_samples, num_negatives), dtype=q_N.dtype)
    # side='right' never lands on a zero-mass document.
    idx_SxK = jnp.searchsorted(cdf_N, u_SxK * cdf_N[-1], side="right")
    return jnp.minimum(idx_SxK, q_N.shape[0] - 1)


def _per_sample(scores_N, pos, neg_SxK, q_N, corrected, want_grad):
    """Per-sample statistic: the score-space gradient (S x N) or log Z_S - log Z (S x 1).

    `corrected` is traced (one compilation serves both): the correction only shifts the negative
    logits, so the gradient with respect to a shifted logit is the gradient with respect to s.
    """
    num_samples, num_negatives = neg_SxK.shape
    pos_scores_S = jnp.full((num_samples,), scores_N[pos])
    q_neg_SxK = q_N[neg_SxK]
    log_kq_SxK = jnp.log(num_negatives * jnp.where(q_neg_SxK > 0, q_neg_SxK, 1.0))
    neg_logits_SxK = scores_N[neg_SxK] - jnp.where(corrected, log_kq_SxK, 0.0)
    # Hits of d+ are dropped ("mask"); rounding can (with probability ~eps) land on a zero-mass
    # document: drop it the same way.
    valid_SxK = (q_neg_SxK > 0) & (neg_SxK != pos)
    if not want_grad:
        log_zs_S = sampled_loss(pos_scores_S, neg_logits_SxK, None, valid_SxK) + pos_scores_S
        return (log_zs_S - jax.nn.logsumexp(scores_N))[:, None]
    grad_pos_S, grad_neg_SxK = sampled_grad(pos_scores_S, neg_logits_SxK, None, valid_SxK)
    rows_Sx1 = jnp.arange(num_samples)[:, None]
    grad_SxN = jnp.zeros((num_samples, scores_N.shape[0]), scores_N.dtype)
    grad_SxN = grad_SxN.at[rows_Sx1, neg_SxK].add(grad_neg_SxK)
    return grad_SxN.at[:, pos].add(grad_pos_S)


@functools.partial(jax.jit, static_argnames=("num_negatives", "num_samples", "chunk", "want_grad"))
def _monte_carlo(key, scores_N, pos, q_N, *, num_negatives, num_samples, chunk, corrected, want_grad):
    """Mean and standard error of the per-sample statistic, merged chunk by chunk (Chan et al.)."""
    num_chunks = -(-num_samples // chunk)

    def body(carry, inputs):
        count, mean_F, m2_F = carry
        chunk_key, chunk_index = inputs
        neg_CxK = _sample_negatives(chunk_key, q_N, chunk, num_negatives)
        stat_CxF = _per_sample(scores_N, pos, neg_CxK, q_N, corrected, want_grad)
        keep_C = (chunk_index * chunk + jnp.arange(chunk) < num_samples).astype(scores_N.dtype)
        n_c = jnp.sum(keep_C)
        mean_c_F = keep_C @ stat_CxF / n_c
        m2_c_F = keep_C @ jnp.square(stat_CxF - mean_c_F[None, :])
        total = count + n_c
        delta_F = mean_c_F - mean_F
        mean_F = mean_F + delta_F * (n_c / total)
        m2_F = m2_F + m2_c_F + jnp.square(delta_F) * (count * n_c / total)
        return (total, mean_F, m2_F), None

    width = scores_N.shape[0] if want_grad else 1
    zeros_F = jnp.zeros((width,), scores_N.dtype)
    init = (jnp.zeros((), scores_N.dtype), zeros_F, zeros_F)
    inputs = (jax.random.split(key, num_chunks), jnp.arange(num_chunks))
    (count, mean_F, m2_F), _ = jax.lax.scan(body, init, inputs)
    return mean_F, jnp.sqrt(m2_F / (count - 1) / count)


@functools.partial(jax.jit, static_argnames=("want_grad",))
def _weighted_mean(scores_N, pos, neg_TxK, q_N, corrected, want_grad):
    prob_T = jnp.prod(q_N[neg_TxK], axis=1)
    return prob_T @ _per_sample(scores_N, pos, neg_TxK, q_N, corrected, want_grad)


def _enumerate(scores_N, pos, q_N, num_negatives, corrected, want_grad):
    """Exact expectation over all ordered samples from the support of q_N (masked hits included)."""
    support = np.flatnonzero(q_N > 0)
    count = len(support) ** num_negatives
    if count > _MAX_ENUMERATED:
        raise ValueError(f"exact enumeration needs {count} samples (> {_MAX_ENUMERATED}); use exact=False")
    neg_TxK = np.array(list(itertools.product(support, repeat=num_negatives))).reshape(count, num_negatives)
    mean_F = _weighted_mean(scores_N, pos, jnp.asarray(neg_TxK), jnp.asarray(q_N, scores_N.dtype), corrected,
                            want_grad)
    return mean_F, jnp.zeros_like(mean_F)


def _moments(scores_N, pos, num_negatives, proposal_N, corrected, exact, num_samples, key, sampling, want_grad):
    scores_N = jnp.asarray(scores_N)
    q_N = _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling)
    if exact:
        return _enumerate(scores_N, pos, q_N, int(num_negatives), jnp.asarray(bool(corrected)), want_grad)
    if key is None:
        raise ValueError("key is required for Monte Carlo (exact=False)")
    if int(num_samples) < 2:
        raise ValueError(f"num_samples must be >= 2, got {num_samples}")
    # Bound each chunk's S x N gradient block to a few million entries.
    chunk = min(int(num_samples), max(64, 4_000_000 // scores_N.shape[0]) if want_grad else 65_536)
    return _monte_carlo(key, scores_N, jnp.asarray(pos), jnp.asarray(q_N, scores_N.dtype),
                        num_negatives=int(num_negatives),
                        num_samples=int(num_samples), chunk=chunk, corrected=jnp.asarray(bool(corrected)),
                        want_grad=want_grad)


def expected_sampled_grad(scores_N, pos, num_negatives, proposal_N, corrected, *, exact=False,
                          num_samples=10_000, key=None, sampling="exclude") -> SampledGrad:
    """Expected score-space gradient of the sampled loss, E_S[d l_L / d s_N].

    Args:
      scores_N: model scores s(q, d) of one query over N documents.
      pos: index of the positive d+.
      num_negatives: K, negatives per sample.
      proposal_N: non-negative proposal weights over the N documents (need not be normalized).
      corrected: apply the logQ correction s - log(K Q).
      exact: enumerate all ordered samples instead of Monte Carlo.
      num_samples: Monte Carlo samples of K negatives.
      key: PRNG key, required unless `exact`.
      sampling: "exclude" (Q restricted to d != d+) or "mask" (Q whole, hits of d+ dropped).

    Returns:
      SampledGrad(mean, standard_error), both shape (N,).

    Reference: DESIGN.md section 1 (optimization drift); Bengio & Senecal 2008 for logQ.

    >>> import jax.numpy as jnp
    >>> g = expected_sampled_grad(jnp.zeros(3), 0, 1, jnp.ones(3), False, exact=True)
    >>> [round(float(x), 3) for x in g.mean]   # w_+ = 1/2; each negative is drawn half the time
    [-0.5, 0.25, 0.25]
    """
    mean_N, se_N = _moments(scores_N, pos, num_negatives, proposal_N, corrected, exact, num_samples, key,
                            sampling, True)
    return SampledGrad(mean=mean_N, standard_error=se_N)


def gradient_bias(scores_N, pos, num_negatives, proposal_N, corrected, *, exact=False,
                  num_samples=10_000, key=None, sampling="exclude") -> GradientBias:
    """Bias of the sampled gradient against the global one, E_S[grad l_L] - (softmax(s) - e_+).

    Args:
      scores_N, pos, num_negatives, proposal_N, corrected, exact, num_samples, key, sampling: as in
        `expected_sampled_grad`.

    Returns:
      GradientBias(bias, standard_error, norm, cosine, direction_cosine); `cosine` is the cosine of
      the bias to the global gradient, `direction_cosine` that of the expected sampled gradient.

    Reference: DESIGN.md section 1 (optimization drift).

    >>> import jax.numpy as jnp
    >>> s = jnp.array([0.0, 1.0, -1.0, 0.5])
    >>> own = jnp.exp(s)   # proposal = the model's own softmax: corrected Z_S equals Z exactly
    >>> round(gradient_bias(s, 0, 2, own, True, exact=True).norm, 12)
    0.0
    """
    expected = expected_sampled_grad(scores_N, pos, num_negatives, proposal_N, corrected, exact=exact,
                                     num_samples=num_samples, key=key, sampling=sampling)
    mean_N = np.asarray(expected.mean, dtype=np.float64)
    global_N = scipy.special.softmax(np.asarray(scores_N, dtype=np.float64))
    global_N[int(pos)] -= 1.0   # grad l_G = softmax(s) - e_+
    bias_N = mean_N - global_N
    norm, global_norm, mean_norm = (float(np.linalg.norm(v)) for v in (bias_N, global_N, mean_N))
    cosine = float(bias_N @ global_N) / (norm * global_norm) if norm > 0 else 0.0
    direction = float(mean_N @ global_N) / (mean_norm * global_norm) if mean_norm > 0 else 0.0
    return GradientBias(bias=bias_N, standard_error=expected.standard_error, norm=norm, cosine=cosine,
                        direction_cosine=direction)


def normalizer_deficit(scores_N, pos, num_negatives, proposal_N, corrected, *, exact=False,
                       num_samples=100_000, key=None, sampling="exclude") -> NormalizerDeficit:
    """E[log Z_S] - log Z, by Monte Carlo (or enumeration), beside its closed-form approximation.

    Approximations (p = softmax(s), Q the sampling distribution, K negatives):
      uncorrected: log(K sum_{j!=+} Q_j p_j / (1 - p_+)), exactly -log((N-1)/K) for a uniform
        proposal under "exclude" (-log(N/K) under "mask"); it assumes the negatives hold the
        mass, spread over many documents.
      corrected: the delta-method term -[sum_{j!=+} p_j^2 / Q_j - (1 - p_+)^2] / (2K), which for
        a uniform proposal ("exclude") is -[(N-1) sum_{j!=+} p_j^2 - (1 - p_+)^2] / (2K); it
        assumes Var(Z_S) << Z^2.

    Args:
      scores_N, pos, num_negatives, proposal_N, corrected, exact, key, sampling: as in
        `expected_sampled_grad`.
      num_samples: Monte Carlo samples of K negatives.

    Returns:
      NormalizerDeficit(monte_carlo, standard_error, approximation, error).

    Reference: DESIGN.md section 1 (optimization drift).

    >>> import jax.numpy as jnp
    >>> d = normalizer_deficit(jnp.zeros(5), 0, 2, jnp.ones(5), False, exact=True)
    >>> round(d.monte_carlo, 4), round(d.approximation, 4)   # flat scores: log(3/5) and log(2/4)
    (-0.5108, -0.6931)
    """
    mean_1, se_1 = _moments(scores_N, pos, num_negatives, proposal_N, corrected, exact, num_samples, key,
                            sampling, False)
    scores_N = np.asarray(scores_N, dtype=np.float64)
    q_N = _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling)
    p_N = scipy.special.softmax(scores_N)
    p_pos, num_negatives = p_N[int(pos)], int(num_negatives)
    negatives = np.flatnonzero((q_N > 0) & (np.arange(q_N.shape[0]) != int(pos)))
    if corrected:
        second = np.sum(np.square(p_N[negatives]) / q_N[negatives])
        approximation = -(second - (1.0 - p_pos) ** 2) / (2.0 * num_negatives)
    else:
        approximation = math.log(num_negatives * float(q_N[negatives] @ p_N[negatives])) - math.log1p(-p_pos)
    monte_carlo = float(mean_1[0])
    return NormalizerDeficit(monte_carlo=monte_carlo, standard_error=float(se_1[0]),
                             approximation=approximation, error=approximation - monte_carlo)


def confuser_coverage(num_docs: int, num_negatives: int, num_confusers: int, *, replace: bool = True
                      ) -> ConfuserCoverage:
    """Probability that K uniform negatives (from the N-1 non-positive documents) hit any of k confusers.

    Args:
      num_docs: N.
      num_negatives: K.
      num_confusers: k, the confusable documents among the N-1 negatives.
      replace: sample with replacement (as everywhere in this module) or without.

    Returns:
      ConfuserCoverage(exact, approximation): exact is 1 - (1 - k/(N-1))^K with replacement,
      1 - C(N-1-k, K) / C(N-1, K) without; approximation is DESIGN's K k / N (uncapped, so it
      shows where it breaks).

    Reference: DESIGN.md section 1 (the gradient on the confusers fades like K/N).

    >>> c = confuser_coverage(10_001, 16, 1)
    >>> round(c.exact, 6), round(c.approximation, 6)
    (0.001599, 0.0016)
    """
    num_docs, num_negatives, num_confusers = int(num_docs), int(num_negatives), int(num_confusers)
    if num_docs < 2:
        raise ValueError(f"num_docs must be >= 2, got {num_docs}")
    if not 0 <= num_confusers <= num_docs - 1:
        raise ValueError(f"num_confusers must be in [0, {num_docs - 1}], got {num_confusers}")
    if num_negatives < 1 or (not replace and num_negatives > num_docs - 1):
        raise ValueError(f"num_negatives must be in [1, N-1] (any >= 1 with replacement), got {num_negatives}")
    pool = num_docs - 1
    if replace:
        miss = math.exp(num_negatives * math.log1p(-num_confusers / pool)) if num_confusers < pool else 0.0
    elif num_negatives > pool - num_confusers:
        miss = 0.0
    else:
        miss = math.exp(math.lgamma(pool - num_confusers + 1) - math.lgamma(pool - num_confusers - num_negatives + 1)
                        - math.lgamma(pool + 1) + math.lgamma(pool - num_negatives + 1))
    return ConfuserCoverage(exact=1.0 - miss, approximation=num_negatives * num_confusers / num_docs)


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    """Population minimiser of the expected loss for free scores.

    scores: log-softmax-normalised scores (numpy float64, shape N); kl_to_truth: KL(p* || softmax(scores));
    spearman: rank correlation of scores with p*; converged / iterations / grad_norm: the optimiser's
    report (grad_norm is the largest |dF/ds_j| / sqrt(p*_j)); objective: the minimised value.
    """
    scores: np.ndarray
    kl_to_truth: float
    spearman: float
    converged: bool
    iterations: int
    grad_norm: float
    objective: float


def _sample_negatives_per_positive(key, q_N, num_samples, num_negatives, sampling):
    """N x S x K inverse-CDF draws, row d for positive d ("exclude": from q restricted to
    documents != d, by stretching the uniform over the mass outside d and skipping d's interval).
    Drawn once in numpy from a seed taken from `key` (no per-shape compilation)."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)   # also accept legacy uint32 keys
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key) if typed else key).ravel())
    num_docs = q_N.shape[0]
    cdf_N = np.cumsum(q_N)
    u_NxSxK = rng.random((num_docs, num_samples, num_negatives))
    if sampling == "exclude":
        q_pos_Nx1x1 = q_N[:, None, None]
        v_NxSxK = u_NxSxK * (cdf_N[-1] - q_pos_Nx1x1)
        v_NxSxK = np.where(v_NxSxK < (cdf_N - q_N)[:, None, None], v_NxSxK, v_NxSxK + q_pos_Nx1x1)
    else:
        v_NxSxK = u_NxSxK * cdf_N[-1]
    return np.minimum(np.searchsorted(cdf_N, v_NxSxK, side="right"), num_docs - 1).astype(np.int32)


@jax.jit
def _global_objective(scores_N, p_N):
    return jax.value_and_grad(lambda s_N: jax.nn.logsumexp(s_N) - p_N @ s_N)(scores_N)


@jax.jit
def _sampled_objective(scores_N, p_N, neg_NxSxK, offset_NxSxK):
    """sum_d p_d mean_t l_L(s; d, S_dt); offset = log(K Q) (corrected), 0 (plain) or +inf (dropped)."""
    def objective(s_N):
        num_docs, num_samples, _ = neg_NxSxK.shape
        pos_NxSx1 = jnp.broadcast_to(s_N[:, None, None], (num_docs, num_samples, 1))
        logits_NxSx1K = jnp.concatenate([pos_NxSx1, s_N[neg_NxSxK] - offset_NxSxK], axis=2)
        loss_NxS = jax.nn.logsumexp(logits_NxSx1K, axis=2) - pos_NxSx1[:, :, 0]
        return p_N @ jnp.mean(loss_NxS, axis=1)
    return jax.value_and_grad(objective)(scores_N)


def population_fixed_point(p_true_N, num_negatives=None, proposal_N=None, corrected=False, *,
                           num_samples=64, key=None, sampling="exclude", max_iter=5000,
                           gtol=1e-10) -> FixedPoint:
    """Free scores s_N minimising E_{d+ ~ p*} E_S[l_L(s; d+, S)] (or the global loss).

    The objective is convex in s_N and invariant to a shift. The expectation over d+ is exact (a
    p*-weighted sum over all N positives); the one over negatives is a sample-average
    approximation with common random numbers: `num_samples` sets of K negatives per positive,
    drawn once (under the module's sampling model) and held fixed while L-BFGS (float64,
    preconditioned by p*) runs to convergence. Costs N * num_samples * K per evaluation.

    Args:
      p_true_N: the true posterior p*(d|q), strictly positive (normalised here).
      num_negatives: K; None selects the global objective (proposal and correction unused).
      proposal_N: non-negative proposal weights over the N documents.
      corrected: apply the logQ correction s - log(K Q).
      num_samples: negative sets per positive in the sample-average approximation.
      key: PRNG key for the negative sets (required unless global).
      sampling: "exclude" or "mask", as in `expected_sampled_grad`.
      max_iter: L-BFGS iteration cap.
      gtol: stopping tolerance on the preconditioned gradient.

    Returns:
      FixedPoint(scores, kl_to_truth, spearman, converged, iterations, grad_norm, objective).

    Reference: DESIGN.md section 1 (population fixed point); Shapiro, Dentcheva & Ruszczynski,
    "Lectures on Stochastic Programming" ch. 5 (sample-average approximation).

    >>> import numpy as np
    >>> p = np.array([0.5, 0.3, 0.2])
    >>> fp = population_fixed_point(p)          # global objective: softmax(s) = p*
    >>> np.round(np.exp(fp.scores), 6).tolist(), fp.kl_to_truth < 1e-10, fp.converged
    ([0.5, 0.3, 0.2], True, True)
    """
    p_N = np.asarray(p_true_N, dtype=np.float64)
    if p_N.ndim != 1 or p_N.shape[0] < 2:
        raise ValueError(f"p_true_N must be a vector over N >= 2 documents, got shape {p_N.shape}")
    if not np.all(np.isfinite(p_N)) or np.any(p_N <= 0):
        raise ValueError("p_true_N must be finite and strictly positive (a zero-mass document has no finite optimum)")
    p_N = p_N / p_N.sum()
    num_docs = p_N.shape[0]
    with jax.enable_x64(True):
        p_dev_N = jnp.asarray(p_N)
        if num_negatives is None:
            value_and_grad = functools.partial(_global_objective, p_N=p_dev_N)
        else:
            if key is None or proposal_N is None:
                raise ValueError("the sampled objective needs proposal_N and key")
            if int(num_negatives) < 1 or int(num_samples) < 1:
                raise ValueError(f"num_negatives and num_samples must be >= 1, got {num_negatives}, {num_samples}")
            if sampling not in _SAMPLING:
                raise ValueError(f"sampling must be one of {_SAMPLING}, got {sampling!r}")
            q_N = np.asarray(proposal_N, dtype=np.float64)
            if q_N.shape != p_N.shape or not np.all(np.isfinite(q_N)) or np.any(q_N < 0):
                raise ValueError(f"proposal_N must be finite, non-negative, shape {p_N.shape}")
            q_N = q_N / q_N.sum()
            if np.any(q_N >= 1.0):
                raise ValueError("proposal_N must put mass on at least two documents")
            neg_NxSxK = _sample_negatives_per_positive(key, q_N, int(num_samples), int(num_negatives), sampling)
            q_neg_NxSxK = q_N[neg_NxSxK]
            # Hits of the positive ("mask", or rounding under "exclude") and zero-mass draws are dropped.
            valid_NxSxK = (neg_NxSxK != np.arange(num_docs)[:, None, None]) & (q_neg_NxSxK > 0)
            with np.errstate(divide="ignore"):
                log_norm_Nx1x1 = np.log1p(-q_N)[:, None, None] if sampling == "exclude" else 0.0
                offset_NxSxK = (np.log(num_negatives * q_neg_NxSxK) - log_norm_Nx1x1
                                if corrected else np.zeros_like(q_neg_NxSxK))
            offset_NxSxK = jnp.asarray(np.where(valid_NxSxK, offset_NxSxK, np.inf))
            neg_NxSxK = jnp.asarray(neg_NxSxK)
            value_and_grad = functools.partial(_sampled_objective, p_N=p_dev_N, neg_NxSxK=neg_NxSxK,
                                               offset_NxSxK=offset_NxSxK)
        # s = x / sqrt(p*): the curvature on document j scales like p*_j, so x is well conditioned.
        scale_N = 1.0 / np.sqrt(p_N)

        def fun(x_N):
            value, grad_N = value_and_grad(jnp.asarray(x_N * scale_N))
            return float(value), np.asarray(grad_N, dtype=np.float64) * scale_N

        result = scipy.optimize.minimize(fun, np.zeros(num_docs), jac=True, method="L-BFGS-B",
                                         options=dict(maxiter=int(max_iter), maxfun=2 * int(max_iter),
                                                      gtol=gtol, ftol=1e-15, maxcor=20))
    scores_N = result.x * scale_N
    scores_N = scores_N - scipy.special.logsumexp(scores_N)
    grad_norm = float(np.max(np.abs(result.jac)))
    kl = float(p_N @ (np.log(p_N) - scores_N))
    spearman = float(scipy.stats.spearmanr(scores_N, p_N).statistic)
    return FixedPoint(scores=scores_N, kl_to_truth=kl, spearman=spearman,
                      converged=bool(result.success) or grad_norm <= gtol, iterations=int(result.nit),
                      grad_norm=grad_norm, objective=float(result.fun))


@jax.jit
def pmi_target(p_true_N, proposal_N) -> jax.Array:
    """Large-K stationary scores of uncorrected sampled softmax with proposal q: log p* - log q.

    With K -> infinity the sampled partition is dominated by K sum_j q_j e^{s_j}, so stationarity
    reads p*_j = q_j e^{s_j} / sum_k q_k e^{s_k}: rare documents (small q) are over-ranked.

    Args:
      p_true_N: true posterior p*(d|q), positive.
      proposal_N: proposal probabilities q(d), positive.

    Returns:
      The target scores, shape (N,), normalised as log-probabilities (logsumexp 0).

    Reference: DESIGN.md section 1 (PMI target); Levy & Goldberg 2014 (negative sampling as PMI).

    >>> import jax.numpy as jnp
    >>> t = pmi_target(jnp.array([0.5, 0.25, 0.25]), jnp.array([0.5, 0.25, 0.25]))
    >>> [round(float(x), 4) for x in jnp.exp(t)]   # proposal = truth: flat scores
    [0.3333, 0.3333, 0.3333]
    """
    log_ratio_N = jnp.log(jnp.asarray(p_true_N)) - jnp.log(jnp.asarray(proposal_N))
    return log_ratio_N - jax.nn.logsumexp(log_ratio_N)
