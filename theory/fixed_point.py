"""Population fixed points of sampled softmax: what the objective converges to with unlimited training.

docs/design.md, section 1, "Optimization drift" (population fixed point, PMI target). For free scores
s_N of one query, `population_fixed_point` minimises the expected loss E_{d+ ~ p*} E_S[l_L] (or
the global loss) in float64 with L-BFGS, the expectation over negatives either exact (every ordered
tuple, small N and K) or a sample-average approximation with common random numbers; the negatives
follow the sampling models of `theory.drift` ("exclude", "mask" or "keep") and the correction rules
of `theory.objectives`.

Closed forms (`fixed_point_closed_form`), with K i.i.d. negatives from Q and accidental hits kept:
the K + 1 candidates are one draw from p* and K from Q in random order, so the posterior that a
candidate is the positive is softmax over log(p*/Q); the sampled loss with logits s - c is the
cross-entropy against that posterior, a strictly proper score (ranking NCE, Ma & Collins 2018).
Hence, for any K:
- "logq" (every candidate corrected): s = log p* + const, Fisher-consistent for any proposal;
- "none": s = log p* - log Q + const (the PMI target), which is log p* for a uniform proposal;
- "logq_negatives" (the negatives only): no closed form in general, and biased. At N = 2, K = 1
  with Q = (q, 1 - q) its stationary ratio r = e^{s_2 - s_1} solves
  p_1 q (1 - q) r^2 + (p_1 (1 - q) - p_2 q) r - p_2 q (1 - q) = 0 (for p* = (0.8, 0.2) and a
  uniform Q: 0.8 r^2 + 1.2 r - 0.2 = 0, r = 0.151 against p_2 / p_1 = 0.25).
Dropping accidental hits ("mask") or drawing from Q without d+ ("exclude") breaks the exchangeability
the argument needs and adds a bias of order K/N, which `population_fixed_point` measures.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from grdr.theory.drift import SAMPLING_MODES, _check_correction

__all__ = ["FixedPoint", "population_fixed_point", "pmi_target", "fixed_point_closed_form",
           "negatives_rule_two_documents", "population_gradient"]

_MAX_ENUMERATED = 2_000_000  # positives x ordered tuples x K held by one exact objective


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


def _draw_distributions(q_N, sampling):
    """N x N: row d is the distribution a negative is drawn from when d is the positive."""
    num_docs = q_N.shape[0]
    q_NxN = np.broadcast_to(q_N, (num_docs, num_docs)).copy()
    if sampling == "exclude":
        np.fill_diagonal(q_NxN, 0.0)
        q_NxN /= q_NxN.sum(axis=1, keepdims=True)
    return q_NxN


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


def _all_tuples(num_docs, num_negatives):
    """N x T x K: every ordered tuple of K documents, the same for every positive."""
    tuples_TxK = np.array(list(itertools.product(range(num_docs), repeat=num_negatives)), np.int32)
    return np.broadcast_to(tuples_TxK, (num_docs, *tuples_TxK.shape))


@jax.jit
def _global_objective(scores_N, p_N):
    return jax.value_and_grad(lambda s_N: jax.nn.logsumexp(s_N) - p_N @ s_N)(scores_N)


@jax.jit
def _sampled_objective(scores_N, p_N, neg_NxSxK, offset_NxSxK, pos_offset_N, weight_NxS):
    """sum_d p_d sum_t w_dt l_L(s; d, S_dt) with logits s - offset: offset = log Q (standard rule),
    log(K Q) (negatives-only rule), 0 (plain) or +inf (dropped); the positive's is pos_offset_N."""
    def objective(s_N):
        pos_NxSx1 = jnp.broadcast_to((s_N - pos_offset_N)[:, None, None], (*neg_NxSxK.shape[:2], 1))
        logits_NxSx1K = jnp.concatenate([pos_NxSx1, s_N[neg_NxSxK] - offset_NxSxK], axis=2)
        loss_NxS = jax.nn.logsumexp(logits_NxSx1K, axis=2) - pos_NxSx1[:, :, 0]
        return p_N @ jnp.sum(weight_NxS * loss_NxS, axis=1)
    return jax.value_and_grad(objective)(scores_N)


