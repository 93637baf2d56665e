"""Whole log-probability matrices of a trained model on a small corpus, and their distance to the truth.

For the capacity experiments (docs/design.md, "Low-rank capacity"): with N small, the model's
log p(d|q) over every test query and document (M x N, float64) can be held and compared with the
true log-posterior A* up to the per-row shift the softmax ignores:
`rowshift_sq_err` = min_c ||A* - log p - c 1^T||_F^2 / M = ||(A* - log p) P||_F^2 / M, P = I - 11^T/N,
which no model can take below the Eckart-Young floor at its rank (theory.eckart_young_floor).
For the rank bounds (docs/design.md, "Low-rank capacity"; the theory_curves experiment), the same
quantities without training: the true log-posterior of a rank-R corpus and its floors, cached, and
`random_seq_gr_log_probs`, the real SeqGR's whole matrix over a complete V-ary trie at generic
parameters, beside the trie's b_pi and l_pi (theory.trie_rank_bound's inputs).
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from grdr.sim.beam import all_doc_log_probs, doc_logp_block, node_paths
from grdr.sim.buckets import bucket, pad_axis, pad_rows
from grdr.sim.corpus import Corpus, CorpusSpec, log_posterior_rows, make_corpus
from grdr.sim.docids import Docids, trie_from_codes
from grdr.sim.models import ModelConfig, SeqGR
from grdr.sim.optim import zero_state

__all__ = ["model_log_probs", "true_log_probs", "eckart_young_floors", "rowshift_sq_err", "low_rank_kl", "KLFloor",
           "seq_gr_oracle_kl", "OracleFit", "oracle_tables",
           "svd_factors",
           "corpus_true_log_probs", "corpus_floors", "complete_trie", "trie_children", "random_seq_gr_log_probs"]

MAX_ENTRIES = 50_000_000  # M x N float64 entries held at once (400 MB)


def _check(corpus: Corpus):
    entries = corpus.test.size * corpus.n_docs
    if entries > MAX_ENTRIES:
        raise ValueError(f"{corpus.test.size} test queries x {corpus.n_docs} documents = {entries:,} entries: the "
                         f"whole log-probability matrix is for small corpora (at most {MAX_ENTRIES:,})")


def model_log_probs(model, corpus: Corpus, docids: Docids | None = None) -> np.ndarray:
    """log p_model(d|q) of every test query and document (M x N, float64)."""
    from grdr.sim.evaluate import model_scores, query_states  # compiled programs (eager, each op compiles per shape)

    _check(corpus)
    if isinstance(model, SeqGR):
        q_MxH = query_states(model, corpus.test.features_MxF)
        return np.concatenate([block for _, block in all_doc_log_probs(model, q_MxH, docids)]).astype(np.float64)
    scores_MxN = model_scores(model, corpus.test.features_MxF, corpus.doc_features_NxF).astype(np.float64)
    top_M = scores_MxN.max(axis=1, keepdims=True)
    return scores_MxN - top_M - np.log(np.exp(scores_MxN - top_M).sum(axis=1, keepdims=True))


def true_log_probs(corpus: Corpus) -> np.ndarray:
    """log p*(d|q) of every test query and document (M x N, float64)."""
    _check(corpus)
    return log_posterior_rows(corpus, corpus.test, 0, corpus.test.size).astype(np.float64)


def eckart_young_floors(target_MxN: np.ndarray, ranks) -> dict[int, float]:
    """theory.eckart_young_floor of the row-centred target at each rank, in float64."""
    from grdr.theory import eckart_young_floor

    with jax.enable_x64(True):
        target = jax.device_put(np.asarray(target_MxN, np.float64))
        return {r: float(eckart_young_floor(target, int(min(r, min(target_MxN.shape))))) for r in set(ranks)}


def rowshift_sq_err(target_MxN: np.ndarray, logp_MxN: np.ndarray) -> float:
    """min over per-row shifts of the squared error, per query (the best shift is the row mean)."""
    resid_MxN = target_MxN - logp_MxN
    resid_MxN = resid_MxN - resid_MxN.mean(axis=1, keepdims=True)
    return float(np.sum(np.square(resid_MxN))) / target_MxN.shape[0]


@dataclasses.dataclass(frozen=True)
class KLFloor:
    """The least mean KL(p* || softmax(F G^T)) that free rank-r factors reached, and how.

    An optimised value, so an upper estimate of the true minimum over rank-r factors (the number that
    bounds every rank-r bilinear scorer's KL on these queries). `values` holds each start's end value
    (the SVD start, the head-clipped SVD start, then random and perturbed ones); `spread` is the gap between the
    best two (near 0: two starts agree); `converged` counts the starts that met L-BFGS's tolerance or
    stalled (see `low_rank_kl`) rather than reaching the iteration cap.
    """

    kl: float
    spread: float
    converged: int
    values: tuple[float, ...]

    @property
    def restarts(self) -> int:
        return len(self.values)


@jax.jit
def _kl_and_grad(x, p_MxN, logp_MxN):
    """Mean KL(p* || softmax(F G^T)) over the rows and its gradient in x = (F, G) flattened."""
    M, N = p_MxN.shape
    rank = x.shape[0] // (M + N)

    def kl(x):
        f_MxR, g_NxR = x[:M * rank].reshape(M, rank), x[M * rank:].reshape(N, rank)
        return jnp.sum(p_MxN * (logp_MxN - jax.nn.log_softmax(f_MxR @ g_NxR.T, axis=1))) / M

    return jax.value_and_grad(kl)(x)


def svd_factors(target_MxN: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, G), F G^T the best rank-r fit of the row-centred target in squared error (Eckart-Young)."""
    centred = target_MxN - target_MxN.mean(axis=1, keepdims=True)
    u, sv, vt = np.linalg.svd(centred, full_matrices=False)
    root = np.sqrt(sv[:rank])
    return u[:, :rank] * root, vt[:rank].T * root


HEAD_NATS = 10.0  # the clipped start fits log p* only within this many nats of each row's top


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread: scipy's L-BFGS-B calls it on vectors of a few thousand entries, where
    OpenBLAS's threads cost ten times the work (measured on 2 busy cores, n = 2,000, maxcor 20: 1.4 ms
    of overhead per iteration against 0.23 ms). threadpoolctl sets it; without it this does nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def low_rank_kl(target_MxN: np.ndarray, rank: int, *, restarts: int = 4, max_iter: int = 20_000, stall: float = 1e-3,
                seed: int = 0) -> KLFloor:
    """The least mean KL(p* || softmax(F G^T)) over free rank-`rank` factors F (M x r), G (N x r).

    Free factors are the best any rank-r bilinear scorer without a bias (DR at D = r) could do on
    these queries, so their true minimum is a floor of such a DR's KL here (free per-query factors
    need not generalise). The problem is not convex and has many local minima: scipy's L-BFGS-B runs
    in float64 from `restarts` starts, the SVD of log p* (Eckart-Young), the SVD of log p* clipped at
    HEAD_NATS below each row's top (the entries the KL weighs), then alternately a random start of
    the same scale and the SVD start perturbed. A start ends when L-BFGS meets its tolerance, or has
    converged in value: 1,000 iterations lowered the KL by less than `stall` of itself (on peaked
    posteriors L-BFGS creeps, and 20,000 iterations end ~2.5% below 5,000); `max_iter` caps it. The
    best end value is returned (an upper estimate of the true minimum) with the spread of the best two.
    """
    import scipy.optimize

    logp_MxN = np.asarray(target_MxN, np.float64)
    logp_MxN = logp_MxN - np.logaddexp.reduce(logp_MxN, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    f0, g0 = svd_factors(logp_MxN, rank)
    starts = [(f0, g0), svd_factors(np.maximum(logp_MxN, logp_MxN.max(axis=1, keepdims=True) - HEAD_NATS), rank)]
    for k in range(restarts - 2):  # alternately a random start and the SVD start perturbed by 30% of its scale
        shake, base = (1.0, 0.0) if k % 2 == 0 else (0.3, 1.0)
        starts.append((base * f0 + shake * f0.std() * rng.normal(size=f0.shape),
                       base * g0 + shake * g0.std() * rng.normal(size=g0.shape)))
    values, converged = [], 0
    with jax.enable_x64(True), one_blas_thread():
        p, logp = jnp.asarray(np.exp(logp_MxN)), jnp.asarray(logp_MxN)

        def fun(x):
            value, grad = _kl_and_grad(jnp.asarray(x), p, logp)
            return float(value), np.asarray(grad, np.float64)

        for f, g in starts[:restarts]:
            x, value = np.concatenate([f.ravel(), g.ravel()]), np.inf
            for _ in range(0, max_iter, 1_000):
                result = scipy.optimize.minimize(fun, x, jac=True, method="L-BFGS-B",
                                                 options={"maxiter": 1_000, "maxfun": 2_000, "maxcor": 20,
                                                          "gtol": 1e-10, "ftol": 1e-13})
                x, before, value = result.x, value, float(result.fun)
                if result.status != 1 or before - value < stall * value:  # a tolerance met, no step left, or stalled
                    converged += 1
                    break
            values.append(value)
    best = sorted(values)
    return KLFloor(best[0], best[1] - best[0] if len(best) > 1 else float("nan"), converged, tuple(values))


@lru_cache(maxsize=4)
def corpus_true_log_probs(rank: int, n_docs: int, n_queries: int, seed: int) -> np.ndarray:
    """true_log_probs of the sim.corpus corpus of latent rank `rank`, N = n_docs, n_queries test
    queries, flat popularity (zipf 0) and 16 training queries (cached: treat it as read-only)."""
    spec = CorpusSpec(n_docs=n_docs, n_train_queries=16, n_test_queries=n_queries, latent_rank=rank, zipf=0.0,
                      seed=seed)
    return true_log_probs(make_corpus(spec))


@lru_cache(maxsize=256)
def corpus_floors(rank: int, n_docs: int, n_queries: int, seed: int, dim: int) -> dict[int, float]:
    """eckart_young_floors of corpus_true_log_probs at ranks 0 (the centred energy) and `dim` (cached)."""
    return eckart_young_floors(corpus_true_log_probs(rank, n_docs, n_queries, seed), [0, dim])


def complete_trie(vocab: int, depth: int) -> Docids:
    """The complete V-ary trie of depth L: V^L documents, document i's docid the base-V digits of i."""
    return trie_from_codes("random", np.array(list(itertools.product(range(vocab), repeat=depth))), vocab)


def trie_children(docids: Docids) -> tuple[np.ndarray, np.ndarray]:
    """(b_P, l_P): children of every prefix node, and those that are leaves (0 above the last level)."""
    b_P = docids.children_per_node()
    return b_P, np.where(docids.depth_P == docids.length - 1, b_P, 0)


@partial(jax.jit, static_argnames=("graphdef",))
def _trie_log_probs(graphdef, params, query_MxH, rep_codes_PxL, depth_P, valid_PxV, prefix_NxL, codes_NxL):
    """all_doc_log_probs's computation (its node prefixes and its doc_logp_block) as one compiled
    program: eager, its small ops would compile one by one for every (tree, H)."""
    model = nnx.merge(graphdef, params)
    node_prefix_PxH = model.prefix_sums(rep_codes_PxL)[jnp.arange(depth_P.shape[0]), depth_P]
    return doc_logp_block(graphdef, params, query_MxH, node_prefix_PxH, depth_P, valid_PxV, prefix_NxL, codes_NxL)


def random_seq_gr_log_probs(vocab: int, depth: int, hidden: int, n_queries: int, seed: int):
    """log p(d|q) (float64, n_queries x N) of the real sim.models.SeqGR (one decoder block) over
    `complete_trie(vocab, depth)`, at generic parameters: SeqGR's own structure (nnx.eval_shape, no eager
    initialisation), every parameter N(0, 1/H) but the norms' scales (1), query states 2 N(0, 1),
    every docid scored as sim.beam.all_doc_log_probs scores it. Run it under jax.enable_x64 for
    float64 parameters. Returns (log p, b_P, l_P) as sim.checks does (`trie_children`)."""
    rng = np.random.default_rng(seed)
    docids = complete_trie(vocab, depth)
    cfg = ModelConfig(kind="seq_gr", hidden=hidden, depth=1, decoder_depth=1)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: SeqGR(cfg, docids, feature_dim=1, rngs=nnx.Rngs(params=0))))

    def draw(path, leaf):
        names = {getattr(entry, "key", getattr(entry, "name", None)) for entry in path}
        value = np.ones(leaf.shape) if "scale" in names else rng.normal(size=leaf.shape) / math.sqrt(hidden)
        return jax.device_put(value)

    model = nnx.merge(graphdef, jax.tree_util.tree_map_with_path(draw, state))
    graphdef, params = nnx.split(model, nnx.Param)
    query_MxH = jax.device_put(2.0 * rng.normal(size=(n_queries, hidden)))
    tables = (docids.codes_NxL[node_paths(docids)], docids.depth_P, docids.valid_PxV, docids.prefix_NxL,
              docids.codes_NxL)
    log_p_MxN = _trie_log_probs(graphdef, params, query_MxH, *(jax.device_put(t) for t in tables))
    return (np.asarray(log_p_MxN, np.float64), *trie_children(docids))


