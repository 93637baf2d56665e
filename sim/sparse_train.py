"""Row-sparse training of a DualEncoder with a free document table (`TrainConfig(sparse_table=True)`).

A sampled-softmax step touches only the B(K+1) rows of its positives and negatives. Here the table
(rows and biases, a plain dict of N-row arrays) is updated only at those rows: exactly for SGD, and
as lazy Adam for "adamw" (moments of untouched rows are not decayed; the bias correction uses the
global step). The per-step cost then no longer grows with N (docs/design.md, section 4).

The step scores through the model's scorer (`sim.scorers`, docs/design.md, section 2) exactly as
`sim.train._loss_fn` does: the query tower's output becomes `scorer.queries`, the gathered rows
`scorer.docs`, and `scorer.gathered` scores each query against its own positive and negatives. The
scorer's own parameters (score_w, score_u, score_v: shared by every document) are dense, trained
with the query tower by the same optimizer. Every scorer works, MaxSim included: a free table's
rows are `scorer.doc_out` wide (m' D for MaxSim, reshaped to m' x D by `scorer.docs`).
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from grdr.sim.models import make_model
from grdr.sim.local_objective import draw_candidates, local_loss
from grdr.sim.scorers import Scorer, make_scorer
from grdr.sim.optim import TRACES, batch_rows, learning_rate, n_docs, optimizer, run_steps, step_key, zero_state
from grdr.sim.train_config import TrainConfig

__all__ = ["SparseState"]

_B1, _B2, _EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults, so lazy and dense Adam agree on touched rows


def _gather(x, uniq_U):
    return x.at[uniq_U].get(mode="fill", fill_value=0)


def _scatter(x, uniq_U, rows):  # the padding index N is out of range and dropped
    return x.at[uniq_U].set(rows, mode="drop")


def _lazy_adam(cfg: TrainConfig, rows, g_rows, moments, uniq_U, total_steps=None):
    """New rows and moments: Adam on the touched rows only (SGD when cfg.optimizer == 'sgd')."""
    m, v, t = moments
    schedule = learning_rate(cfg, total_steps)
    lr = schedule(t) if callable(schedule) else schedule  # optax counts from 0 before the update
    t = t + 1
    if cfg.optimizer == "sgd":
        return {k: rows[k] - lr * g_rows[k] for k in rows}, (m, v, t)
    m_rows = {k: _B1 * _gather(m[k], uniq_U) + (1 - _B1) * g_rows[k] for k in rows}
    v_rows = {k: _B2 * _gather(v[k], uniq_U) + (1 - _B2) * g_rows[k] ** 2 for k in rows}
    new_rows = {k: rows[k] - lr * (m_rows[k] / (1 - _B1**t)) / (jnp.sqrt(v_rows[k] / (1 - _B2**t)) + _EPS)
                for k in rows}
    m = {k: _scatter(m[k], uniq_U, m_rows[k]) for k in m}
    v = {k: _scatter(v[k], uniq_U, v_rows[k]) for k in v}
    return new_rows, (m, v, t)


@lru_cache(maxsize=64)
def _make_run_chunk_sparse(tower_def, cfg: TrainConfig, scorer: Scorer, data_axis: int | None = None):
    """Like sim.train._make_run_chunk, for the dense parameters (query tower and the scorer's own
    parameters, a dict {"query_tower", "score_params"}) plus a row-sparse table (its rows may be
    padded: the draws read the real count from consts["n_docs"], and the padded rows are never drawn)."""

    def loss_fn(dense, rows, inv_BxK1, batch):
        score_params = dense["score_params"]
        f_BxO = nnx.merge(tower_def, dense["query_tower"])(batch["query_features"])
        q_Bx_ = scorer.queries(score_params, f_BxO)
        d_BxK1x_ = scorer.docs(score_params, rows["doc_embed"][inv_BxK1])
        bias = rows["bias"][inv_BxK1] if "bias" in rows else jnp.zeros(inv_BxK1.shape, q_Bx_.dtype)
        s_BxK1 = scorer.gathered(q_Bx_, d_BxK1x_) + bias
        return local_loss(s_BxK1, batch["log_q"], batch["valid"], cfg)

    def one_seed(dense, table, opt_state, moments, key, data, consts, pool_MxP, n_steps, total_steps):
        TRACES[0] += 1
        opt = optimizer(cfg, total_steps)
        n_rows = next(iter(table.values())).shape[0]  # the padding index: out of range, dropped

        def step(_, carry):
            dense, table, opt_state, moments, key, loss_sum = carry
            key, k_batch, k_neg = jax.random.split(key, 3)
            batch = batch_rows(k_batch, cfg.batch_size, data, pool_MxP)
            idx_BxK1, log_q, valid = draw_candidates(k_neg, batch["pos"], cfg, n_docs(consts), consts,
                                                     batch.get("pool"))
            uniq_U = jnp.unique(idx_BxK1.reshape(-1), size=idx_BxK1.size, fill_value=n_rows)
            inv_BxK1 = jnp.searchsorted(uniq_U, idx_BxK1)
            rows = {k: _gather(x, uniq_U) for k, x in table.items()}
            batch.update(log_q=log_q, valid=valid)
            loss, (g_dense, g_rows) = jax.value_and_grad(loss_fn, argnums=(0, 1))(dense, rows, inv_BxK1, batch)
            updates, opt_state = opt.update(g_dense, opt_state, dense)
            dense = optax.apply_updates(dense, updates)
            new_rows, moments = _lazy_adam(cfg, rows, g_rows, moments, uniq_U, total_steps)
            table = {k: _scatter(table[k], uniq_U, new_rows[k]) for k in table}
            return dense, table, opt_state, moments, key, loss_sum + loss

        return run_steps(step, (dense, table, opt_state, moments, key), n_steps)

    in_axes = (0, 0, 0, 0, 0, data_axis, data_axis, 0, None, None)
    return jax.jit(jax.vmap(one_seed, in_axes=in_axes), donate_argnums=(0, 1, 2, 3))


class SparseState:
    """The dense parameters (query tower and scorer parameters, by the optimizer) and the free
    table (row-sparse) of every seed."""

    def __init__(self, model_cfg, params, cfg: TrainConfig, feature_dim: int, data_axis):
        self.cfg, self.data_axis = cfg, data_axis
        self.scorer = make_scorer(model_cfg)
        self.tower_def = nnx.graphdef(make_model(model_cfg, n_docs=2, feature_dim=feature_dim, seed=0).query_tower)
        self.params = params  # the layout that current() fills in
        pure = nnx.to_pure_dict(params)
        self.dense = {"query_tower": params["query_tower"], "score_params": pure.get("score_params", {})}
        self.table = {k: pure[k] for k in ("doc_embed", "bias") if k in pure}
        self.opt_state = zero_state(jax.vmap(optimizer(cfg).init), self.dense)
        n_seeds = next(iter(self.table.values())).shape[0]
        # separate buffers for the two moments: both are donated to the compiled call
        self.moments = tuple({k: jax.device_put(np.zeros(x.shape, x.dtype)) for k, x in self.table.items()}
                             for _ in range(2)) + (jax.device_put(np.zeros((n_seeds,), np.float32)),)

    def current(self):
        full = jax.tree.map(lambda x: x, self.params)
        dense = {"query_tower": nnx.to_pure_dict(self.dense["query_tower"])}
        if self.dense["score_params"]:
            dense["score_params"] = self.dense["score_params"]
        nnx.replace_by_pure_dict(full, {**dense, **self.table})
        return full

    def run(self, n, keys, dev, consts, pool):
        fn = _make_run_chunk_sparse(self.tower_def, step_key(self.cfg), self.scorer, self.data_axis)
        self.dense, self.table, self.opt_state, self.moments, keys, loss_S = fn(
            self.dense, self.table, self.opt_state, self.moments, keys, dev, consts, pool, np.int32(n),
            np.int32(self.cfg.steps))
        return keys, loss_S