_PRECONDITION_FLOOR = 1e-8
_NEWTON_STEPS = 8


def _sampled_terms(q_N, num_negatives, correction, sampling, exact, num_samples, key):
    """(negatives N x S x K, their offsets, the positives' offsets N, weights N x S) of the expected loss."""
    num_docs = q_N.shape[0]
    q_NxN = _draw_distributions(q_N, sampling)
    if exact:
        neg_NxSxK = _all_tuples(num_docs, num_negatives)
        weight_NxS = np.prod(np.take_along_axis(q_NxN[:, None, :], neg_NxSxK.reshape(num_docs, 1, -1), axis=2)
                             .reshape(neg_NxSxK.shape), axis=2)
    else:
        neg_NxSxK = _sample_negatives_per_positive(key, q_N, num_samples, num_negatives, sampling)
        weight_NxS = np.full(neg_NxSxK.shape[:2], 1.0 / num_samples)
    rows_Nx1x1 = np.arange(num_docs)[:, None, None]
    q_neg_NxSxK = q_NxN[rows_Nx1x1, neg_NxSxK]
    # Zero-mass draws (rounding; or the positive under "exclude") and, unless kept, hits of d+ drop out.
    valid_NxSxK = (q_neg_NxSxK > 0) & ((neg_NxSxK != rows_Nx1x1) | (sampling == "keep"))
    with np.errstate(divide="ignore"):
        log_q_NxSxK = np.log(q_neg_NxSxK)
        offset_NxSxK = {"none": np.zeros_like(q_neg_NxSxK), "logq": log_q_NxSxK,
                        "logq_negatives": np.log(num_negatives) + log_q_NxSxK}[correction]
        pos_offset_N = np.log(q_N) if correction == "logq" else np.zeros(num_docs)
    return neg_NxSxK, np.where(valid_NxSxK, offset_NxSxK, np.inf), pos_offset_N, weight_NxS


