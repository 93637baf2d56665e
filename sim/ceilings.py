"""References of a synthetic corpus: what its test queries allow, to read a measured Success@1 or KL against.

docs/design.md, "References and verdicts". Which of these is a bound, and of what, is part of its name:
- `posterior_summary`: how peaked the truth is. `label_accuracy` = E_q max_d p*(d|q): the Success@1
  of the truth itself *if relevance were drawn from p*(.|q)*. It is not a ceiling of the Success@1
  the toolkit measures: the test qrels are the argmax of p*, against which p* scores 1 and the
  ceiling is 1. `eff_docs` = exp of the mean entropy of p*(.|q) (the effective number of documents
  a query spreads over) and `top_gap` = the mean log-ratio of the top two documents of p* (a gap
  near 0 makes the argmax a coin toss).
- `feature_reference`: an *estimate* of the best a model can do from the observed, noisy query
  features x_q. It fits a linear decoder of the query latent from x_q on the training queries
  (least squares, with the residual covariance), draws `samples` latents u ~ N(decoded, residual
  covariance) per test query (projected to the unit sphere, as the corpus's latents are) and
  predicts the mixture p_ref(d|x) = mean over the draws of p*(d|u).
  `reference_kl` = E_q KL(p* || p_ref); `reference_success1` = Success@1 against the test qrels
  (the argmax of p*) of the document that is the argmax of p*(.|u) for most draws (the decision
  that maximises P(d = argmax p*(.|u) | x) under the decoder; the mixture's own argmax is the
  decision for relevance drawn from p*, and a plug-in decoder beats it on argmax qrels).
  Neither is a bound: the decoder is linear-Gaussian (optimal for a linear feature map with
  Gaussian noise only), it uses the true document latents (which a free document table can
  learn), and both are Monte Carlo estimates. Their Monte Carlo standard errors come from
  `groups` independent groups of the draws (batch means: the spread of the groups' estimates over
  sqrt(groups)); `reference_kl_bias` estimates the upward bias of the KL of a finite mixture
  (log of a mean of draws), which falls like 1/samples: (mean of the groups' KLs - reference_kl)
  / (groups - 1).

Both stream over document chunks (and `feature_reference` over query blocks); nothing M x N is held.
The reference's chunks go to its two compiled programs padded to a bucket of documents (sim.buckets,
the padding's prior and log p* at -inf), so one pair of programs serves every corpus size of a bucket.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from grdr.sim.buckets import bucket, pad_axis, pad_rows
from grdr.sim.corpus import Corpus, QuerySet, log_posterior_chunks

__all__ = ["posterior_summary", "feature_reference", "references", "REFERENCE_SAMPLES", "REFERENCE_GROUPS"]

REFERENCE_SAMPLES = 512  # latent draws per test query (docs/design.md: measured SE and cost)
REFERENCE_GROUPS = 16  # independent groups of the draws, for the batch-means standard errors
_BLOCK_ENTRIES = 1 << 24  # query block x draws x document chunk held at once (float32, 64 MB)


def posterior_summary(corpus: Corpus, queries: QuerySet | None = None) -> dict[str, float]:
    """label_accuracy, eff_docs and top_gap of p* over `queries` (default: the test queries)."""
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
        "label_accuracy": float(np.mean(np.exp(top2_Mx2[:, 0]))),
        "eff_docs": float(np.exp(np.mean(entropy_M))),
        "top_gap": float(np.mean(gap_M)),
    }


def _latent_decoder(corpus: Corpus):
    """(W, chol): u ~ normal(W [x, 1], chol chol^T), fitted on the training queries."""
    x_MxF = corpus.train.features_MxF.astype(np.float64)
    u_MxR = corpus.train.latents_MxR.astype(np.float64)
    x1_MxF1 = np.concatenate([x_MxF, np.ones((x_MxF.shape[0], 1))], axis=1)
    w_F1xR, *_ = np.linalg.lstsq(x1_MxF1, u_MxR, rcond=None)
    resid_MxR = u_MxR - x1_MxF1 @ w_F1xR
    cov_RxR = resid_MxR.T @ resid_MxR / max(x_MxF.shape[0] - x1_MxF1.shape[1], 1)
    chol_RxR = np.linalg.cholesky(cov_RxR + 1e-12 * np.eye(cov_RxR.shape[0]))
    return w_F1xR, chol_RxR


def _logits(u_BxSxR, z_CxR, bias_C, beta):
    return beta * jnp.einsum("bsr,cr->bsc", u_BxSxR, z_CxR) + bias_C[None, None, :]


@jax.jit
def _chunk_lse(u_BxSxR, z_CxR, bias_C, beta):
    return jax.nn.logsumexp(_logits(u_BxSxR, z_CxR, bias_C, beta), axis=2)


@partial(jax.jit, static_argnames=("groups",))
def _chunk_reference(u_BxSxR, z_CxR, bias_C, beta, lse_BxS, logp_BxC, *, groups):
    """Per query of the block, over one document chunk: the KL terms of the whole mixture and of
    each group's mixture; the mixture's top two documents (log q, index) and every draw's log p*(d|u)
    at them."""
    B, S, _ = u_BxSxR.shape
    logpu_BxSxC = _logits(u_BxSxR, z_CxR, bias_C, beta) - lse_BxS[:, :, None]
    logq_BxGxC = jax.nn.logsumexp(logpu_BxSxC.reshape(B, groups, S // groups, -1), axis=2) - jnp.log(S // groups)
    logq_BxC = jax.nn.logsumexp(logq_BxGxC, axis=1) - jnp.log(groups)
    p_BxC = jnp.exp(logp_BxC)
    real_BxC = p_BxC > 0  # padded documents (log p* = -inf) add nothing
    kl_B = jnp.sum(jnp.where(real_BxC, p_BxC * (logp_BxC - logq_BxC), 0.0), axis=1)
    kl_BxG = jnp.sum(jnp.where(real_BxC[:, None, :], p_BxC[:, None, :] * (logp_BxC[:, None, :] - logq_BxGxC), 0.0),
                     axis=2)
    top_Bx2, idx_Bx2 = jax.lax.top_k(logq_BxC, min(2, logq_BxC.shape[1]))  # ties: the lower index first
    return kl_B, kl_BxG, top_Bx2, idx_Bx2, jnp.take_along_axis(logpu_BxSxC, idx_Bx2[:, None, :], axis=2)


def _merge_top2(run, chunk):
    """The top two of the running (value, index, per-draw) candidates and a chunk's; ties keep the
    lower document index (the running candidates come first and are lower)."""
    v, i, d = (np.concatenate([r, c], axis=-1) for r, c in zip(run, chunk))
    order_Bx2 = np.argsort(-v, axis=1, kind="stable")[:, :2]
    return (np.take_along_axis(v, order_Bx2, axis=1), np.take_along_axis(i, order_Bx2, axis=1),
            np.take_along_axis(d, order_Bx2[:, None, :], axis=2))


def _flip_variance(logpu_MxSx2, arg_Mx2, pos_M):
    """Per query, the Monte Carlo variance of "the mixture's argmax is the qrel": a fresh set of draws
    swaps the top two documents a, b with probability Phi(-(q_a - q_b) / se), se the standard error of
    the mean over draws of p*(a|u) - p*(b|u); it matters only where the qrel is a or b."""
    from scipy.special import ndtr

    S = logpu_MxSx2.shape[1]
    diff_MxS = np.exp(logpu_MxSx2[:, :, 0].astype(np.float64)) - np.exp(logpu_MxSx2[:, :, 1].astype(np.float64))
    se_M = diff_MxS.std(axis=1, ddof=1) / np.sqrt(S)
    gap_M = diff_MxS.mean(axis=1)
    flip_M = np.where(se_M > 0, ndtr(-gap_M / np.where(se_M > 0, se_M, 1.0)), np.where(gap_M > 0, 0.0, 0.5))
    return np.where((arg_Mx2 == pos_M[:, None]).any(axis=1), flip_M * (1 - flip_M), 0.0)


def feature_reference(corpus: Corpus, samples: int = REFERENCE_SAMPLES, groups: int = REFERENCE_GROUPS,
                      seed: int = 0, chunk_size: int = 4096, pad_docs: int | None = None) -> dict[str, float]:
    """The reference estimate decoded from the test queries' features, with its Monte Carlo errors.

    Returns reference_success1 and reference_kl (the estimates); reference_kl_se (batch means over
    `groups` groups of the draws) and reference_success1_se (from each query's chance that fresh
    draws swap the mixture's top two documents), both over the draws only (the test queries are
    the models' own); reference_kl_bias (the estimated remaining upward bias of reference_kl) and
    reference_samples. pad_docs: a corpus size whose bucket (up to chunk_size) every chunk is padded to,
    so that the corpora of a sweep share one pair of programs (the same numbers up to float rounding).
    """
    if samples < 2 * groups or samples % groups:
        raise ValueError(f"samples={samples}: expected a multiple of groups={groups}, at least 2 per group")
    w_F1xR, chol_RxR = _latent_decoder(corpus)
    queries = corpus.test
    M, S, R = queries.size, samples, chol_RxR.shape[0]
    x_MxF = queries.features_MxF.astype(np.float64)
    mean_MxR = np.concatenate([x_MxF, np.ones((M, 1))], axis=1) @ w_F1xR
    eps_MxSxR = np.random.default_rng(seed).standard_normal((M, S, R))
    u_MxSxR = mean_MxR[:, None, :] + eps_MxSxR @ chol_RxR.T
    u_MxSxR = (u_MxSxR / np.linalg.norm(u_MxSxR, axis=2, keepdims=True).clip(1e-12)).astype(np.float32)
    beta = np.float32(corpus.spec.beta)
    z, bias = corpus.doc_latents_NxR, corpus.doc_log_prior_N
    C = min(chunk_size, corpus.n_docs)
    Cb = bucket(max(C, min(pad_docs or 0, chunk_size)))  # every chunk padded to this: one shape per bucket

    def chunk(s):
        return jax.device_put(pad_rows(z[s:s + C], Cb)), jax.device_put(pad_rows(bias[s:s + C], Cb, -np.inf))

    chunks = [chunk(s) for s in range(0, corpus.n_docs, C)]
    B = int(max(1, min(M, _BLOCK_ENTRIES // (S * Cb))))
    kl_M, kl_MxG = np.zeros(M), np.zeros((M, groups))
    arg_Mx2, logpu_MxSx2 = np.zeros((M, 2), np.int64), np.zeros((M, S, 2), np.float32)
    for q0 in range(0, M, B):
        rows = np.minimum(np.arange(q0, q0 + B), M - 1)  # the last block repeats its last query: one shape
        u = jax.device_put(u_MxSxR[rows])
        # pass 1: the log-normalizer of every draw's posterior
        lse = _chunk_lse(u, *chunks[0], beta)
        for z_CxR, bias_C in chunks[1:]:
            lse = jnp.logaddexp(lse, _chunk_lse(u, z_CxR, bias_C, beta))
        # pass 2: the mixtures' KL terms and the mixture's top two documents
        block = QuerySet(*(a[rows] for a in (queries.latents_MxR, queries.features_MxF, queries.log_normalizer_M,
                                              queries.pos_M, queries.qrels_MxQ, queries.top_log_p_MxQ)))
        run = (np.full((B, 0), -np.inf, np.float32), np.zeros((B, 0), np.int64), np.zeros((B, S, 0), np.float32))
        n = min(B, M - q0)
        for (s, logp_BxC), (z_CxR, bias_C) in zip(log_posterior_chunks(corpus, block, C), chunks):
            logp_BxC = jax.device_put(pad_axis(logp_BxC.astype(np.float32), Cb, 1, -np.inf))
            kl_B, kl_BxG, top, idx, at = _chunk_reference(u, z_CxR, bias_C, beta, lse, logp_BxC, groups=groups)
            kl_M[q0:q0 + n] += np.asarray(kl_B, np.float64)[:n]
            kl_MxG[q0:q0 + n] += np.asarray(kl_BxG, np.float64)[:n]
            run = _merge_top2(run, (np.asarray(top), s + np.asarray(idx, np.int64), np.asarray(at)))
        arg_Mx2[q0:q0 + n], logpu_MxSx2[q0:q0 + n] = run[1][:n], run[2][:n]
    kl, kl_G = float(np.mean(kl_M)), kl_MxG.mean(axis=0)
    return {"reference_success1": float(np.mean(arg_Mx2[:, 0] == queries.pos_M)),
            "reference_success1_se": float(np.sqrt(np.sum(_flip_variance(logpu_MxSx2, arg_Mx2, queries.pos_M))) / M),
            "reference_kl": kl, "reference_kl_se": float(np.std(kl_G, ddof=1) / np.sqrt(groups)),
            "reference_kl_bias": float((np.mean(kl_G) - kl) / (groups - 1)), "reference_samples": float(S)}


def references(corpus: Corpus, samples: int = REFERENCE_SAMPLES, groups: int = REFERENCE_GROUPS,
               seed: int = 0, pad_docs: int | None = None) -> dict[str, float]:
    """Every reference of the corpus's test queries, as flat record metrics (pad_docs: feature_reference's)."""
    return {**posterior_summary(corpus),
            **feature_reference(corpus, samples=samples, groups=groups, seed=seed, pad_docs=pad_docs)}
