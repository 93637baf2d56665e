"""Ceilings of a synthetic corpus: what any model could reach on its test queries.

A measured Success@1 or KL means little without them (docs/design.md, "Ceilings and verdicts"):
- `posterior_summary`: how peaked the truth is. `bayes_success1` = E_q max_d p*(d|q) (the
  Success@1 of the truth itself if relevance were drawn from p*), `eff_docs` = exp of the mean
  entropy of p*(.|q) (the effective number of documents a query spreads over) and `top_gap` = the
  mean log-ratio of the top two documents of p* (a gap near 0 makes the argmax a coin toss).
- `feature_reference`: the best a model can do from the *observed* features. Queries are seen only
  through noisy features x_q, so part of every model's KL is irreducible. The reference fits a
  linear decoder of the query latent from x_q on the training queries (least squares, with the
  residual covariance), then predicts the mixture p_ref(d|x) = E[p*(d|u) | x] by averaging the true
  posterior over `samples` latents u drawn around the decoded one (projected to the unit sphere, as
  the corpus's latents are). `feasible_success1` is the Success@1 of argmax p_ref against the test
  qrels (the argmax of p*) and `feasible_kl` = E_q KL(p* || p_ref). The reference uses the true
  document latents, which a free document table can learn; it is a ceiling estimate, not a bound:
  a linear decoder is optimal for a linear feature map with Gaussian noise, not for the "mlp" map.

Both stream over document chunks; nothing M x N is held. The reference's chunks go to its two
compiled programs padded to a bucket of documents (sim.buckets, the padding at -inf), so one pair of
programs serves every corpus size of a bucket.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sim.buckets import bucket, pad_rows
from sim.corpus import Corpus, QuerySet, log_posterior_chunks

__all__ = ["posterior_summary", "feature_reference", "ceilings"]


def posterior_summary(corpus: Corpus, queries: QuerySet | None = None) -> dict[str, float]:
    """bayes_success1, eff_docs and top_gap of p* over `queries` (default: the test queries)."""
    queries = corpus.test if queries is None else queries
    M = queries.size
    top2_Mx2 = np.full((M, 2), -np.inf)
    entropy_M = np.zeros(M)
    for _, logp_MxC in log_posterior_chunks(corpus, queries):
        logp_MxC = logp_MxC.astype(np.float64)
        entropy_M -= np.sum(np.where(np.isfinite(logp_MxC), np.exp(logp_MxC) * logp_MxC, 0.0), axis=1)
        both = np.concatenate([top2_Mx2, logp_MxC], axis=1)
        top2_Mx2 = -np.sort(-both, axis=1)[:, :2] if both.shape[1] > 2 else -np.sort(-both, axis=1)
    gap_M = top2_Mx2[:, 0] - top2_Mx2[:, 1] if corpus.n_docs > 1 else np.zeros(M)
    return {
        "bayes_success1": float(np.mean(np.exp(top2_Mx2[:, 0]))),
        "eff_docs": float(np.exp(np.mean(entropy_M))),
        "top_gap": float(np.mean(gap_M)),
    }


def _latent_decoder(corpus: Corpus):
    """(W, mean, chol): u ~ normal(W [x, 1], chol chol^T), fitted on the training queries."""
    x_MxF = corpus.train.features_MxF.astype(np.float64)
    u_MxR = corpus.train.latents_MxR.astype(np.float64)
    x1_MxF1 = np.concatenate([x_MxF, np.ones((x_MxF.shape[0], 1))], axis=1)
    w_F1xR, *_ = np.linalg.lstsq(x1_MxF1, u_MxR, rcond=None)
    resid_MxR = u_MxR - x1_MxF1 @ w_F1xR
    cov_RxR = resid_MxR.T @ resid_MxR / max(x_MxF.shape[0] - x1_MxF1.shape[1], 1)
    chol_RxR = np.linalg.cholesky(cov_RxR + 1e-12 * np.eye(cov_RxR.shape[0]))
    return w_F1xR, chol_RxR


@partial(jax.jit, static_argnames=())
def _chunk_logits(u_MxSxR, z_CxR, bias_C, beta):
    return beta * jnp.einsum("msr,cr->msc", u_MxSxR, z_CxR) + bias_C[None, None, :]


@jax.jit
def _lse_update(lse_MxS, u_MxSxR, z_CxR, bias_C, beta):
    """The running log-normalizer of every sampled latent's posterior, one chunk of documents added."""
    return jnp.logaddexp(lse_MxS, jax.nn.logsumexp(_chunk_logits(u_MxSxR, z_CxR, bias_C, beta), axis=2))


