"""Optimization drift of sampled softmax: expected gradients and the sampled log-partition.

docs/design.md, section 1, "Optimization drift". One query, scores s_N over the N documents, positive
d+ = `pos`. The K negatives are drawn i.i.d. (with replacement) from a distribution Q, and each
function takes the correction rule of theory.objectives (`correction`: "none", "logq" = the
standard rule, log Q subtracted from every candidate's logit, or "logq_negatives" = the negatives
only, log(K Q)). Writing each rule's loss as l_L = -s+ + log Z_S defines its sampled partition Z_S;
under "logq_negatives" with hits of d+ excluded, Z_S = e^{s+} + sum_i e^{s_i} / (K Q(d_i)) is
unbiased for Z = sum_j e^{s_j}. Three sampling models (argument `sampling`):
  "exclude" (default): Q is the proposal restricted to the N-1 documents other than d+ and
    renormalized; for a uniform proposal Q = 1/(N-1), the (N-1) of docs/design.md's formulas.
  "mask": Q is the whole proposal and draws that hit d+ are dropped (uniform Q = 1/N), as
    `sim.train` does with `accidental_hits="mask"`. It agrees with "exclude" up to O(K Q(d+)).
  "keep": Q is the whole proposal and hits of d+ stay candidates, as `sim.train` does by default:
    the model under which the standard logQ rule is Fisher-consistent (theory.fixed_point).
The positive's own log Q (the standard rule's) is always the whole proposal's.

Exact values enumerate all (N-1)^K ordered samples (small N and K); otherwise Monte Carlo with an
explicit key reports a standard error beside each mean. The documents that decide top-1 and how often
a sample covers them are theory.confusers'; the population fixed point of the expected loss lives in
`theory.fixed_point`.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from grdr.theory.objectives import CORRECTIONS, candidate_logits

__all__ = ["SampledGrad", "GradientBias", "NormalizerDeficit", "expected_sampled_grad", "gradient_bias", "normalizer_deficit", "deficit_approximation"]

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


SAMPLING_MODES = ("exclude", "mask", "keep")   # the `sampling` argument, shared with theory.fixed_point


def _check_correction(correction) -> str:
    if isinstance(correction, bool) or correction not in CORRECTIONS:
        raise ValueError(f"correction={correction!r}: expected one of {CORRECTIONS} (theory.objectives)")
    return correction


def _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling):
    """Validate (eagerly) and return (the distribution Q the negatives are drawn from, the whole
    proposal normalised), numpy float64; they differ only under "exclude"."""
    num_docs = scores_N.shape[0]
    if scores_N.ndim != 1 or num_docs < 2:
        raise ValueError(f"scores_N must be a vector over N >= 2 documents, got shape {scores_N.shape}")
    if not 0 <= int(pos) < num_docs:
        raise ValueError(f"pos must index a document in [0, {num_docs}), got {pos}")
    if int(num_negatives) < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    q_N = np.array(proposal_N, dtype=np.float64)
    if q_N.shape != scores_N.shape:
        raise ValueError(f"proposal_N must have shape {scores_N.shape}, got {q_N.shape}")
    if not np.all(np.isfinite(q_N)) or np.any(q_N < 0):
        raise ValueError("proposal_N must be finite and non-negative")
    if q_N.sum() - q_N[int(pos)] <= 0:
        raise ValueError("proposal_N must put mass on some document other than pos")
    whole_N = q_N / q_N.sum()
    if sampling == "exclude":
        q_N[int(pos)] = 0.0
    return q_N / q_N.sum(), whole_N


def _sample_negatives(key, q_N, num_samples, num_negatives):
    """Inverse-CDF draws from q_N: O(S K log N), no S x K x N noise tensor."""
    cdf_N = jnp.cumsum(q_N)
    u_SxK = jax.random.uniform(key, (num_samples, num_negatives), dtype=q_N.dtype)
    # side='right' never lands on a zero-mass document.
    idx_SxK = jnp.searchsorted(cdf_N, u_SxK * cdf_N[-1], side="right")
    return jnp.minimum(idx_SxK, q_N.shape[0] - 1)


def _per_sample(scores_N, pos, neg_SxK, q_N, log_q_pos, correction, keep_hits, want_grad):
    """Per-sample statistic: the score-space gradient (S x N) or log Z_S - log Z (S x 1), where
    l_L = -s+ + log Z_S defines the sampled partition Z_S of each correction rule.

    The positive's log Q is the whole proposal's (`log_q_pos`), the negatives' that of the
    distribution they are drawn from (`q_N`). Hits of d+ are kept (`keep_hits`) or dropped; rounding
    can (with probability ~eps) land on a zero-mass document: it is dropped either way.
    """
    num_samples = neg_SxK.shape[0]
    idx_SxK1 = jnp.concatenate([jnp.full((num_samples, 1), pos), neg_SxK], axis=1)
    q_neg_SxK = q_N[neg_SxK]
    log_q_SxK1 = jnp.concatenate([jnp.full((num_samples, 1), log_q_pos),
                                  jnp.log(jnp.where(q_neg_SxK > 0, q_neg_SxK, 1.0))], axis=1)
    valid_SxK = (q_neg_SxK > 0) if keep_hits else (q_neg_SxK > 0) & (neg_SxK != pos)
    logits_SxK1 = candidate_logits(scores_N[idx_SxK1], log_q_SxK1, correction, valid_SxK)
    if not want_grad:
        log_zs_S = jax.nn.logsumexp(logits_SxK1, axis=1) - logits_SxK1[:, 0] + scores_N[pos]
        return (log_zs_S - jax.nn.logsumexp(scores_N))[:, None]
    w_SxK1 = jax.nn.softmax(logits_SxK1, axis=1)
    rows_Sx1 = jnp.arange(num_samples)[:, None]
    grad_SxN = jnp.zeros((num_samples, scores_N.shape[0]), scores_N.dtype).at[rows_Sx1, idx_SxK1].add(w_SxK1)
    return grad_SxN.at[:, pos].add(-1.0)


@functools.partial(jax.jit, static_argnames=("num_negatives", "num_samples", "chunk", "correction", "keep_hits",
                                             "want_grad"))
def _monte_carlo(key, scores_N, pos, q_N, log_q_pos, *, num_negatives, num_samples, chunk, correction, keep_hits,
                 want_grad):
    """Mean and standard error of the per-sample statistic, merged chunk by chunk (Chan et al.)."""
    num_chunks = -(-num_samples // chunk)

    def body(carry, inputs):
        count, mean_F, m2_F = carry
        chunk_key, chunk_index = inputs
        neg_CxK = _sample_negatives(chunk_key, q_N, chunk, num_negatives)
        stat_CxF = _per_sample(scores_N, pos, neg_CxK, q_N, log_q_pos, correction, keep_hits, want_grad)
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


@functools.partial(jax.jit, static_argnames=("correction", "keep_hits", "want_grad"))
def _weighted_mean(scores_N, pos, neg_TxK, q_N, log_q_pos, correction, keep_hits, want_grad):
    prob_T = jnp.prod(q_N[neg_TxK], axis=1)
    return prob_T @ _per_sample(scores_N, pos, neg_TxK, q_N, log_q_pos, correction, keep_hits, want_grad)


def _enumerate(scores_N, pos, q_N, log_q_pos, num_negatives, correction, keep_hits, want_grad):
    """Exact expectation over all ordered samples from the support of q_N (masked hits included)."""
    support = np.flatnonzero(q_N > 0)
    count = len(support) ** num_negatives
    if count > _MAX_ENUMERATED:
        raise ValueError(f"exact enumeration needs {count} samples (> {_MAX_ENUMERATED}); use exact=False")
    neg_TxK = np.array(list(itertools.product(support, repeat=num_negatives))).reshape(count, num_negatives)
    mean_F = _weighted_mean(scores_N, pos, jnp.asarray(neg_TxK), jnp.asarray(q_N, scores_N.dtype), log_q_pos,
                            correction, keep_hits, want_grad)
    return mean_F, jnp.zeros_like(mean_F)


def _moments(scores_N, pos, num_negatives, proposal_N, correction, exact, num_samples, key, sampling, want_grad):
    scores_N = jnp.asarray(scores_N)
    correction = _check_correction(correction)
    q_N, whole_N = _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling)
    keep_hits = sampling == "keep"
    # the positive's log Q (used by "logq" only; finite for any proposal)
    log_q_pos = jnp.asarray(np.log(whole_N[int(pos)]) if whole_N[int(pos)] > 0 else 0.0, scores_N.dtype)
    if correction == "logq" and not whole_N[int(pos)] > 0:
        raise ValueError("the logQ correction needs proposal_N[pos] > 0 (the positive is a candidate too)")
    if exact:
        return _enumerate(scores_N, pos, q_N, log_q_pos, int(num_negatives), correction, keep_hits, want_grad)
    if key is None:
        raise ValueError("key is required for Monte Carlo (exact=False)")
    if int(num_samples) < 2:
        raise ValueError(f"num_samples must be >= 2, got {num_samples}")
    # Bound each chunk's S x N gradient block to a few million entries.
    chunk = min(int(num_samples), max(64, 4_000_000 // scores_N.shape[0]) if want_grad else 65_536)
    return _monte_carlo(key, scores_N, jnp.asarray(pos), jnp.asarray(q_N, scores_N.dtype), log_q_pos,
                        num_negatives=int(num_negatives), num_samples=int(num_samples), chunk=chunk,
                        correction=correction, keep_hits=keep_hits, want_grad=want_grad)


def expected_sampled_grad(scores_N, pos, num_negatives, proposal_N, correction, *, exact=False,
                          num_samples=10_000, key=None, sampling="exclude") -> SampledGrad:
    """Expected score-space gradient of the sampled loss, E_S[d l_L / d s_N].

    Args:
      scores_N: model scores s(q, d) of one query over N documents.
      pos: index of the positive d+.
      num_negatives: K, negatives per sample.
      proposal_N: non-negative proposal weights over the N documents (need not be normalized).
      correction: "none", "logq" (standard) or "logq_negatives" (theory.objectives.CORRECTIONS).
      exact: enumerate all ordered samples instead of Monte Carlo.
      num_samples: Monte Carlo samples of K negatives.
      key: PRNG key, required unless `exact`.
      sampling: "exclude" (Q restricted to d != d+), "mask" (Q whole, hits of d+ dropped) or
        "keep" (Q whole, hits kept).

    Returns:
      SampledGrad(mean, standard_error), both shape (N,).

    Reference: docs/design.md, section 1 (optimization drift); Bengio & Senecal 2008 for logQ.

    >>> import jax.numpy as jnp
    >>> g = expected_sampled_grad(jnp.zeros(3), 0, 1, jnp.ones(3), "none", exact=True)
    >>> [round(float(x), 3) for x in g.mean]   # w_+ = 1/2; each negative is drawn half the time
    [-0.5, 0.25, 0.25]
    """
    mean_N, se_N = _moments(scores_N, pos, num_negatives, proposal_N, correction, exact, num_samples, key,
                            sampling, True)
    return SampledGrad(mean=mean_N, standard_error=se_N)


def gradient_bias(scores_N, pos, num_negatives, proposal_N, correction, *, exact=False,
                  num_samples=10_000, key=None, sampling="exclude") -> GradientBias:
    """Bias of the sampled gradient against the global one, E_S[grad l_L] - (softmax(s) - e_+).

    Args:
      scores_N, pos, num_negatives, proposal_N, correction, exact, num_samples, key, sampling: as in
        `expected_sampled_grad`.

    Returns:
      GradientBias(bias, standard_error, norm, cosine, direction_cosine); `cosine` is the cosine of
      the bias to the global gradient, `direction_cosine` that of the expected sampled gradient.

    Reference: docs/design.md, section 1 (optimization drift).

    >>> import jax.numpy as jnp
    >>> s = jnp.array([0.0, 1.0, -1.0, 0.5])
    >>> own = jnp.exp(s)   # proposal = the model's own softmax: the importance-weighted Z_S equals Z exactly
    >>> round(gradient_bias(s, 0, 2, own, "logq_negatives", exact=True).norm, 12)
    0.0
    """
    expected = expected_sampled_grad(scores_N, pos, num_negatives, proposal_N, correction, exact=exact,
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


def normalizer_deficit(scores_N, pos, num_negatives, proposal_N, correction, *, exact=False,
                       num_samples=100_000, key=None, sampling="exclude") -> NormalizerDeficit:
    """E[log Z_S] - log Z, by Monte Carlo (or enumeration), beside its closed-form approximation.

    Z_S is the sampled partition of the correction rule, l_L = -s+ + log Z_S (module docstring).
    Approximations (p = softmax(s), Q the sampling distribution, K negatives, J the documents a
    negative counts on: all of them under "keep", those other than d+ otherwise):
      "none": log(K sum_{j in J} Q_j p_j / (1 - p_+)), exactly -log((N-1)/K) for a uniform
        proposal under "exclude" (-log(N/K) under "mask"); it assumes the negatives hold the
        mass, spread over many documents.
      "logq_negatives" and "logq": the delta method. Z_S / Z = p_+ + c sum_i X_i with
        X_i = (p / Q)(d_i) 1[d_i in J] and c = 1/K ("logq_negatives") or Q(d+) ("logq"), so
        E log Z_S - log Z ~ log mu - var / (2 mu^2), mu = p_+ + c K m1, var = c^2 K (m2 - m1^2),
        m1 = sum_J p_j, m2 = sum_J p_j^2 / Q_j. For "logq_negatives" under "exclude", mu = 1 and
        this is -[sum_{j!=+} p_j^2 / Q_j - (1 - p_+)^2] / (2K), for a uniform proposal
        -[(N-1) sum_{j!=+} p_j^2 - (1 - p_+)^2] / (2K). It assumes var << mu^2.

    Args:
      scores_N, pos, num_negatives, proposal_N, correction, exact, key, sampling: as in
        `expected_sampled_grad`.
      num_samples: Monte Carlo samples of K negatives.

    Returns:
      NormalizerDeficit(monte_carlo, standard_error, approximation, error).

    Reference: docs/design.md, section 1 (optimization drift).

    >>> import jax.numpy as jnp
    >>> d = normalizer_deficit(jnp.zeros(5), 0, 2, jnp.ones(5), "none", exact=True)
    >>> round(d.monte_carlo, 4), round(d.approximation, 4)   # flat scores: log(3/5) and log(2/4)
    (-0.5108, -0.6931)
    """
    mean_1, se_1 = _moments(scores_N, pos, num_negatives, proposal_N, correction, exact, num_samples, key,
                            sampling, False)
    approximation = deficit_approximation(scores_N, pos, num_negatives, proposal_N, correction, sampling=sampling)
    monte_carlo = float(mean_1[0])
    return NormalizerDeficit(monte_carlo=monte_carlo, standard_error=float(se_1[0]),
                             approximation=approximation, error=approximation - monte_carlo)


def deficit_approximation(scores_N, pos, num_negatives, proposal_N, correction, *, sampling="exclude") -> float:
    """`normalizer_deficit`'s closed-form approximation alone (numpy, nothing compiled).

    >>> round(deficit_approximation(np.zeros(5), 0, 2, np.ones(5), "none"), 4)   # log(2/4)
    -0.6931
    """
    correction = _check_correction(correction)
    scores_N = np.asarray(scores_N, dtype=np.float64)
    q_N, whole_N = _sampling_distribution(scores_N, pos, num_negatives, proposal_N, sampling)
    p_N = scipy.special.softmax(scores_N)
    p_pos, num_negatives = p_N[int(pos)], int(num_negatives)
    counted = (q_N > 0) & ((np.arange(q_N.shape[0]) != int(pos)) | (sampling == "keep"))
    if correction == "none":
        approximation = math.log(num_negatives * float(q_N[counted] @ p_N[counted])) - math.log1p(-p_pos)
    else:
        c = 1.0 / num_negatives if correction == "logq_negatives" else whole_N[int(pos)]
        m1, m2 = float(np.sum(p_N[counted])), float(np.sum(np.square(p_N[counted]) / q_N[counted]))
        mu, var = p_pos + c * num_negatives * m1, c * c * num_negatives * (m2 - m1 * m1)
        approximation = math.log(mu) - var / (2.0 * mu * mu)
    return approximation