def population_fixed_point(p_true_N, num_negatives=None, proposal_N=None, correction="none", *,
                           num_samples=64, key=None, sampling="keep", exact=False, max_iter=5000,
                           gtol=1e-10) -> FixedPoint:
    """Free scores s_N minimising E_{d+ ~ p*} E_S[l_L(s; d+, S)] (or the global loss).

    The objective is convex in s_N and invariant to a shift. The expectation over d+ is exact (a
    p*-weighted sum over all N positives); the one over negatives is exact with `exact=True` (every
    ordered K-tuple, weighted by its probability: N^(K+1) terms) or a sample-average approximation
    with common random numbers: `num_samples` sets of K negatives per positive, drawn once (under
    the sampling model) and held fixed while L-BFGS (float64, preconditioned by p*) runs to
    convergence. A sample average fits its draws: its KL to p* is biased upward by about 1/S.

    Args:
      p_true_N: the true posterior p*(d|q), strictly positive (normalised here).
      num_negatives: K; None selects the global objective (proposal and correction unused).
      proposal_N: non-negative proposal weights over the N documents.
      correction: "none", "logq" (standard) or "logq_negatives" (theory.objectives.CORRECTIONS).
      num_samples: negative sets per positive in the sample-average approximation.
      key: PRNG key for the negative sets (required unless global or exact).
      sampling: "keep" (hits of d+ stay candidates, the default: the model under which the closed
        forms hold), "mask" or "exclude", as in `theory.drift`.
      exact: take the expectation over every ordered tuple instead of a sample average.
      max_iter: L-BFGS iteration cap.
      gtol: stopping tolerance on the preconditioned gradient.

    Returns:
      FixedPoint(scores, kl_to_truth, spearman, converged, iterations, grad_norm, objective).

    Reference: docs/design.md, section 1 (population fixed point); Ma & Collins 2018 (ranking NCE);
    Shapiro, Dentcheva & Ruszczynski, "Lectures on Stochastic Programming" ch. 5 (sample averages).

    >>> import numpy as np
    >>> p = np.array([0.5, 0.3, 0.2])
    >>> fp = population_fixed_point(p)          # global objective: softmax(s) = p*
    >>> np.round(np.exp(fp.scores), 6).tolist(), fp.kl_to_truth < 1e-10, fp.converged
    ([0.5, 0.3, 0.2], True, True)
    >>> q = np.array([0.6, 0.3, 0.1])           # standard logQ, every tuple: p* again, for any proposal
    >>> population_fixed_point(p, 2, q, "logq", exact=True).kl_to_truth < 1e-12
    True
    """
    p_N = np.asarray(p_true_N, dtype=np.float64)
    if p_N.ndim != 1 or p_N.shape[0] < 2:
        raise ValueError(f"p_true_N must be a vector over N >= 2 documents, got shape {p_N.shape}")
    if not np.all(np.isfinite(p_N)) or np.any(p_N <= 0):
        raise ValueError("p_true_N must be finite and strictly positive (a zero-mass document has no finite optimum)")
    p_N = p_N / p_N.sum()
    num_docs = p_N.shape[0]
    with jax.enable_x64(True):
        p_dev_N = jax.device_put(p_N)  # jnp.asarray of a numpy array compiles a program per shape
        if num_negatives is None:
            value_and_grad = functools.partial(_global_objective, p_N=p_dev_N)
        else:
            correction = _check_correction(correction)
            if proposal_N is None or (key is None and not exact):
                raise ValueError("the sampled objective needs proposal_N, and a key unless exact=True")
            if int(num_negatives) < 1 or int(num_samples) < 1:
                raise ValueError(f"num_negatives and num_samples must be >= 1, got {num_negatives}, {num_samples}")
            if sampling not in SAMPLING_MODES:
                raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
            q_N = np.asarray(proposal_N, dtype=np.float64)
            if q_N.shape != p_N.shape or not np.all(np.isfinite(q_N)) or np.any(q_N < 0):
                raise ValueError(f"proposal_N must be finite, non-negative, shape {p_N.shape}")
            q_N = q_N / q_N.sum()
            if np.any(q_N >= 1.0):
                raise ValueError("proposal_N must put mass on at least two documents")
            if correction == "logq" and np.any(q_N <= 0):
                raise ValueError("the logQ correction needs proposal_N > 0 wherever p* > 0 (every positive)")
            if exact and num_docs ** (int(num_negatives) + 1) * int(num_negatives) > _MAX_ENUMERATED:
                raise ValueError(f"exact=True at N = {num_docs}, K = {num_negatives} holds more than "
                                 f"{_MAX_ENUMERATED:,} terms; use a sample average")
            terms = _sampled_terms(q_N, int(num_negatives), correction, sampling, exact, int(num_samples), key)
            value_and_grad = functools.partial(_sampled_objective, p_N=p_dev_N,
                                               **dict(zip(("neg_NxSxK", "offset_NxSxK", "pos_offset_N", "weight_NxS"),
                                                          map(jax.device_put, terms))))
        # s = x / sqrt(p*): the curvature on document j scales like p*_j, so x is well conditioned.
        # (floored: a peaked p*, e^-60 far from the mode, would overflow the scale and stall L-BFGS at
        # its first step; those documents' curvature is negligible either way)
        scale_N = 1.0 / np.sqrt(np.maximum(p_N, _PRECONDITION_FLOOR))

        def fun(x_N):
            value, grad_N = value_and_grad(jax.device_put(x_N * scale_N))
            return float(value), np.asarray(grad_N, dtype=np.float64) * scale_N

        result = scipy.optimize.minimize(fun, np.zeros(num_docs), jac=True, method="L-BFGS-B",
                                         options=dict(maxiter=int(max_iter), maxfun=2 * int(max_iter),
                                                      gtol=gtol, ftol=1e-15, maxcor=20))
        scores_N = result.x * scale_N
        if exact:   # small N: polish with Newton steps (least squares: the Hessian is singular along a shift)
            hessian = jax.jit(jax.jacfwd(lambda s_N: value_and_grad(s_N)[1]))
            for _ in range(_NEWTON_STEPS):
                grad_N = np.asarray(value_and_grad(jnp.asarray(scores_N))[1])
                if np.max(np.abs(grad_N)) < 1e-15:
                    break
                scores_N = scores_N - np.linalg.lstsq(np.asarray(hessian(jnp.asarray(scores_N))), grad_N,
                                                      rcond=1e-12)[0]
            result.jac = np.asarray(value_and_grad(jnp.asarray(scores_N))[1]) * scale_N
    scores_N = scores_N - scipy.special.logsumexp(scores_N)
    grad_norm = float(np.max(np.abs(result.jac)))
    kl = float(p_N @ (np.log(p_N) - scores_N))
    spearman = float(scipy.stats.spearmanr(scores_N, p_N).statistic)
    return FixedPoint(scores=scores_N, kl_to_truth=kl, spearman=spearman,
                      converged=bool(result.success) or grad_norm <= gtol, iterations=int(result.nit),
                      grad_norm=grad_norm, objective=float(result.fun))


