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

import itertools
import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sim.beam import all_doc_log_probs, doc_logp_block, node_paths
from sim.corpus import Corpus, CorpusSpec, log_posterior_rows, make_corpus
from sim.docids import Docids, trie_from_codes
from sim.models import ModelConfig, SeqGR

__all__ = ["model_log_probs", "true_log_probs", "eckart_young_floors", "rowshift_sq_err", "low_rank_kl",
           "corpus_true_log_probs", "corpus_floors", "complete_trie", "trie_children", "random_seq_gr_log_probs"]

MAX_ENTRIES = 50_000_000  # M x N float64 entries held at once (400 MB)


def _check(corpus: Corpus):
    entries = corpus.test.size * corpus.n_docs
    if entries > MAX_ENTRIES:
        raise ValueError(f"{corpus.test.size} test queries x {corpus.n_docs} documents = {entries:,} entries: the "
                         f"whole log-probability matrix is for small corpora (at most {MAX_ENTRIES:,})")


def model_log_probs(model, corpus: Corpus, docids: Docids | None = None) -> np.ndarray:
    """log p_model(d|q) of every test query and document (M x N, float64)."""
    from sim.evaluate import model_scores, query_states  # compiled programs (eager, each op compiles per shape)

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
    from theory import eckart_young_floor

    with jax.enable_x64(True):
        target = jax.device_put(np.asarray(target_MxN, np.float64))
        return {r: float(eckart_young_floor(target, int(min(r, min(target_MxN.shape))))) for r in set(ranks)}


def rowshift_sq_err(target_MxN: np.ndarray, logp_MxN: np.ndarray) -> float:
    """min over per-row shifts of the squared error, per query (the best shift is the row mean)."""
    resid_MxN = target_MxN - logp_MxN
    resid_MxN = resid_MxN - resid_MxN.mean(axis=1, keepdims=True)
    return float(np.sum(np.square(resid_MxN))) / target_MxN.shape[0]


def low_rank_kl(target_MxN: np.ndarray, rank: int, *, steps: int = 3_000, learning_rate: float = 0.05,
                seed: int = 0) -> float:
    """The least mean KL(p* || softmax(F G^T)) over free rank-`rank` factors F (M x r), G (N x r).

    Free factors are the best any rank-r bilinear scorer (DR at D = r, no bias) could do on these
    queries, so this is DR's KL floor at D = r as an optimisation reaches it (full-batch Adam; a
    local optimum would only raise it, so read it as an upper estimate of the true floor).
    """
    import optax

    p_MxN = jnp.asarray(np.exp(target_MxN - np.logaddexp.reduce(target_MxN, axis=1, keepdims=True)), jnp.float32)
    logp_MxN = jnp.log(jnp.maximum(p_MxN, 1e-38))
    M, N = p_MxN.shape
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {"f": jax.random.normal(k1, (M, rank)) * 0.1, "g": jax.random.normal(k2, (N, rank)) * 0.1}
    opt = optax.adam(learning_rate)

    def kl(params):
        s_MxN = params["f"] @ params["g"].T
        return jnp.mean(jnp.sum(p_MxN * (logp_MxN - jax.nn.log_softmax(s_MxN, axis=1)), axis=1))

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            value, grads = jax.value_and_grad(kl)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, _), values = jax.lax.scan(step, (params, opt.init(params)), length=steps)
        return kl(params), values

    final, _ = run(params)
    return float(final)


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
