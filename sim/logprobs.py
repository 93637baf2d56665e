"""Whole log-probability matrices of a trained model on a small corpus, and their distance to the truth.

For the capacity experiments (docs/design.md, "Low-rank capacity"): with N small, the model's
log p(d|q) over every test query and document (M x N, float64) can be held and compared with the
true log-posterior A* up to the per-row shift the softmax ignores:
`rowshift_sq_err` = min_c ||A* - log p - c 1^T||_F^2 / M = ||(A* - log p) P||_F^2 / M, P = I - 11^T/N,
which no model can take below the Eckart-Young floor at its rank (theory.eckart_young_floor).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from sim.beam import all_doc_log_probs
from sim.corpus import Corpus, log_posterior_rows
from sim.docids import Docids
from sim.models import SeqGR

__all__ = ["model_log_probs", "true_log_probs", "eckart_young_floors", "rowshift_sq_err", "low_rank_kl"]

MAX_ENTRIES = 50_000_000  # M x N float64 entries held at once (400 MB)


def _check(corpus: Corpus):
    entries = corpus.test.size * corpus.n_docs
    if entries > MAX_ENTRIES:
        raise ValueError(f"{corpus.test.size} test queries x {corpus.n_docs} documents = {entries:,} entries: the "
                         f"whole log-probability matrix is for small corpora (at most {MAX_ENTRIES:,})")


def model_log_probs(model, corpus: Corpus, docids: Docids | None = None) -> np.ndarray:
    """log p_model(d|q) of every test query and document (M x N, float64)."""
    _check(corpus)
    q_MxH = model.encode_queries(jnp.asarray(corpus.test.features_MxF))
    if isinstance(model, SeqGR):
        return np.concatenate([block for _, block in all_doc_log_probs(model, q_MxH, docids)]).astype(np.float64)
    emb_NxD, bias_N = model.doc_table(None, jnp.asarray(corpus.doc_features_NxF))
    scores_MxN = np.asarray(q_MxH @ emb_NxD.T + bias_N[None, :], np.float64)
    top_M = scores_MxN.max(axis=1, keepdims=True)
    return scores_MxN - top_M - np.log(np.exp(scores_MxN - top_M).sum(axis=1, keepdims=True))


def true_log_probs(corpus: Corpus) -> np.ndarray:
    """log p*(d|q) of every test query and document (M x N, float64)."""
    _check(corpus)
    return log_posterior_rows(corpus, corpus.test, 0, corpus.test.size).astype(np.float64)


def eckart_young_floors(target_MxN: np.ndarray, ranks) -> dict[int, float]:
    """theory.eckart_young_floor of the row-centred target at each rank, in float64."""
    import jax

    from theory import eckart_young_floor

    with jax.enable_x64(True):
        target = jnp.asarray(target_MxN, jnp.float64)
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
    import jax
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