@jax.jit
def pmi_target(p_true_N, proposal_N) -> jax.Array:
    """Stationary scores of uncorrected sampled softmax with proposal q: log p* - log q (the PMI target).

    With accidental hits kept this is the population minimiser for every K (the module docstring's
    ranking-NCE argument); with hits dropped, it is the large-K limit, where the sampled partition is
    dominated by K sum_j q_j e^{s_j}. Rare documents (small q) are over-ranked.

    Args:
      p_true_N: true posterior p*(d|q), positive.
      proposal_N: proposal probabilities q(d), positive.

    Returns:
      The target scores, shape (N,), normalised as log-probabilities (logsumexp 0).

    Reference: docs/design.md, section 1 (PMI target); Levy & Goldberg 2014 (negative sampling as PMI).

    >>> import jax.numpy as jnp
    >>> t = pmi_target(jnp.array([0.5, 0.25, 0.25]), jnp.array([0.5, 0.25, 0.25]))
    >>> [round(float(x), 4) for x in jnp.exp(t)]   # proposal = truth: flat scores
    [0.3333, 0.3333, 0.3333]
    """
    log_ratio_N = jnp.log(jnp.asarray(p_true_N)) - jnp.log(jnp.asarray(proposal_N))
    return log_ratio_N - jax.nn.logsumexp(log_ratio_N)


def negatives_rule_two_documents(p_first: float, q_first: float = 0.5) -> float:
    """The stationary ratio r = e^{s_2 - s_1} of the negatives-only logQ rule at N = 2, K = 1, hits kept.

    The expected loss is p_1 (1 - q) log(1 + r / (1 - q)) + p_2 q log(1 + 1 / (q r)) plus constants
    (a hit of d+ gives a loss that does not depend on the scores), whose stationarity is
    p_1 q (1 - q) r^2 + (p_1 (1 - q) - p_2 q) r - p_2 q (1 - q) = 0, with one positive root.

    Args:
      p_first: p*(d_1); p*(d_2) = 1 - p_first.
      q_first: the proposal's Q(d_1); Q(d_2) = 1 - q_first.

    Returns:
      r; the consistent value would be p_2 / p_1.

    >>> round(negatives_rule_two_documents(0.8), 6)   # 0.8 r^2 + 1.2 r - 0.2 = 0 (uniform Q)
    0.151388
    """
    p1, q = float(p_first), float(q_first)
    if not (0 < p1 < 1 and 0 < q < 1):
        raise ValueError(f"p_first={p_first} and q_first={q_first}: expected both in (0, 1)")
    p2, q2 = 1.0 - p1, 1.0 - q
    a, b, c = p1 * q * q2, p1 * q2 - p2 * q, -p2 * q * q2
    return float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))


