"""Negative proposals Q(.|q) for the sampled softmax: one object per proposal (docs/design.md, section 1).

A `Sampler` knows how to draw K negatives per query inside a compiled step (`draw`), the log Q of
any candidate, the positive included (`log_q`, which the standard logQ correction subtracts from
every candidate's logit), which device constants it needs (`constants`), whether it reads a pool of
the current model's top documents (`needs_pool`), the training settings it reads, which a sweep
record stores and its run_id hashes (`record_fields`: a pool sampler's pool size, refresh interval
and any setting of its own), its label in figures and tables (`label`), and its proposal over all N
documents as a numpy vector for the theory (`proposal_N`). The K negatives are i.i.d. draws from Q,
and accidental hits of d+ are the trainer's to keep or drop (sim.train): i.i.d. draws with hits kept
are what makes the logQ-corrected loss Fisher-consistent. Adding a proposal is one class here (a
subclass with its own `name` registers itself in SAMPLERS; experiments.variants names its DR
variants from it) and its test.

- uniform: Q(d) = 1/N.
- popularity: the marginal of training positives, which is what in-batch negatives of i.i.d.
  batches are (with K chosen freely). Drawn by Walker's alias method with 32-bit integer thresholds,
  so every document is drawn with its probability to about 2^-32 / N (a float32 cumulative sum is
  off by several per cent for the rare documents at N = 1e6). Every training positive has Q > 0.
- hard: a mixture Q = u/N + (1 - u) 1[d in pool]/P of a uniform component (share u, 0.1) and the
  current model's top-P documents of the query (a pool refreshed every few hundred steps), each
  negative drawn from the mixture. The uniform component gives every document, the positive
  included, Q > 0 whether or not the pool holds it: a pool alone gives a positive outside it log Q =
  -inf, and a proposal that depended on d+ (a pool with d+ added) would not be a proposal of the
  query alone, which consistency needs. `hard_denoised` builds the pool after removing the documents
  that hold the query's top p* mass (known on a synthetic corpus), as practitioners remove likely
  false negatives with a stronger model.
- mixed: the same mixture with u = 1/2 (half uniform, half hard, in expectation).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

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


def _alias_draw(key, threshold_N, alias_N, shape, n_docs):
    """Slots are drawn among the first n_docs (traced, where the tables are padded past them)."""
    k_slot, k_bits = jax.random.split(key)
    slot = jax.random.randint(k_slot, shape, 0, n_docs)
    bits = jax.random.bits(k_bits, shape, jnp.uint32)
    return jnp.where(bits < threshold_N[slot], slot, alias_N[slot])


class _Registry(Mapping):
    """Every proposal by name, in the order of definition; a class registers itself when defined and is
    instantiated (its defaults) when first asked for, after its dataclass decorator has run."""

    def __init__(self):
        self._classes: dict[str, type] = {}
        self._instances: dict[str, Sampler] = {}

    def add(self, cls) -> None:
        if cls.name in self._classes:
            raise ValueError(f"two samplers named {cls.name!r}: {self._classes[cls.name].__name__} and {cls.__name__}")
        self._classes[cls.name] = cls

    def __getitem__(self, name: str) -> Sampler:
        if name not in self._instances:
            self._instances[name] = self._classes[name]()
        return self._instances[name]

    def __iter__(self):
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


SAMPLERS: Mapping[str, Sampler] = _Registry()


@dataclasses.dataclass(frozen=True)
class Sampler:
    """The uniform proposal; subclasses override what differs. Every subclass with a `name` of its own
    is registered in SAMPLERS when it is defined (one instance, its defaults)."""

    name: ClassVar[str] = "uniform"
    label: ClassVar[str] = "uniform"  # how figures and tables name it
    needs_pool: ClassVar[bool] = False  # reads the model's top-P documents of each query (TrainConfig.hard_pool)
    denoise_pool: ClassVar[bool] = False  # build the hard pool without the documents holding the top p* mass

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            SAMPLERS.add(cls)

    def record_fields(self, train_cfg) -> dict:
        """The TrainConfig fields this proposal reads, as a sweep record stores them (so two pool
        sizes are two run_ids). Empty for a proposal that reads none, so its records keep their ids."""
        if not self.needs_pool:
            return {}
        return {"hard_pool": train_cfg.hard_pool, "hard_refresh": train_cfg.hard_refresh}

    def constants(self, pos_M: np.ndarray, n_docs: int) -> dict[str, np.ndarray]:
        """Device constants the draws read (computed once per training run)."""
        return {}

    def draw(self, key, batch_size: int, num_negatives: int, n_docs, consts: dict, pool_BxP=None):
        """neg_BxK: K i.i.d. document indices per query from Q, inside a compiled step. n_docs, the number
        of real documents, may be traced (the constants are then padded past it, sim.buckets)."""
        return jax.random.randint(key, (batch_size, num_negatives), 0, n_docs)

    def log_q(self, docs_BxJ, n_docs: int, consts: dict, pool_BxP=None):
        """log Q(d|q) of any documents (the positive and the negatives alike), B x J."""
        return jnp.full(docs_BxJ.shape, -jnp.log(n_docs))

    def proposal_N(self, n_docs: int, *, popularity_N=None, pool_N=None, num_negatives: int = 2) -> np.ndarray:
        """Q over all N documents (float64) for the theory; pool_N: the query's pool, as indices."""
        return np.full(n_docs, 1.0 / n_docs)


