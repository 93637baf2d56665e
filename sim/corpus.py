"""Synthetic corpora whose relevance posterior is known exactly.

A `CorpusSpec` fixes everything; `make_corpus(spec)` is deterministic in `spec.seed`.

Generative story (docs/design.md, section 1, notation R = latent rank):
- documents sit around a hierarchy of cluster centres (`branching` children per node, `depth`
  levels), so that semantic docids built from document features have meaning: z_d is the unit
  normalisation of its leaf centre plus noise, z_d in R^R;
- a Zipf popularity pi_d ∝ rank^-zipf over a random permutation of the documents;
- each query is about a target document t_q ~ pi, u_q = normalise(z_{t_q} + query_noise * g);
- the true posterior is log p*(d|q) = beta * u_q . z_d + popularity_weight * log pi_d - log Z_q,
  computed in document chunks, never as an M x N matrix;
- observed features of queries and documents are one shared random map (linear, or a random
  tanh MLP) of the latents plus Gaussian noise, so that towers have something to learn.
Training pairs (q, d+) draw d+ from p*(.|q) (exactly, in one streaming pass) or take its argmax;
test queries carry qrels (the top-`qrels_k` documents of p*, binary) for the metrics and their
exact posterior (through `log_posterior_chunks`) for the KL.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

__all__ = ["CorpusSpec", "Corpus", "QuerySet", "make_corpus", "log_posterior_chunks", "log_posterior_rows",
           "posterior_marginal", "solve_beta"]

_FEATURE_MAPS = ("linear", "mlp")
MAX_BETA = 1_000.0
_POSITIVES = ("sample", "argmax")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """Every knob of a synthetic corpus. Invalid values fail here, naming the field."""

    n_docs: int = 10_000
    """N, the number of documents."""
    n_train_queries: int = 20_000
    """Training queries; each carries one positive drawn from p*(.|q) (or its argmax)."""
    n_test_queries: int = 500
    """Test queries, judged by the top `qrels_k` documents of p*(.|q)."""
    latent_rank: int = 16
    """R, the true rank of the log-posterior (dimension of the query and document latents)."""
    branching: int = 8
    """Children per node of the hierarchy of cluster centres the documents sit around."""
    depth: int = 2
    """Levels of that hierarchy."""
    cluster_spread: float = 0.6
    """Scale of each level's centres relative to the level above."""
    doc_noise: float = 0.5
    """Spread of a document's latent around its leaf centre (relative to the leaf level's scale)."""
    beta: float = 12.0
    """Sharpness: log p*(d|q) = beta u_q . z_d + ...; larger beta gives a peakier posterior."""
    target_eff_docs: float = 0.0
    """Iso-difficulty: when > 0, beta is solved (not taken from `beta`) so that the effective number of
    documents exp E_q H(p*(.|q)) equals this on a probe set of queries, at every N."""
    zipf: float = 0.0
    """Popularity exponent: pi_d ~ rank^-zipf (0: every document equally popular)."""
    popularity_weight: float = 1.0
    """Weight of log pi_d in the log-posterior."""
    query_noise: float = 0.5
    """Spread of a query's latent around the document it is about (sets how flat p* is)."""
    feature_dim: int = 32
    """F, the dimension of the observed query and document features."""
    feature_map: str = "linear"
    """Map from latents to features: "linear" or "mlp" (a random tanh MLP)."""
    query_feature_noise: float = 0.05
    """Gaussian noise on observed query features: the irreducible part of any model's error."""
    doc_feature_noise: float = 0.05
    """Gaussian noise on observed document features (a free document table does not see it)."""
    positives: str = "sample"
    """Training positives: "sample" (drawn from p*(.|q)) or "argmax"."""
    qrels_k: int = 1
    """Relevant documents per test query: the top qrels_k of p*."""
    train_top_k: int = 0
    """Top documents of p* stored per training query (with their log p*), for denoised hard negatives."""
    chunk_size: int = 16_384
    """Documents per chunk of the streamed posterior (memory, not results)."""
    seed: int = 0
    """Seed of the corpus: latents, features, queries and positives."""

    def __post_init__(self):
        def need(ok, field, expected):
            if not ok:
                raise ValueError(f"CorpusSpec.{field}={getattr(self, field)!r}: expected {expected}")

        need(2 <= self.n_docs <= 50_000_000, "n_docs", "an integer in [2, 5e7]")
        need(self.n_train_queries >= 1, "n_train_queries", "at least 1")
        need(self.n_test_queries >= 1, "n_test_queries", "at least 1")
        need(self.latent_rank >= 1, "latent_rank", "at least 1")
        need(self.branching >= 2, "branching", "at least 2")
        need(self.depth >= 1, "depth", "at least 1")
        for field in ("cluster_spread", "doc_noise", "query_noise", "query_feature_noise", "doc_feature_noise", "zipf",
                      "beta", "popularity_weight"):
            need(getattr(self, field) >= 0, field, "a non-negative number")
        # log p* is float32: it resolves about beta x 6e-8 nats, and past beta = 1000 (a top-1/top-2 gap of
        # tens of nats) p* is one-hot to that precision, so its ceilings break (Bayes Success@1 above 1,
        # exp H(p*) below 1) while nothing measurable changes
        need(self.beta <= MAX_BETA, "beta", f"a number in [0, {MAX_BETA:g}] (past it p* is one-hot to float32 "
                                            "precision and its ceilings break)")
        need(self.feature_dim >= 1, "feature_dim", "at least 1")
        need(self.feature_map in _FEATURE_MAPS, "feature_map", f"one of {_FEATURE_MAPS}")
        need(self.positives in _POSITIVES, "positives", f"one of {_POSITIVES}")
        need(1 <= self.qrels_k <= self.n_docs, "qrels_k", f"an integer in [1, n_docs={self.n_docs}]")
        need(0 <= self.train_top_k <= self.n_docs, "train_top_k", f"an integer in [0, n_docs={self.n_docs}]")
        need(self.chunk_size >= 1, "chunk_size", "at least 1")
        need(self.target_eff_docs == 0 or 1 < self.target_eff_docs < self.n_docs, "target_eff_docs",
             f"0 (off) or a number in (1, n_docs={self.n_docs})")
        need(self.seed >= 0, "seed", "a non-negative integer")