@dataclasses.dataclass(frozen=True)
class OracleFit:
    """The least mean KL(p* || p) that a free model reached on the given queries: its value, the steps
    it took, and whether it stopped by converging (the last `check` steps lowered it by under `stall` of
    itself) rather than at the step cap."""

    kl: float
    steps: int
    converged: bool


@partial(jax.jit, static_argnames=("graphdef", "opt", "n_steps"))
def _oracle_steps(graphdef, opt, n_steps, params, q_MxH, opt_state, p_MxN, logp_MxN, tables):
    def kl_of(params, q_MxH):
        logq_MxN = _trie_log_probs(graphdef, params, q_MxH, *tables)
        return jnp.mean(jnp.sum(jnp.where(p_MxN > 0, p_MxN * (logp_MxN - logq_MxN), 0.0), axis=1))

    def step(carry, _):
        params, q_MxH, opt_state = carry
        value, grads = jax.value_and_grad(kl_of, argnums=(0, 1))(params, q_MxH)
        updates, opt_state = opt.update(grads, opt_state, (params, q_MxH))
        params, q_MxH = optax.apply_updates((params, q_MxH), updates)
        return (params, q_MxH, opt_state), value

    (params, q_MxH, opt_state), values = jax.lax.scan(step, (params, q_MxH, opt_state), length=n_steps)
    return params, q_MxH, opt_state, kl_of(params, q_MxH)


