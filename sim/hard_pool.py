"""The hard-negative pool: each training query's top-P documents under the current model, rebuilt
every few hundred steps, raw or denoised (docs/design.md, section 1).

"Under the current model" means under its scorer (`sim.scorers`, docs/design.md, section 2): a
block of queries is scored against every document by `scorer.scores`, the document bias added.
For the dot-form scorers (dot, cosine, bilinear, lowrank) that is the plain product of the
representations, q @ e^T, the computation this module always did; MaxSim scores in document chunks
inside `MaxSim.scores`, so a block holds its b x N scores and at most a budget of vector pairs,
never an M x N x m x m' array.

A denoised pool leaves out the documents that hold a query's top p* mass (known on a synthetic
corpus), as practitioners drop likely false negatives with a stronger model; `pool_false_negatives`
measures how much of a raw pool is such documents.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.buckets import mask_bias_N
from grdr.sim.samplers import get_sampler
from grdr.sim.scorers import scorer_of

__all__ = ["hard_pool", "exclusions", "pool_false_negatives"]


@partial(jax.jit, static_argnames=("graphdef", "pool", "data_axis"))
def hard_pool(graphdef, params_S, query_features_MxF, doc_features_NxF, exclude_MxT, n_docs=None, *, pool,
              data_axis):
    """Top-P documents of every training query under each seed's current model and its scorer
    (query blocks of at most 256), leaving out each query's `exclude_MxT` documents (-1: none).

    Args:
      graphdef, params_S: the model (DualEncoder with any scorer, or AtomicGR) and every seed's
        parameters, stacked along a leading axis.
      query_features_MxF, doc_features_NxF, exclude_MxT: shared, or per seed along `data_axis`.
      n_docs: the number of real documents when the table is padded past them (sim.buckets; shared,
        or per seed along `data_axis`): the padding is never in a pool. None: every row is real.
      pool: P, documents per query.

    Returns:
      S x M x P document ids, best first (equal scores by lower index, as `jax.lax.top_k`).
    """

    def one_seed(params, query_features_MxF, doc_features_NxF, exclude_MxT, n_real):
        model = nnx.merge(graphdef, params)
        scorer = scorer_of(model)  # dot-form: scores(q, e) is q @ e.T, exactly the dot product's pool
        emb_NxD, bias_N = model.doc_table(None, doc_features_NxF)
        n_docs = emb_NxD.shape[0]
        if n_real is not None:
            bias_N = bias_N + mask_bias_N(n_real, n_docs, bias_N.dtype)

        def block(args):
            qf_bxF, ex_bxT = args
            s_bxN = scorer.scores(model.encode_queries(qf_bxF), emb_NxD) + bias_N[None, :]
            rows_bxT = jnp.broadcast_to(jnp.arange(s_bxN.shape[0])[:, None], ex_bxT.shape)
            s_bxN = s_bxN.at[rows_bxT, jnp.where(ex_bxT >= 0, ex_bxT, n_docs)].set(-jnp.inf, mode="drop")
            return jax.lax.top_k(s_bxN, pool)[1]

        M, F = query_features_MxF.shape
        blk = min(256, M)
        n_blk = -(-M // blk)
        qf = jnp.pad(query_features_MxF, ((0, n_blk * blk - M), (0, 0))).reshape(n_blk, blk, F)
        ex = jnp.pad(exclude_MxT, ((0, n_blk * blk - M), (0, 0)), constant_values=-1).reshape(n_blk, blk, -1)
        return jax.lax.map(block, (qf, ex)).reshape(n_blk * blk, pool)[:M]

    return jax.vmap(one_seed, in_axes=(0, data_axis, data_axis, data_axis, data_axis))(
        params_S, query_features_MxF, doc_features_NxF, exclude_MxT, n_docs)


def _held(top_docs_MxT, top_log_p_MxT, mass: float) -> np.ndarray:
    """The fewest top documents of each query's p* holding `mass` of it (-1 elsewhere)."""
    before_MxT = np.cumsum(np.exp(top_log_p_MxT), axis=1) - np.exp(top_log_p_MxT)
    return np.where(before_MxT < mass, top_docs_MxT, -1).astype(np.int32)


def exclusions(data, sampler: str, mass: float) -> np.ndarray:
    """What the pool leaves out for each training query: its top p* mass for a denoised sampler,
    nothing (an M x 1 table of -1) otherwise."""
    M = data.pos_M.shape[0]
    if not get_sampler(sampler).denoise_pool:
        return np.full((M, 1), -1, np.int32)
    if data.top_docs_MxT is None:
        raise ValueError(f"sampler {sampler!r} needs the top documents of p* of each training query: "
                         "build the corpus with CorpusSpec(train_top_k=...) > 0")
    return _held(data.top_docs_MxT, data.top_log_p_MxT, mass)


def pool_false_negatives(pool_SxMxP, data_list, mass: float) -> np.ndarray:
    """Per seed, the share of pool entries inside their query's top p* mass (NaN without p*).

    The pool covers the first M training queries (those not held out: `TrainConfig.heldout` holds
    out the last rows), so only their p* is read."""
    out = []
    for pool_MxP, d in zip(np.asarray(pool_SxMxP), data_list):
        if d.top_docs_MxT is None:
            out.append(np.nan)
            continue
        M = pool_MxP.shape[0]
        held_MxT = _held(d.top_docs_MxT[:M], d.top_log_p_MxT[:M], mass)
        out.append(float(np.mean(np.any(pool_MxP[:, :, None] == held_MxT[:, None, :], axis=2))))
    return np.asarray(out)