SAMPLERS.add(Sampler)


@dataclasses.dataclass(frozen=True)
class Popularity(Sampler):
    name: ClassVar[str] = "popularity"
    label: ClassVar[str] = "popularity"

    def constants(self, pos_M, n_docs):
        counts_N = np.bincount(pos_M, minlength=n_docs).astype(np.float64)
        threshold, alias = alias_table(counts_N)
        with np.errstate(divide="ignore"):
            log_q_N = np.log(counts_N / counts_N.sum())
        return {"pop_threshold": threshold, "pop_alias": alias, "pop_log_q": log_q_N.astype(np.float32)}

    def draw(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        return _alias_draw(key, consts["pop_threshold"], consts["pop_alias"], (batch_size, num_negatives), n_docs)

    def log_q(self, docs_BxJ, n_docs, consts, pool_BxP=None):
        return consts["pop_log_q"][docs_BxJ]

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
    """Each negative: uniform over all N with probability `uniform_share`, else uniform over the pool."""

    name: ClassVar[str] = "hard"
    label: ClassVar[str] = "hard"
    needs_pool: ClassVar[bool] = True
    uniform_share: float = 0.1

    def draw(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        k_side, k_uni, k_slot = jax.random.split(key, 3)
        shape = (batch_size, num_negatives)
        uniform_BxK = jax.random.randint(k_uni, shape, 0, n_docs)
        pooled_BxK = jnp.take_along_axis(pool_BxP, jax.random.randint(k_slot, shape, 0, pool_BxP.shape[1]), axis=1)
        return jnp.where(jax.random.uniform(k_side, shape) < self.uniform_share, uniform_BxK, pooled_BxK)

    def log_q(self, docs_BxJ, n_docs, consts, pool_BxP=None):
        in_pool_BxJ = jnp.any(docs_BxJ[:, :, None] == pool_BxP[:, None, :], axis=2)
        u, P = self.uniform_share, pool_BxP.shape[1]
        return jnp.log(u / n_docs + (1.0 - u) * in_pool_BxJ / P)

    def proposal_N(self, n_docs, *, popularity_N=None, pool_N=None, num_negatives=2):
        return self.uniform_share / n_docs + (1.0 - self.uniform_share) * _pool_N(n_docs, pool_N)


@dataclasses.dataclass(frozen=True)
class HardDenoised(Hard):
    """The hard mixture, its pool built without the documents that hold the query's top p* mass."""

    name: ClassVar[str] = "hard_denoised"
    label: ClassVar[str] = "hard, denoised"
    denoise_pool: ClassVar[bool] = True

    def record_fields(self, train_cfg):
        return {**super().record_fields(train_cfg), "denoise_mass": train_cfg.denoise_mass}


@dataclasses.dataclass(frozen=True)
class Mixed(Hard):
    """Half uniform, half hard, in expectation."""

    name: ClassVar[str] = "mixed"
    label: ClassVar[str] = "mixed"
    uniform_share: float = 0.5




def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise ValueError(f"sampler={name!r}: expected one of {tuple(SAMPLERS)}")
    return SAMPLERS[name]
