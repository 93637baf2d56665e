"""Population fixed points of sampled softmax: the drift that no amount of training removes.

docs/design.md, section 1, "Optimization drift" (population fixed point, PMI target). For free scores
s_N of one query, `population_fixed_point` minimises the expected loss E_{d+ ~ p*} E_S[l_L] (or
the global loss) by sample-average approximation with common random numbers, solved in float64
with L-BFGS; the negatives follow the sampling models of `theory.drift` ("exclude" or "mask").
`pmi_target` is the large-K stationary point of uncorrected sampling with a proposal q.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from theory.drift import SAMPLING_MODES

__all__ = ["FixedPoint", "population_fixed_point", "pmi_target"]


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


_PRECONDITION_FLOOR = 1e-8


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

    Reference: docs/design.md, section 1 (population fixed point); Shapiro, Dentcheva & Ruszczynski,
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
            if sampling not in SAMPLING_MODES:
                raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
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
        # (floored: a peaked p*, e^-60 far from the mode, would overflow the scale and stall L-BFGS at
        # its first step; those documents' curvature is negligible either way)
        scale_N = 1.0 / np.sqrt(np.maximum(p_N, _PRECONDITION_FLOOR))

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

    Reference: docs/design.md, section 1 (PMI target); Levy & Goldberg 2014 (negative sampling as PMI).

    >>> import jax.numpy as jnp
    >>> t = pmi_target(jnp.array([0.5, 0.25, 0.25]), jnp.array([0.5, 0.25, 0.25]))
    >>> [round(float(x), 4) for x in jnp.exp(t)]   # proposal = truth: flat scores
    [0.3333, 0.3333, 0.3333]
    """
    log_ratio_N = jnp.log(jnp.asarray(p_true_N)) - jnp.log(jnp.asarray(proposal_N))
    return log_ratio_N - jax.nn.logsumexp(log_ratio_N)