def fixed_point_closed_form(p_true_N, proposal_N, correction: str) -> np.ndarray:
    """The population minimiser of the sampled loss, hits kept, for any K, as log-probabilities (float64).

    "logq": log p*; "none": the PMI target log p* - log Q (normalised). The negatives-only rule has no
    closed form beyond N = 2, K = 1 (`negatives_rule_two_documents`): ValueError.

    >>> import numpy as np
    >>> np.exp(fixed_point_closed_form([0.5, 0.5], [0.8, 0.2], "none")).round(2).tolist()
    [0.2, 0.8]
    """
    correction = _check_correction(correction)
    p_N, q_N = np.asarray(p_true_N, np.float64), np.asarray(proposal_N, np.float64)
    if correction == "logq_negatives":
        raise ValueError("the negatives-only rule has no closed-form fixed point (see negatives_rule_two_documents)")
    log_N = np.log(p_N / p_N.sum()) - (np.log(q_N / q_N.sum()) if correction == "none" else 0.0)
    return log_N - scipy.special.logsumexp(log_N)


@functools.partial(jax.jit, static_argnames=("correction", "keep_hits"))
def _population_grad_chunk(scores_N, pos_C, neg_CxK, q_N, correction, keep_hits):
    from grdr.theory.drift import _per_sample

    def one(pos, neg_K):
        return _per_sample(scores_N, pos, neg_K[None, :], q_N, jnp.log(q_N[pos]), correction, keep_hits, True)[0]

    g_CxN = jax.vmap(one)(pos_C, neg_CxK)
    return g_CxN.sum(axis=0), jnp.square(g_CxN).sum(axis=0)


def population_gradient(scores_N, p_true_N, num_negatives, proposal_N, correction, *, num_samples=20_000, key,
                        sampling="keep", chunk=1_000) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo E_{d+ ~ p*} E_S[d l_L / d s_N] at given scores, with its standard error (float64).

    Zero at a population fixed point: at a closed form (`fixed_point_closed_form`) the mean over the
    standard error is a z-score, so a closed form is checked at any N where enumeration is out of reach.

    Args:
      scores_N: the scores to evaluate at.
      p_true_N, num_negatives, proposal_N, correction: as in `population_fixed_point`.
      num_samples: draws of (d+, K negatives).
      key: PRNG key.
      sampling: "keep" or "mask" (the proposal is the same for every positive).
      chunk: draws per compiled call (bounds the chunk x N gradient block).

    Returns:
      (mean_N, standard_error_N).

    >>> import jax, numpy as np
    >>> p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
    >>> g, se = population_gradient(np.log(p), p, 2, q, "logq", num_samples=4_000, key=jax.random.key(0))
    >>> bool(np.all(np.abs(g) <= 4 * se + 1e-12))     # log p* is the standard rule's fixed point
    True
    """
    correction = _check_correction(correction)
    if sampling not in ("keep", "mask"):
        raise ValueError(f"sampling must be 'keep' or 'mask' here, got {sampling!r}")
    p_N = np.asarray(p_true_N, np.float64) / np.sum(p_true_N)
    q_N = np.asarray(proposal_N, np.float64) / np.sum(proposal_N)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    total_N, square_N, done = 0.0, 0.0, 0
    with jax.enable_x64(True):
        s_N, q_dev = jnp.asarray(scores_N, jnp.float64), jnp.asarray(q_N)
        while done < num_samples:
            c = min(chunk, num_samples - done)   # at most two shapes: full chunks and the tail
            pos_C = rng.choice(p_N.shape[0], size=c, p=p_N)
            neg_CxK = rng.choice(q_N.shape[0], size=(c, int(num_negatives)), p=q_N)
            part, part_sq = _population_grad_chunk(s_N, jnp.asarray(pos_C), jnp.asarray(neg_CxK), q_dev, correction,
                                                   sampling == "keep")
            total_N, square_N, done = total_N + np.asarray(part), square_N + np.asarray(part_sq), done + c
    mean_N = total_N / done
    var_N = np.maximum(square_N / done - mean_N ** 2, 0.0) * done / max(done - 1, 1)
    return mean_N, np.sqrt(var_N / done)