@dataclasses.dataclass(frozen=True)
class QuerySet:
    """Queries with their latents (for the exact posterior) and observed features."""

    latents_MxR: np.ndarray
    features_MxF: np.ndarray
    log_normalizer_M: np.ndarray  # log Z_q of the true posterior
    pos_M: np.ndarray  # training: d+ per query; test: argmax of p*
    qrels_MxQ: np.ndarray  # top documents of p*, best first (test: qrels_k; training: train_top_k)
    top_log_p_MxQ: np.ndarray  # log p* of those documents

    @property
    def size(self) -> int:
        return self.latents_MxR.shape[0]


@dataclasses.dataclass(frozen=True)
class Corpus:
    spec: CorpusSpec
    doc_latents_NxR: np.ndarray
    doc_features_NxF: np.ndarray
    doc_log_prior_N: np.ndarray  # popularity_weight * log pi_d
    doc_popularity_N: np.ndarray  # pi_d (sums to one)
    doc_cluster_NxDepth: np.ndarray  # the generating cluster path of each document
    train: QuerySet
    test: QuerySet

    @property
    def n_docs(self) -> int:
        return self.doc_latents_NxR.shape[0]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)


def _doc_latents(spec: CorpusSpec, rng: np.random.Generator):
    """Hierarchical cluster centres; each document is assigned a random leaf."""
    R, b = spec.latent_rank, spec.branching
    centres = np.zeros((1, R))
    scale = 1.0
    for _ in range(spec.depth):
        centres = np.repeat(centres, b, axis=0) + scale * rng.standard_normal((centres.shape[0] * b, R))
        scale *= spec.cluster_spread
    leaf_N = rng.integers(0, centres.shape[0], size=spec.n_docs)
    path_NxDepth = np.stack([(leaf_N // b ** (spec.depth - 1 - l)) % b for l in range(spec.depth)], axis=1)
    z = centres[leaf_N] + spec.doc_noise * scale * rng.standard_normal((spec.n_docs, R))
    return _unit(z).astype(np.float32), path_NxDepth.astype(np.int32)


def _feature_map(spec: CorpusSpec, rng: np.random.Generator):
    R, F = spec.latent_rank, spec.feature_dim
    if spec.feature_map == "linear":
        W = rng.standard_normal((R, F)) / np.sqrt(R)
        return lambda x: x @ W
    W1 = rng.standard_normal((R, 4 * F)) * (2.0 / np.sqrt(R))
    W2 = rng.standard_normal((4 * F, F)) / np.sqrt(4 * F)
    return lambda x: np.tanh(x @ W1) @ W2


def _features(fmap, latents, noise, rng, block=65_536):
    out = np.empty((latents.shape[0], fmap(latents[:1]).shape[1]), np.float32)
    for s in range(0, latents.shape[0], block):
        x = fmap(latents[s : s + block].astype(np.float64))
        out[s : s + block] = x + noise * rng.standard_normal(x.shape)
    return out


def _padded_chunks(a, c):
    """Split the leading axis into chunks of c rows (last one zero-padded), shape (n_chunks, c, ...)."""
    n = a.shape[0]
    n_chunks = -(-n // c)
    pad = n_chunks * c - n
    a = np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
    return a.reshape((n_chunks, c) + a.shape[1:])


def _inverse_cdf_draw(p_Mxc, u_M, block=128):
    """Index j with cdf(j-1) <= u * total < cdf(j), in two levels (blocks, then within one block).

    A full cumulative sum over the chunk costs several times the matmul on a CPU; block masses
    plus one small cumulative sum per level give the same exact draw.
    """
    M, c = p_Mxc.shape
    if c % block:
        p_Mxc = jnp.pad(p_Mxc, ((0, 0), (0, block - c % block)))
    p_MxGxb = p_Mxc.reshape(M, -1, block)
    mass_cdf_MxG = jnp.cumsum(p_MxGxb.sum(axis=2), axis=1)
    target_M = u_M * mass_cdf_MxG[:, -1]
    g_M = jnp.minimum(jnp.sum(mass_cdf_MxG < target_M[:, None], axis=1), p_MxGxb.shape[1] - 1)
    before_M = jnp.where(g_M > 0, jnp.take_along_axis(mass_cdf_MxG, jnp.maximum(g_M - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    inner_cdf_Mxb = jnp.cumsum(jnp.take_along_axis(p_MxGxb, g_M[:, None, None], axis=1)[:, 0], axis=1)
    j_M = jnp.minimum(jnp.sum(inner_cdf_Mxb < (target_M - before_M)[:, None], axis=1), block - 1)
    return (g_M * block + j_M).astype(jnp.int32)


@partial(jax.jit, static_argnames=("n_docs", "qrels_k"))
def _scan_posterior(key, q_MxR, z_CxcxR, bias_Cxc, *, n_docs, qrels_k):
    """One streaming pass over document chunks: log Z, the top-k of p*, and one exact draw of p*.

    The draw is the streaming categorical rule: draw within each chunk by inverse CDF, and let
    the chunk's draw replace the running one with probability (chunk mass) / (mass so far).
    """
    M = q_MxR.shape[0]
    n_chunks, c = bias_Cxc.shape

    def body(carry, inputs):
        lse_M, top_s_MxK, top_i_MxK, draw_M = carry
        z_cxR, b_c, start = inputs
        idx_c = start + jnp.arange(c, dtype=jnp.int32)
        logits_Mxc = q_MxR @ z_cxR.T + b_c[None, :]
        logits_Mxc = jnp.where(idx_c[None, :] < n_docs, logits_Mxc, -jnp.inf)
        chunk_lse_M = jax.nn.logsumexp(logits_Mxc, axis=1)
        new_lse_M = jnp.logaddexp(lse_M, chunk_lse_M)
        u_2xM = jax.random.uniform(jax.random.fold_in(key, start), (2, M))
        within_M = _inverse_cdf_draw(jnp.exp(logits_Mxc - chunk_lse_M[:, None]), u_2xM[0])
        within_M = jnp.minimum(within_M, jnp.maximum(n_docs - start - 1, 0))
        take_M = u_2xM[1] < jnp.exp(chunk_lse_M - new_lse_M)
        draw_M = jnp.where(take_M, start + within_M.astype(jnp.int32), draw_M)
        if qrels_k == 0:  # a training pass that needs no top-k
            return (new_lse_M, top_s_MxK, top_i_MxK, draw_M), None
        # earlier (lower-index) candidates come first, so ties keep the lower document index; positions
        # past the running top-k map to start + offset (no M x c index array is built)
        all_s = jnp.concatenate([top_s_MxK, logits_Mxc], axis=1)
        top_s_MxK, pos = jax.lax.top_k(all_s, qrels_k)
        from_run = jnp.take_along_axis(top_i_MxK, jnp.minimum(pos, qrels_k - 1), axis=1)
        top_i_MxK = jnp.where(pos < qrels_k, from_run, start + pos - qrels_k)
        return (new_lse_M, top_s_MxK, top_i_MxK, draw_M), None

    init = (
        jnp.full((M,), -jnp.inf, q_MxR.dtype),
        jnp.full((M, qrels_k), -jnp.inf, q_MxR.dtype),
        jnp.zeros((M, qrels_k), jnp.int32),
        jnp.zeros((M,), jnp.int32),
    )
    starts = jnp.arange(n_chunks, dtype=jnp.int32) * c
    (lse_M, top_s_MxK, top_i_MxK, draw_M), _ = jax.lax.scan(body, init, (z_CxcxR, bias_Cxc, starts))
    return lse_M, top_s_MxK - lse_M[:, None], top_i_MxK, draw_M


def _posterior_pass(spec, key, u_MxR, z_NxR, bias_N, top_k, query_block=1024):
    """log Z, the top-k of p* (log-probabilities and documents) and a draw of p* for every query,
    in query blocks x document chunks."""
    c = min(spec.chunk_size, z_NxR.shape[0])
    z_CxcxR = jax.device_put(_padded_chunks(z_NxR, c))
    bias_Cxc = jax.device_put(_padded_chunks(bias_N, c))
    M = u_MxR.shape[0]
    blk = min(query_block, M)
    q_all = _padded_chunks((spec.beta * u_MxR).astype(np.float32), blk)
    outs = [
        _scan_posterior(jax.random.fold_in(key, i), jax.device_put(q), z_CxcxR, bias_Cxc,
                        n_docs=z_NxR.shape[0], qrels_k=top_k)
        for i, q in enumerate(q_all)
    ]
    return tuple(np.concatenate([np.asarray(o[j]) for o in outs])[:M] for j in range(4))


_PROBE_QUERIES = 512


def _query_latents(spec: CorpusSpec, rng, z_NxR, log_pi_N, m):
    target_M = rng.choice(spec.n_docs, size=m, p=np.exp(log_pi_N))
    u = _unit(z_NxR[target_M] + spec.query_noise * rng.standard_normal((m, spec.latent_rank)) / np.sqrt(spec.latent_rank))
    return u.astype(np.float32)


def _mean_entropy(beta, u_MxR, z_NxR, bias_N, chunk=16_384):
    """E_q H(p*(.|q)) in nats for one beta (float64, document chunks: never M x N at once)."""
    M = u_MxR.shape[0]
    lse_M, s1_M = np.full(M, -np.inf), np.zeros(M)   # log Z and sum e^l l, streamed
    for start in range(0, z_NxR.shape[0], chunk):
        l_Mxc = beta * (u_MxR @ z_NxR[start:start + chunk].T) + bias_N[None, start:start + chunk]
        new_M = np.logaddexp(lse_M, np.logaddexp.reduce(l_Mxc, axis=1))
        s1_M = s1_M * np.exp(lse_M - new_M) + np.sum(np.exp(l_Mxc - new_M[:, None]) * l_Mxc, axis=1)
        lse_M = new_M
    return float(np.mean(lse_M - s1_M))


def solve_beta(spec: CorpusSpec, u_MxR, z_NxR, bias_N) -> float:
    """The beta whose mean posterior entropy over the probe queries u_MxR is log(target_eff_docs): the
    entropy falls with beta (a tempering), so Brent's method on log beta finds it (to 1e-12 in log beta)."""
    target = np.log(spec.target_eff_docs)
    u, z, b = (np.asarray(a, np.float64) for a in (u_MxR, z_NxR, bias_N))
    lo, hi = np.log(1e-4), np.log(1e5)
    if _mean_entropy(np.exp(lo), u, z, b) < target or _mean_entropy(np.exp(hi), u, z, b) > target:
        raise ValueError(f"CorpusSpec.target_eff_docs={spec.target_eff_docs}: no beta in [1e-4, 1e5] reaches it "
                         f"on this corpus (the popularity alone gives exp H = "
                         f"{np.exp(_mean_entropy(0.0, u, z, b)):.3g})")
    root = scipy.optimize.brentq(lambda log_beta: _mean_entropy(np.exp(log_beta), u, z, b) - target, lo, hi,
                                 xtol=1e-12)
    return float(np.exp(root))


def make_corpus(spec: CorpusSpec) -> Corpus:
    """Build the corpus of `spec`; the same spec (and seed) always gives the same corpus.

    With `target_eff_docs` the corpus's spec carries the solved beta (`Corpus.spec.beta`)."""
    rng = np.random.default_rng(spec.seed)
    key = jax.random.key(spec.seed)
    z_NxR, path = _doc_latents(spec, rng)
    ranks_N = rng.permutation(spec.n_docs) + 1
    log_pi_N = -spec.zipf * np.log(ranks_N)
    log_pi_N -= np.logaddexp.reduce(log_pi_N)
    bias_N = (spec.popularity_weight * log_pi_N).astype(np.float32)
    if spec.target_eff_docs:   # a probe set from its own stream: the corpus's own draws are as without it
        probe = _query_latents(spec, np.random.default_rng([spec.seed, 7]), z_NxR, log_pi_N, _PROBE_QUERIES)
        spec = dataclasses.replace(spec, beta=solve_beta(spec, probe, z_NxR, bias_N))
    fmap = _feature_map(spec, rng)
    doc_features = _features(fmap, z_NxR, spec.doc_feature_noise, rng)

    def queries(m, key, top_k):
        u = _query_latents(spec, rng, z_NxR, log_pi_N, m)
        lse, top_log_p, top, draw = _posterior_pass(spec, key, u, z_NxR, bias_N, top_k)
        return u, _features(fmap, u, spec.query_feature_noise, rng), lse, top_log_p, top, draw

    train_k = max(spec.train_top_k, int(spec.positives == "argmax"))
    u, f, lse, top_log_p, top, draw = queries(spec.n_train_queries, jax.random.fold_in(key, 1), train_k)
    pos = draw if spec.positives == "sample" else top[:, 0]
    keep = spec.train_top_k
    train = QuerySet(u, f, lse, pos.astype(np.int32), top[:, :keep].astype(np.int32), top_log_p[:, :keep])
    u, f, lse, top_log_p, top, _ = queries(spec.n_test_queries, jax.random.fold_in(key, 2), spec.qrels_k)
    test = QuerySet(u, f, lse, top[:, 0].astype(np.int32), top.astype(np.int32), top_log_p)
    return Corpus(spec, z_NxR, doc_features, bias_N, np.exp(log_pi_N), path, train, test)


def log_posterior_chunks(corpus: Corpus, queries: QuerySet, chunk_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, log p*(d|q) for d in [start, start + C)) as M x C blocks; never M x N at once."""
    c = chunk_size or corpus.spec.chunk_size
    q_MxR = corpus.spec.beta * queries.latents_MxR
    for start in range(0, corpus.n_docs, c):
        logits = q_MxR @ corpus.doc_latents_NxR[start : start + c].T + corpus.doc_log_prior_N[None, start : start + c]
        yield start, logits - queries.log_normalizer_M[:, None]


def log_posterior_rows(corpus: Corpus, queries: QuerySet, start: int, stop: int) -> np.ndarray:
    """log p*(d|q) over all N documents for the queries [start, stop): a small block of rows."""
    q_mxR = corpus.spec.beta * queries.latents_MxR[start:stop]
    logits = q_mxR @ corpus.doc_latents_NxR.T + corpus.doc_log_prior_N[None, :]
    return logits - queries.log_normalizer_M[start:stop, None]


def posterior_marginal(corpus: Corpus, queries: QuerySet, block: int = 1_000) -> np.ndarray:
    """E_q p*(d|q) over `queries` (float64, sums to one): the population popularity proposal,
    which in-batch negatives of i.i.d. batches draw from, strictly positive unlike its sample."""
    total_N = np.zeros(corpus.n_docs)
    for start in range(0, queries.size, block):
        stop = min(start + block, queries.size)
        total_N += np.exp(log_posterior_rows(corpus, queries, start, stop).astype(np.float64)).sum(axis=0)
    return total_N / total_N.sum()