@jax.jit
def _mixture_log_probs(u_MxSxR, z_CxR, bias_C, beta, lse_MxS):
    """log of the mixture over the sampled latents' posteriors, on one chunk of documents."""
    logits = _chunk_logits(u_MxSxR, z_CxR, bias_C, beta) - lse_MxS[:, :, None]
    return jax.nn.logsumexp(logits, axis=1) - jnp.log(u_MxSxR.shape[1])


def _padded_chunk(z, bias, s, chunk_size):
    """Documents [s, s + chunk_size) padded to their bucket (a -inf prior): one program per bucket."""
    z_CxR, bias_C = z[s:s + chunk_size], bias[s:s + chunk_size]
    C = bucket(len(bias_C))
    return jax.device_put(pad_rows(z_CxR, C)), jax.device_put(pad_rows(bias_C, C, -np.inf)), len(bias_C)


def feature_reference(corpus: Corpus, samples: int = 32, seed: int = 0, chunk_size: int = 4096) -> dict[str, float]:
    """feasible_success1 and feasible_kl of the mixture reference decoded from the test queries' features."""
    w_F1xR, chol_RxR = _latent_decoder(corpus)
    queries = corpus.test
    x_MxF = queries.features_MxF.astype(np.float64)
    mean_MxR = np.concatenate([x_MxF, np.ones((x_MxF.shape[0], 1))], axis=1) @ w_F1xR
    eps_MxSxR = np.random.default_rng(seed).standard_normal((x_MxF.shape[0], samples, mean_MxR.shape[1]))
    u_MxSxR = mean_MxR[:, None, :] + eps_MxSxR @ chol_RxR.T
    u_MxSxR /= np.linalg.norm(u_MxSxR, axis=2, keepdims=True).clip(1e-12)
    u = jax.device_put(u_MxSxR.astype(np.float32))
    beta = float(corpus.spec.beta)
    z, bias = corpus.doc_latents_NxR, corpus.doc_log_prior_N
    starts = range(0, corpus.n_docs, chunk_size)
    # pass 1: the log-normalizer of every sampled latent's posterior
    lse_MxS = jax.device_put(np.full(u.shape[:2], -np.inf, np.float32))
    for s in starts:
        lse_MxS = _lse_update(lse_MxS, u, *_padded_chunk(z, bias, s, chunk_size)[:2], beta)
    # pass 2: the mixture's log-probabilities, its argmax and KL(p* || mixture)
    M = queries.size
    kl_M = np.zeros(M)
    best_M, arg_M = np.full(M, -np.inf), np.zeros(M, np.int64)
    for (s, logp_MxC) in log_posterior_chunks(corpus, queries, chunk_size):
        z_CxR, bias_C, C = _padded_chunk(z, bias, s, chunk_size)
        logq_MxC = np.asarray(_mixture_log_probs(u, z_CxR, bias_C, beta, lse_MxS), np.float64)[:, :C]
        logp_MxC = logp_MxC.astype(np.float64)
        kl_M += np.sum(np.exp(logp_MxC) * (logp_MxC - logq_MxC), axis=1)
        j_M = np.argmax(logq_MxC, axis=1)
        v_M = logq_MxC[np.arange(M), j_M]
        better = v_M > best_M  # strict: ties keep the lower document index, as the qrels do
        best_M, arg_M = np.where(better, v_M, best_M), np.where(better, s + j_M, arg_M)
    return {"feasible_success1": float(np.mean(arg_M == queries.pos_M)), "feasible_kl": float(np.mean(kl_M))}


def ceilings(corpus: Corpus, samples: int = 32, seed: int = 0) -> dict[str, float]:
    """Every ceiling of the corpus's test queries, as flat record metrics."""
    return {**posterior_summary(corpus), **feature_reference(corpus, samples=samples, seed=seed)}
