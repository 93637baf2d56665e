"""Negative proposals Q(.|q) for the sampled softmax, with the log Q that logQ correction needs.

- uniform: Q(d) = 1/N.
- popularity: the in-batch distribution, i.e. the marginal of training positives; negatives are
  drawn i.i.d. from it (which is what in-batch negatives of i.i.d. batches are, with K chosen freely).
- hard: uniform over the current model's top-P documents of the query (a pool refreshed every few
  hundred steps); Q(d|q) = 1/P on the pool.
- mixed: K/2 uniform and K/2 hard. The expected count of d in the sample is K Q_mix(d) with
  Q_mix = (1/N + 1[d in pool]/P) / 2, so log(K Q_mix) is the right correction for both halves.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SAMPLERS", "popularity_cdf", "sample_negatives", "needs_pool"]

SAMPLERS = ("uniform", "popularity", "hard", "mixed")


def needs_pool(sampler: str) -> bool:
    return sampler in ("hard", "mixed")


def popularity_cdf(pos_M: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """(cdf_N, log_q_N) of the empirical distribution of training positives."""
    counts = np.bincount(pos_M, minlength=n_docs).astype(np.float64)
    q = counts / counts.sum()
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    return np.cumsum(q).astype(np.float32), log_q.astype(np.float32)


def sample_negatives(sampler, key, batch_size, num_negatives, n_docs, *, pop_cdf_N=None, pop_log_q_N=None, pool_BxP=None):
    """Draw K negatives per query. Returns (neg_BxK indices, log Q(neg|q) as B x K)."""
    B, K = batch_size, num_negatives
    if sampler == "uniform":
        neg = jax.random.randint(key, (B, K), 0, n_docs)
        return neg, jnp.full((B, K), -jnp.log(n_docs))
    if sampler == "popularity":
        u = jax.random.uniform(key, (B, K), maxval=pop_cdf_N[-1])
        neg = jnp.minimum(jnp.searchsorted(pop_cdf_N, u, side="right"), n_docs - 1)
        return neg, pop_log_q_N[neg]
    P = pool_BxP.shape[1]
    if sampler == "hard":
        slot = jax.random.randint(key, (B, K), 0, P)
        return jnp.take_along_axis(pool_BxP, slot, axis=1), jnp.full((B, K), -jnp.log(P))
    if sampler == "mixed":
        k_uni, k_hard = jax.random.split(key)
        K_hard = K // 2
        uni = jax.random.randint(k_uni, (B, K - K_hard), 0, n_docs)
        hard = jnp.take_along_axis(pool_BxP, jax.random.randint(k_hard, (B, K_hard), 0, P), axis=1)
        neg = jnp.concatenate([uni, hard], axis=1)
        in_pool = jnp.any(neg[:, :, None] == pool_BxP[:, None, :], axis=2)
        q = 0.5 / n_docs + 0.5 * in_pool / P
        return neg, jnp.log(q)
    raise ValueError(f"sampler={sampler!r}: expected one of {SAMPLERS}")
