"""The theory's drift quantities on a synthetic corpus, composed from theory/ (docs/design.md, section 1).

Two uses:
- `truth_predictions`: what the theory predicts for a local objective from the true posterior of a
  few test queries alone (no trained model): the KL to p* of its population fixed point (the drift
  no training removes), the normalizer deficit E log Z_S - log Z at the truth (closed form), and the
  chance that K negatives hold one of the truth's confusers (about K k / N).
- `model_predictions`: the same quantities on a trained model's own scores, beside the gradient
  bias of its sampled objective (Monte Carlo against the closed forms). Every quantity is a function
  of a query's score vector s_N alone (the theory's free scores), so the scores come from the
  model's scorer (`sim.scorers.scorer_of`, docs/design.md, section 2): any DR similarity, MaxSim
  included, and AtomicGR's dot product.

Proposals follow sim.samplers, with draws that hit d+ dropped ("mask"). For the popularity
proposal the fixed point uses the population marginal E_q p*(d|q) over the training queries (the
sample marginal gives documents that were never a positive zero mass, and such a document has no
finite fixed point); hard negatives from a fixed pool have no fixed point (documents outside the
pool are never pushed down), so those stay NaN. The fixed point is a sample-average approximation:
with few negative sets per positive its free scores fit the draws and its KL is biased upward, so
the sample count is stored beside it.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import scipy.special

from sim.corpus import Corpus, log_posterior_rows, posterior_marginal
from sim.samplers import get_sampler
from sim.scorers import scorer_of
from theory import (confuser_coverage, confusers, gradient_bias, normalizer_deficit, population_fixed_point)

__all__ = ["FixedPointBudget", "fixed_point_samples", "truth_predictions", "model_predictions"]

_MIN_DRAWS = 15.0


@dataclasses.dataclass(frozen=True)
class FixedPointBudget:
    """How the population fixed point is solved."""

    samples: int = 16
    """Negative sets per positive in the sample average (at least; more where the proposal is sparse)."""
    max_samples: int = 512
    """Above this many sets no fixed point is stored rather than a degenerate one."""
    max_entries: int = 20_000_000
    """N x sets x K negatives held by one sample average, at the most."""
    max_iter: int = 400
    """L-BFGS iterations (gtol 1e-4 on the preconditioned gradient)."""

    def __post_init__(self):
        for field in ("samples", "max_samples", "max_entries", "max_iter"):
            if getattr(self, field) < 1:
                raise ValueError(f"FixedPointBudget.{field}={getattr(self, field)}: expected at least 1")


def fixed_point_samples(budget: FixedPointBudget, proposal_N: np.ndarray, num_negatives: int) -> int:
    """Negative sets per positive: enough that even the rarest document is expected `_MIN_DRAWS`
    times over all N positives (a document never drawn is only ever pushed up, and the sample
    problem then has no minimiser); all N are drawn with probability about 1 - N e^-15."""
    q_N = proposal_N / proposal_N.sum()
    need = _MIN_DRAWS / ((q_N.shape[0] - 1) * num_negatives * q_N.min())
    return int(max(budget.samples, np.ceil(need)))


def _truth_rows(corpus: Corpus, n_queries: int) -> np.ndarray:
    logp_mxN = log_posterior_rows(corpus, corpus.test, 0, n_queries).astype(np.float64)
    return logp_mxN - scipy.special.logsumexp(logp_mxN, axis=1, keepdims=True)


def _fixed_point(p_N, sampler, logq, K, proposal_N, budget, key):
    """(KL of the fixed point, sets used), or (NaN, NaN) where none is defined or affordable."""
    if get_sampler(sampler).needs_pool:
        return np.nan, np.nan
    S = fixed_point_samples(budget, proposal_N, K)
    if S > budget.max_samples or p_N.shape[0] * S * K > budget.max_entries:
        return np.nan, np.nan
    fp = population_fixed_point(p_N, K, proposal_N, logq, num_samples=S, key=key, sampling="mask",
                                max_iter=budget.max_iter, gtol=1e-4)
    return fp.kl_to_truth, float(S)


def _proposal(corpus: Corpus, sampler: str, K: int, scores_N=None, pool_size=32, popularity_N=None):
    s = get_sampler(sampler)
    pool = None if scores_N is None or not s.needs_pool else np.argsort(-scores_N, kind="stable")[:pool_size]
    if s.needs_pool and pool is None:
        return None
    return s.proposal_N(corpus.n_docs, popularity_N=popularity_N, pool_N=pool, num_negatives=K)


def truth_predictions(corpus: Corpus, sampler: str, logq: bool, K: int, n_queries: int,
                      budget: FixedPointBudget = FixedPointBudget(), seed: int = 0) -> dict[str, float]:
    """The theory's predictions for a local objective on the first `n_queries` test queries' p*.

    Returns flat metrics: fixed_point_kl, fixed_point_samples, predicted_deficit (closed form at
    the truth), truth_confusers and predicted_coverage (K k / N, the chance of seeing a confuser).
    """
    logp_mxN = _truth_rows(corpus, n_queries)
    popularity_N = posterior_marginal(corpus, corpus.train) if sampler == "popularity" else None
    rows = []
    for j, logp_N in enumerate(logp_mxN):
        pos = int(corpus.test.pos_M[j])
        q_N = _proposal(corpus, sampler, K, popularity_N=popularity_N)
        fp_kl, fp_s = (np.nan, np.nan) if q_N is None else _fixed_point(
            np.exp(logp_N), sampler, logq, K, q_N, budget, jax.random.key(seed * 1_000 + j))
        k, _ = confusers(logp_N, pos)
        deficit = (normalizer_deficit(logp_N, pos, K, q_N, logq, num_samples=2, key=jax.random.key(j),
                                      sampling="mask").approximation if q_N is not None else np.nan)
        rows.append({"fixed_point_kl": fp_kl, "fixed_point_samples": fp_s, "predicted_deficit": deficit,
                     "truth_confusers": float(k),
                     "predicted_coverage": confuser_coverage(corpus.n_docs, K, k).approximation})
    return {name: _nanmean([r[name] for r in rows]) for name in rows[0]}


def model_predictions(model, corpus: Corpus, sampler: str, logq: bool, K: int, n_queries: int, *,
                      mc_samples: int, fixed_point_queries: int, pool_size: int, seed: int,
                      budget: FixedPointBudget = FixedPointBudget(), cache: dict | None = None) -> dict[str, float]:
    """The drift quantities on a trained model's own scores for the first `n_queries` test queries.

    Returns flat metrics: kl_sample (the model's KL on these queries), kl_fixed_point_queries (the same on the
    fixed-point queries only), fixed_point_kl, fixed_point_samples, grad_bias_norm, grad_bias_cosine,
    grad_direction_cosine, deficit_mc, deficit_se, deficit_approx, confusers, coverage_uniform,
    coverage_uniform_approx, coverage_proposal. `cache` shares fixed points between the seeds of a
    point on one corpus.
    """
    cache = {} if cache is None else cache
    N = corpus.n_docs
    q_mxD = model.encode_queries(corpus.test.features_MxF[:n_queries])
    emb_NxD, bias_N = model.doc_table(None, corpus.doc_features_NxF)
    scores_mxN = np.asarray(scorer_of(model).scores(q_mxD, emb_NxD), np.float64)
    scores_mxN = scores_mxN + np.asarray(bias_N, np.float64)[None, :]
    logp_mxN = _truth_rows(corpus, n_queries)
    counts_N = np.bincount(corpus.train.pos_M, minlength=N).astype(np.float64)
    train_pop_N = counts_N / counts_N.sum()
    if sampler == "popularity" and ("popularity", id(corpus)) not in cache:
        cache[("popularity", id(corpus))] = posterior_marginal(corpus, corpus.train)
    rows = []
    for j in range(n_queries):
        s_N, logp_N, pos = scores_mxN[j], logp_mxN[j], int(corpus.test.pos_M[j])
        key = jax.random.fold_in(jax.random.key(seed), j)
        q_N = _proposal(corpus, sampler, K, s_N, pool_size, train_pop_N)
        bias = gradient_bias(s_N, pos, K, q_N, logq, num_samples=mc_samples, key=key, sampling="mask")
        deficit = normalizer_deficit(s_N, pos, K, q_N, logq, num_samples=mc_samples, key=key, sampling="mask")
        k, order = confusers(s_N, pos)
        coverage = confuser_coverage(N, K, k)
        # the same event under the run's own proposal (with replacement, hits of d+ dropped)
        coverage_q = 1.0 - (1.0 - q_N[order[:k]].sum() / q_N.sum()) ** K
        fp_kl = fp_s = np.nan
        if j < fixed_point_queries and not get_sampler(sampler).needs_pool:
            fp_q_N = cache[("popularity", id(corpus))] if sampler == "popularity" else q_N
            fp_key = (id(corpus), j, logq, sampler)
            if fp_key not in cache:
                cache[fp_key] = _fixed_point(np.exp(logp_N), sampler, logq, K, fp_q_N, budget,
                                             jax.random.key(corpus.spec.seed % 2**31 + j))
            fp_kl, fp_s = cache[fp_key]
        kl = float(np.exp(logp_N) @ (logp_N - scipy.special.log_softmax(s_N)))
        rows.append({
            "kl_sample": kl, "kl_fixed_point_queries": kl if np.isfinite(fp_kl) else np.nan,
            "fixed_point_kl": fp_kl, "fixed_point_samples": fp_s,
            "grad_bias_norm": bias.norm, "grad_bias_cosine": bias.cosine,
            "grad_direction_cosine": bias.direction_cosine,
            "deficit_mc": deficit.monte_carlo, "deficit_se": deficit.standard_error,
            "deficit_approx": deficit.approximation,
            "confusers": float(k), "coverage_uniform": coverage.exact,
            "coverage_uniform_approx": coverage.approximation, "coverage_proposal": float(coverage_q),
        })
    # fixed-point fields are NaN off the fixed-point queries: average over the queries that have one
    return {name: _nanmean([r[name] for r in rows]) for name in rows[0]}


def _nanmean(values) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
