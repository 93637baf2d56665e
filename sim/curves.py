"""Learning curves: KL to p* and Success@1 on held-out test queries at log-spaced checkpoints of training.

`CurveData` holds, per seed (each its own corpus), the first m test queries' features, their exact
log p* over all N documents and their argmax (the qrels). `curve_evaluator(kind, curve_data, docids)`
returns the function `sim.train.train` calls at its checkpoints: for DR and AtomicGR one compiled,
seed-vmapped pass (scores of the m queries against all documents, KL and the top-1), for SeqGR its
trie log-probabilities per seed (sim.beam.all_doc_log_probs). `checkpoint_targets` spaces the
checkpoints logarithmically over training; a checkpoint falls on the first call boundary at or past
its target, so no extra compiled scan length is needed. m is capped so that m x N stays small.

`converged_from_curve` reads a curve as the report's convergence check: the last doubling of the
steps lowered the KL by at most CONVERGED_SHARE of its final value.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.buckets import pad_axis
from grdr.sim.corpus import Corpus, log_posterior_rows
from grdr.sim.scorers import scorer_of

__all__ = ["CurveData", "curve_data", "curve_evaluator", "checkpoint_targets", "converged_from_curve",
           "CHECKPOINTS", "CONVERGED_SHARE"]

CHECKPOINTS = 10            # log-spaced targets; call boundaries give at least 8 distinct ones from 10 calls
_MAX_ENTRIES = 1 << 21      # m x N of the curve's log p* per seed
CONVERGED_SHARE = 0.05


@dataclasses.dataclass(frozen=True)
class CurveData:
    """Per seed, stacked along axis 0: query features S x m x F, log p* S x m x N, argmax S x m."""

    query_features_SxMxF: np.ndarray
    logp_SxMxN: np.ndarray
    pos_SxM: np.ndarray


def curve_data(corpora: list[Corpus], max_queries: int = 500) -> CurveData:
    """The first m test queries of each seed's corpus (m = min(max_queries, test queries, 2^21 / N))."""
    n_docs = corpora[0].n_docs
    m = int(max(1, min(max_queries, corpora[0].test.size, _MAX_ENTRIES // n_docs)))
    feats = np.stack([c.test.features_MxF[:m] for c in corpora]).astype(np.float32)
    logp = np.stack([log_posterior_rows(c, c.test, 0, m) for c in corpora]).astype(np.float32)
    pos = np.stack([c.test.pos_M[:m] for c in corpora]).astype(np.int32)
    return CurveData(feats, logp, pos)


@partial(jax.jit, static_argnames=("graphdef", "data_axis"))
def _dense_curve(graphdef, params_S, feats_SxMxF, logp_SxMxN, pos_SxM, doc_features, *, data_axis):
    """Per seed: mean KL(p* || p_model) and Success@1 of the curve queries (DR and AtomicGR)."""

    def one(params, feats_MxF, logp_MxN, pos_M, doc_features):
        model = nnx.merge(graphdef, params)
        q = model.encode_queries(feats_MxF)
        emb, bias = model.doc_table(None, doc_features)
        s_MxN = scorer_of(model).scores(q, emb) + bias[None, :]
        s_MxN = jnp.where(logp_MxN > -jnp.inf, s_MxN, -jnp.inf)   # padded documents (log p* = -inf) masked
        logq_MxN = jax.nn.log_softmax(s_MxN, axis=1)
        p_MxN = jnp.exp(logp_MxN)
        kl_M = jnp.sum(jnp.where(p_MxN > 0, p_MxN * (logp_MxN - logq_MxN), 0.0), axis=1)
        return kl_M.mean(), jnp.mean(jnp.argmax(s_MxN, axis=1) == pos_M)

    return jax.vmap(one, in_axes=(0, 0, 0, 0, data_axis))(params_S, feats_SxMxF, logp_SxMxN, pos_SxM, doc_features)


def curve_evaluator(kind: str, data: CurveData, docids=None):
    """fn(graphdef, params_S, consts, data_axis) -> {"kl": S, "success1": S}, for sim.train.train."""
    feats, pos = (jax.device_put(a) for a in (data.query_features_SxMxF, data.pos_SxM))

    if kind != "seq_gr":
        padded = {}

        def dense(graphdef, params_S, consts, data_axis):
            n_pad = consts["doc_features"].shape[-2]  # the training's documents, padded to their bucket
            if n_pad not in padded:  # log p* at -inf past the real documents: one program per bucket
                padded[n_pad] = jax.device_put(pad_axis(data.logp_SxMxN, n_pad, 2, -np.inf))
            kl_S, s1_S = _dense_curve(graphdef, params_S, feats, padded[n_pad], pos, consts["doc_features"],
                                      data_axis=data_axis)
            return {"kl": np.asarray(kl_S, np.float64), "success1": np.asarray(s1_S, np.float64)}
        return dense

    def seq(graphdef, params_S, consts, data_axis):
        from grdr.sim.beam import all_doc_log_probs
        from grdr.sim.evaluate import query_states

        kl, s1 = [], []
        host_S = jax.tree.map(np.asarray, params_S)  # each seed's slice on the host: eager x[i] compiles per shape
        for i in range(data.pos_SxM.shape[0]):
            model = nnx.merge(graphdef, jax.tree.map(lambda x: jax.device_put(x[i]), host_S))
            q = query_states(model, data.query_features_SxMxF[i])  # compiled: eager, each layer's op compiles
            logq = np.concatenate([b for _, b in all_doc_log_probs(model, q, docids[i])])
            lp = data.logp_SxMxN[i].astype(np.float64)
            kl.append(float(np.mean(np.sum(np.exp(lp) * (lp - logq), axis=1))))
            s1.append(float(np.mean(np.argmax(logq, axis=1) == data.pos_SxM[i])))
        return {"kl": np.asarray(kl), "success1": np.asarray(s1)}
    return seq


def checkpoint_targets(total_steps: int, first: int, count: int = CHECKPOINTS) -> np.ndarray:
    """`count` log-spaced step targets from `first` (the first call's end) to `total_steps`."""
    if total_steps <= first:
        return np.array([total_steps])
    return np.unique(np.round(np.geomspace(first, total_steps, count)).astype(np.int64))


def converged_from_curve(steps, kl_C) -> float:
    """1.0 when the last doubling of the steps (from half of them, read off the curve by interpolation in
    log steps) lowered the KL by at most CONVERGED_SHARE of its final value, 0.0 otherwise, NaN without a
    curve of at least 3 checkpoints (step 0 included). Per doubling, not per share of the whole fall:
    the first steps from a random start fall so far that a curve still falling fast would pass that."""
    steps, kl_C = np.asarray(steps, np.float64), np.asarray(kl_C, np.float64)
    if steps.size < 3 or not np.all(np.isfinite(kl_C)):
        return float("nan")
    half = np.interp(np.log(0.5 * steps[-1]), np.log(np.maximum(steps[1:], 1.0)), kl_C[1:])
    return float(half - kl_C[-1] <= CONVERGED_SHARE * max(kl_C[-1], 0.0))
