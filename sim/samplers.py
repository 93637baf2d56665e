"""Negative proposals Q(.|q) for the sampled softmax: one object per proposal (docs/design.md, section 1).

A `Sampler` knows how to draw K negatives per query inside a compiled step (`draw`, returning the
log Q the logQ correction needs), which device constants it needs (`constants`), whether it reads
a pool of the current model's top documents (`needs_pool`), and its proposal over all N documents
as a numpy vector for the theory (`proposal_N`). Adding a proposal is one class here and its test.

- uniform: Q(d) = 1/N.
- popularity: i.i.d. draws from the marginal of training positives, which is what in-batch
  negatives of i.i.d. batches are (with K chosen freely). Drawn by Walker's alias method with
  32-bit integer thresholds, so every document is drawn with its probability to about 2^-32 / N
  (a float32 cumulative sum is off by several per cent for the rare documents at N = 1e6).
- hard: uniform over the current model's top-P documents of the query (a pool refreshed every few
  hundred steps); Q(d|q) = 1/P on the pool. `hard_denoised` builds the pool after removing the
  documents that hold the query's top p* mass (known on a synthetic corpus), as practitioners
  remove likely false negatives with a stronger model.
- mixed: K - K//2 uniform and K//2 hard draws. The expected count of d in the sample is
  (K - K//2)/N + (K//2) 1[d in pool]/P = K Q_mix(d), so log(K Q_mix) corrects both parts, for odd
  K as well.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Sampler", "SAMPLERS", "get_sampler", "alias_table", "alias_probabilities"]


def alias_table(q_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables (threshold as uint32 fraction of 2^32, alias index) of weights q_N.

    Drawing slot j uniformly and keeping j when a uniform 32-bit word is below threshold[j], else
    taking alias[j], gives d with probability (q_d N) / N up to 2^-32 per slot.
    """
    q = np.asarray(q_N, np.float64)
    n = q.shape[0]
    scaled = q / q.sum() * n
    alias = np.arange(n, dtype=np.int64)
    prob = np.ones(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # what is left is 1 up to rounding: keep itself
    threshold = np.minimum(np.round(prob * 2.0**32), 2.0**32 - 1).astype(np.uint32)
    alias[threshold == np.uint32(2**32 - 1)] = np.flatnonzero(threshold == np.uint32(2**32 - 1))
    return threshold, alias.astype(np.int32)


def alias_probabilities(threshold_N: np.ndarray, alias_N: np.ndarray) -> np.ndarray:
    """The exact draw probabilities that alias tables imply (float64), for tests and checks."""
    n = threshold_N.shape[0]
    keep_N = threshold_N.astype(np.float64) / 2.0**32
    p = keep_N / n
    np.add.at(p, alias_N, (1.0 - keep_N) / n)
    return p


def _alias_draw(key, threshold_N, alias_N, shape):
    k_slot, k_bits = jax.random.split(key)
    slot = jax.random.randint(k_slot, shape, 0, threshold_N.shape[0])
    bits = jax.random.bits(k_bits, shape, jnp.uint32)
    return jnp.where(bits < threshold_N[slot], slot, alias_N[slot])


@dataclasses.dataclass(frozen=True)
class Sampler:
    """The uniform proposal; subclasses override what differs."""

    name: str = "uniform"
    needs_pool: bool = False
    denoise_pool: bool = False  # build the hard pool without the documents holding the top p* mass

    def constants(self, pos_M: np.ndarray, n_docs: int) -> dict[str, np.ndarray]:
        """Device constants the draws read (computed once per training run)."""
        return {}

    def draw(self, key, batch_size: int, num_negatives: int, n_docs: int, consts: dict, pool_BxP=None):
        """(neg_BxK document indices, log Q(neg|q) as B x K), inside a compiled step."""
        neg = jax.random.randint(key, (batch_size, num_negatives), 0, n_docs)
        return neg, jnp.full((batch_size, num_negatives), -jnp.log(n_docs))

    def proposal_N(self, n_docs: int, *, popularity_N=None, pool_N=None, num_negatives: int = 2) -> np.ndarray:
        """Q over all N documents (float64) for the theory; pool_N: the query's pool, as indices."""
        return np.full(n_docs, 1.0 / n_docs)


@dataclasses.dataclass(frozen=True)
class Popularity(Sampler):
    name: str = "popularity"

    def constants(self, pos_M, n_docs):
        counts_N = np.bincount(pos_M, minlength=n_docs).astype(np.float64)
        threshold, alias = alias_table(counts_N)
        with np.errstate(divide="ignore"):
            log_q_N = np.log(counts_N / counts_N.sum())
        return {"pop_threshold": threshold, "pop_alias": alias, "pop_log_q": log_q_N.astype(np.float32)}

    def draw(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        neg = _alias_draw(key, consts["pop_threshold"], consts["pop_alias"], (batch_size, num_negatives))
        return neg, consts["pop_log_q"][neg]

    def proposal_N(self, n_docs, *, popularity_N=None, pool_N=None, num_negatives=2):
        if popularity_N is None:
            raise ValueError("the popularity proposal needs popularity_N")
        return np.asarray(popularity_N, np.float64) / np.sum(popularity_N)


def _pool_N(n_docs, pool_N):
    if pool_N is None:
        raise ValueError("a pool proposal needs pool_N (the query's pool of documents)")
    mask = np.zeros(n_docs)
    mask[np.asarray(pool_N)] = 1.0
    return mask / mask.sum()


@dataclasses.dataclass(frozen=True)
class Hard(Sampler):
    name: str = "hard"
    needs_pool: bool = True

    def draw(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        P = pool_BxP.shape[1]
        slot = jax.random.randint(key, (batch_size, num_negatives), 0, P)
        return jnp.take_along_axis(pool_BxP, slot, axis=1), jnp.full((batch_size, num_negatives), -jnp.log(P))

    def proposal_N(self, n_docs, *, popularity_N=None, pool_N=None, num_negatives=2):
        return _pool_N(n_docs, pool_N)


@dataclasses.dataclass(frozen=True)
class Mixed(Sampler):
    name: str = "mixed"
    needs_pool: bool = True

    def draw(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        k_uni, k_hard = jax.random.split(key)
        K, K_hard, P = num_negatives, num_negatives // 2, pool_BxP.shape[1]
        uni = jax.random.randint(k_uni, (batch_size, K - K_hard), 0, n_docs)
        hard = jnp.take_along_axis(pool_BxP, jax.random.randint(k_hard, (batch_size, K_hard), 0, P), axis=1)
        neg = jnp.concatenate([uni, hard], axis=1)
        in_pool = jnp.any(neg[:, :, None] == pool_BxP[:, None, :], axis=2)
        q = (K - K_hard) / K / n_docs + (K_hard / K) * in_pool / P
        return neg, jnp.log(q)

    def proposal_N(self, n_docs, *, popularity_N=None, pool_N=None, num_negatives=2):
        K, K_hard = num_negatives, num_negatives // 2
        return (K - K_hard) / K / n_docs + (K_hard / K) * _pool_N(n_docs, pool_N)


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (
    Sampler(), Popularity(), Hard(), Hard(name="hard_denoised", denoise_pool=True), Mixed())}


def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"sampler={name!r}: expected one of {tuple(SAMPLERS)}")
    return SAMPLERS[name]
