"""The theory's drift quantities on a synthetic corpus, composed from theory/ (docs/design.md, section 1).

Two uses:
- `truth_predictions`: what the theory predicts for a local objective from the true posterior of the
  first test queries alone (no trained model): the KL to p* of its population fixed point, the
  normalizer deficit E log Z_S - log Z at the truth (closed form), and the chance that K negatives
  hold one of the truth's confusers (about K k / N).
- `model_predictions`: the same quantities on a trained model's own scores, beside the gradient
  bias of its sampled objective (Monte Carlo against the closed forms) and the PMI slope: how far
  the model's score error follows -log Q, the direction in which uncorrected sampling from Q pulls.
  Every quantity is a function of a query's score vector s_N alone (the theory's free scores), so
  the scores come from the model's scorer (`sim.scorers.scorer_of`, docs/design.md, section 2): any
  DR similarity, MaxSim included, and AtomicGR's dot product.

The negatives follow sim.train: i.i.d. from the proposal, accidental hits of d+ kept, the standard
logQ rule. The population fixed point then has a closed form (theory.fixed_point_closed_form): log p*
for the logQ-corrected objective with any proposal and for plain uniform sampling (KL 0 exactly:
no population drift), the PMI target log p* - log Q for plain sampling from Q. For the popularity
proposal the fixed point uses the population marginal E_q p*(d|q) over the training queries (the
sample marginal gives documents that were never a positive zero mass). A hard pool is refreshed
from the model itself, so the proposal it stands for is not fixed: those rows stay NaN.
"""
from __future__ import annotations

import jax
import numpy as np
import scipy.special

from grdr.sim.corpus import Corpus, log_posterior_rows, posterior_marginal
from grdr.sim.samplers import get_sampler
from grdr.sim.evaluate import model_scores
from grdr.theory import (confuser_coverage, confusers, deficit_approximation, fixed_point_closed_form, gradient_bias,
                    normalizer_deficit)

__all__ = ["truth_predictions", "model_predictions", "fixed_point_kl", "pmi_slope"]

_SAMPLING = "keep"   # as sim.train (accidental_hits="keep")


def _truth_rows(corpus: Corpus, n_queries: int) -> np.ndarray:
    logp_mxN = log_posterior_rows(corpus, corpus.test, 0, n_queries).astype(np.float64)
    return logp_mxN - scipy.special.logsumexp(logp_mxN, axis=1, keepdims=True)


def fixed_point_kl(logp_N: np.ndarray, sampler: str, logq: bool, proposal_N) -> float:
    """KL(p* || population fixed point) of the local objective (hits kept), or NaN for a hard pool."""
    if get_sampler(sampler).needs_pool or proposal_N is None:
        return float("nan")
    fixed_N = fixed_point_closed_form(np.exp(logp_N), proposal_N, "logq" if logq else "none")
    return float(np.exp(logp_N) @ (logp_N - fixed_N))


def pmi_slope(scores_N: np.ndarray, logp_N: np.ndarray, proposal_N: np.ndarray) -> float:
    """Least-squares slope of the model's centred score error s - log p* on the centred -log Q, weighted by
    p* (where the mass is): 1 at the PMI target of plain sampling from Q, 0 at a consistent fixed point."""
    w_N = np.exp(logp_N)
    x_N = -np.log(proposal_N)
    y_N = scores_N - logp_N
    x_N, y_N = x_N - w_N @ x_N, y_N - w_N @ y_N
    denom = w_N @ (x_N * x_N)
    return float(w_N @ (x_N * y_N) / denom) if denom > 1e-12 else float("nan")


def _proposal(corpus: Corpus, sampler: str, K: int, scores_N=None, pool_size=32, popularity_N=None):
    s = get_sampler(sampler)
    pool = None if scores_N is None or not s.needs_pool else np.argsort(-scores_N, kind="stable")[:pool_size]
    if s.needs_pool and pool is None:
        return None
    return s.proposal_N(corpus.n_docs, popularity_N=popularity_N, pool_N=pool, num_negatives=K)


def truth_predictions(corpus: Corpus, sampler: str, logq: bool, K: int, n_queries: int) -> dict[str, float]:
    """The theory's predictions for a local objective on the first `n_queries` test queries' p*.

    Returns flat metrics, each a mean over the queries with its standard error (`<name>_se`):
    fixed_point_kl (exact), predicted_deficit (closed form at the truth), truth_confusers and
    predicted_coverage (K k / N, the chance of seeing a confuser).
    """
    logp_mxN = _truth_rows(corpus, n_queries)
    popularity_N = posterior_marginal(corpus, corpus.train) if sampler == "popularity" else None
    q_N = _proposal(corpus, sampler, K, popularity_N=popularity_N)
    rows = []
    for j, logp_N in enumerate(logp_mxN):
        pos = int(corpus.test.pos_M[j])
        k, _ = confusers(logp_N, pos)
        deficit = (deficit_approximation(logp_N, pos, K, q_N, "logq" if logq else "none", sampling=_SAMPLING)
                   if q_N is not None else np.nan)
        rows.append({"fixed_point_kl": fixed_point_kl(logp_N, sampler, logq, q_N), "predicted_deficit": deficit,
                     "truth_confusers": float(k),
                     "predicted_coverage": confuser_coverage(corpus.n_docs, K, k).approximation})
    return _mean_and_se(rows)