@lru_cache(maxsize=8)
def _adam(learning_rate: float):
    return optax.adam(learning_rate)


def oracle_tables(docids: Docids) -> tuple:
    """The trie tables of `_trie_log_probs` padded to buckets of nodes and documents (sim.buckets), so that
    one compiled oracle serves every trie of the same buckets (each seed's corpus has its own trie). A
    padded node has one valid child (token 0) and no document below it, so its softmax is finite and
    nothing reads it: its states get no gradient; a padded document's column is sliced off or weighed 0."""
    n_nodes, n_docs = bucket(docids.n_nodes), bucket(docids.n_docs)
    valid_PxV = pad_rows(docids.valid_PxV, n_nodes, False)
    valid_PxV[docids.n_nodes:, 0] = True
    return tuple(jax.device_put(t) for t in (pad_rows(docids.codes_NxL[node_paths(docids)], n_nodes),
                                             pad_rows(docids.depth_P, n_nodes), valid_PxV,
                                             pad_rows(docids.prefix_NxL, n_docs), pad_rows(docids.codes_NxL, n_docs)))


def seq_gr_oracle_kl(target_MxN: np.ndarray, docids: Docids, hidden: int, *, decoder_depth: int = 1,
                     max_steps: int = 20_000, check: int = 500, stall: float = 2e-3, learning_rate: float = 1e-2,
                     seed: int = 0) -> OracleFit:
    """The least mean KL(p* || p_GR) that SeqGR of width H reaches with a free state per query.

    GR's counterpart of `low_rank_kl`: the query tower is replaced by a free H-vector per query, and
    those vectors and the whole decoder (token and level embeddings, blocks, norms, output layer) are
    fitted to the queries' true posterior through the trie, with Adam (float32) until `check` steps
    lower the KL by under `stall` of itself (or `max_steps`). Like the free factors it is an oracle: it
    sees the test queries' p*, and says what GR's parameterisation can express, not what it learns from
    features. An optimised value: an upper estimate of the true minimum.
    """
    logp_MxN = np.asarray(target_MxN, np.float64)
    logp_MxN = logp_MxN - np.logaddexp.reduce(logp_MxN, axis=1, keepdims=True)
    M = logp_MxN.shape[0]
    cfg = ModelConfig(kind="seq_gr", hidden=hidden, depth=1, decoder_depth=decoder_depth)
    model = SeqGR(cfg, docids, feature_dim=1, rngs=nnx.Rngs(params=seed))
    graphdef, params = nnx.split(model, nnx.Param)
    q_MxH = jax.device_put(np.random.default_rng(seed).normal(size=(M, hidden)).astype(np.float32))
    tables = oracle_tables(docids)
    opt = _adam(float(learning_rate))  # one object per rate: a static argument, so the program is reused
    opt_state = zero_state(opt.init, (params, q_MxH))  # on the host: eager, each zeros_like compiles per shape
    n_pad = bucket(docids.n_docs)  # padded documents: p* = 0, so they add nothing to the KL nor to its gradient
    p, logp = (jax.device_put(pad_axis(x.astype(np.float32), n_pad, 1)) for x in (np.exp(logp_MxN), logp_MxN))
    value, done = np.inf, 0
    while done < max_steps:
        params, q_MxH, opt_state, new = _oracle_steps(graphdef, opt, check, params, q_MxH, opt_state, p, logp, tables)
        new, done = float(new), done + check
        if value - new < stall * new:
            return OracleFit(min(value, new), done, True)
        value = new
    return OracleFit(value, done, False)