def model_predictions(model, corpus: Corpus, sampler: str, logq: bool, K: int, n_queries: int, *,
                      mc_samples: int, pool_size: int, seed: int) -> dict[str, float]:
    """The drift quantities on a trained model's own scores for the first `n_queries` test queries.

    Returns flat metrics (means over the queries; `<name>_se` their standard errors): kl_sample (the
    model's KL on these queries), fixed_point_kl, pmi_slope (against the run's proposal; NaN for a
    uniform one), grad_bias_norm, grad_bias_cosine, grad_direction_cosine, deficit_mc, deficit_se,
    deficit_approx (NaN for a query whose positive the proposal cannot draw under logQ; `unseen_positive`
    is the share of such queries), confusers, coverage_uniform, coverage_uniform_approx, coverage_proposal.
    """
    N = corpus.n_docs
    # by the model's scorer, in one compiled program (sim.evaluate.model_scores)
    scores_mxN = model_scores(model, corpus.test.features_MxF[:n_queries], corpus.doc_features_NxF).astype(np.float64)
    logp_mxN = _truth_rows(corpus, n_queries)
    counts_N = np.bincount(corpus.train.pos_M, minlength=N).astype(np.float64)
    train_pop_N = counts_N / counts_N.sum()
    population_N = posterior_marginal(corpus, corpus.train) if sampler == "popularity" else None
    correction = "logq" if logq else "none"
    rows = []
    for j in range(n_queries):
        s_N, logp_N, pos = scores_mxN[j], logp_mxN[j], int(corpus.test.pos_M[j])
        key = jax.random.fold_in(jax.random.key(seed), j)
        q_N = _proposal(corpus, sampler, K, s_N, pool_size, train_pop_N)
        # a test positive that no training pair holds has Q = 0 under the popularity proposal: the sampled
        # objective never meets it, so its gradient bias and deficit under logQ are undefined (NaN, left out
        # of the means and counted in `unseen_positive`), never an error that takes the seeds' group down
        unseen = correction == "logq" and not q_N[pos] > 0
        if unseen:
            bias = deficit = None
        else:
            bias = gradient_bias(s_N, pos, K, q_N, correction, num_samples=mc_samples, key=key, sampling=_SAMPLING)
            deficit = normalizer_deficit(s_N, pos, K, q_N, correction, num_samples=mc_samples, key=key,
                                         sampling=_SAMPLING)
        nan = float("nan")
        k, order = confusers(s_N, pos)
        coverage = confuser_coverage(N, K, k)
        # the same event under the run's own proposal (with replacement, hits of d+ kept)
        coverage_q = 1.0 - (1.0 - q_N[order[:k]].sum() / q_N.sum()) ** K
        fp_q_N = population_N if sampler == "popularity" else q_N
        kl = float(np.exp(logp_N) @ (logp_N - scipy.special.log_softmax(s_N)))
        rows.append({
            "kl_sample": kl, "fixed_point_kl": fixed_point_kl(logp_N, sampler, logq, fp_q_N),
            "pmi_slope": pmi_slope(s_N, logp_N, fp_q_N) if sampler != "uniform" and fp_q_N is not None
            else np.nan,
            "grad_bias_norm": nan if unseen else bias.norm, "grad_bias_cosine": nan if unseen else bias.cosine,
            "grad_direction_cosine": nan if unseen else bias.direction_cosine,
            "deficit_mc": nan if unseen else deficit.monte_carlo,
            "deficit_se": nan if unseen else deficit.standard_error,
            "deficit_approx": nan if unseen else deficit.approximation, "unseen_positive": float(unseen),
            "confusers": float(k), "coverage_uniform": coverage.exact,
            "coverage_uniform_approx": coverage.approximation, "coverage_proposal": float(coverage_q),
        })
    return _mean_and_se(rows)


def _mean_and_se(rows: list[dict]) -> dict[str, float]:
    """Per name: the mean over the finite values and, as `<name>_se`, its standard error (NaN below 2)."""
    out = {}
    for name in rows[0]:
        finite = np.array([r[name] for r in rows if np.isfinite(r[name])], np.float64)
        out[name] = float(finite.mean()) if finite.size else float("nan")
        if not name.endswith("_se"):
            out[f"{name}_se"] = float(finite.std(ddof=1) / np.sqrt(finite.size)) if finite.size > 1 else float("nan")
    return out
