"""Training: one compiled step, many steps inside `lax.scan`, several seeds under `vmap`.

`train(model_cfg, train_cfg, data, seeds)` returns the trained parameters of every seed (stacked
along a leading axis) and the loss curve. DR and AtomicGR train with either objective
(`global`: full softmax over all N; `local`: sampled softmax with K negatives from a proposal,
logQ-corrected or not), so the objective can be isolated from the architecture; SeqGR trains by
maximum likelihood over its trie-masked factorisation (`mle`), which is globally normalised by
construction.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from sim.docids import Docids
from sim.models import ModelConfig, make_model
from sim.negatives import SAMPLERS, needs_pool, popularity_cdf, sample_negatives
from sim.softmax import full_softmax_loss
from theory.objectives import sampled_loss

__all__ = ["TrainConfig", "TrainData", "TrainResult", "TrainingDiverged", "train", "model_at", "compile_count"]

_OBJECTIVES = ("global", "local", "mle")


class TrainingDiverged(FloatingPointError):
    """The loss turned NaN or infinite; the message carries the step and the configuration."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    objective: str = "global"
    sampler: str = "uniform"
    num_negatives: int = 16
    logq: bool = False
    batch_size: int = 128
    steps: int = 1000
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    hard_refresh: int = 200  # steps between refreshes of the hard-negative pool
    hard_pool: int = 32  # P: the pool is the model's top-P documents of each training query
    steps_per_call: int = 100  # steps fused into one compiled scan (progress and NaN checks between)
    optimizer: str = "adamw"  # "adamw" or "sgd"
    sparse_table: bool = False  # row-sparse updates of a free document table (local objective only)
    progress: bool = False

    def __post_init__(self):
        if self.objective not in _OBJECTIVES:
            raise ValueError(f"TrainConfig.objective={self.objective!r}: expected one of {_OBJECTIVES}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"TrainConfig.sampler={self.sampler!r}: expected one of {SAMPLERS}")
        for field in ("num_negatives", "batch_size", "steps", "hard_refresh", "hard_pool", "steps_per_call"):
            if getattr(self, field) < 1:
                raise ValueError(f"TrainConfig.{field}={getattr(self, field)}: expected at least 1")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r}: expected 'adamw' or 'sgd'")
        if self.sparse_table and self.objective != "local":
            raise ValueError("TrainConfig.sparse_table needs objective='local': a full softmax touches every row")
        if self.sparse_table and self.weight_decay:
            raise ValueError("TrainConfig.sparse_table with weight_decay > 0: decay would have to touch every row")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate={self.learning_rate}: expected > 0")


@dataclasses.dataclass(frozen=True)
class TrainData:
    """Training pairs and document side information, as arrays."""

    query_features_MxF: np.ndarray
    pos_M: np.ndarray
    doc_features_NxF: np.ndarray
    docids: Docids | None = None

    @property
    def n_docs(self) -> int:
        return self.doc_features_NxF.shape[0]

    @classmethod
    def from_corpus(cls, corpus, docids=None):
        return cls(corpus.train.features_MxF, corpus.train.pos_M, corpus.doc_features_NxF, docids)


@dataclasses.dataclass
class TrainResult:
    graphdef: nnx.GraphDef
    params: nnx.State  # leading axis: seed
    losses_SxT: np.ndarray  # mean loss of each compiled call, per seed
    seconds: float
    compiles: int  # training programs compiled by this call (0 when an earlier call's are reused)
    call_seconds: tuple[float, ...] = ()  # wall time of each compiled call (the first includes compiling)


def model_at(result: TrainResult, i: int) -> nnx.Module:
    """The trained model of the i-th seed."""
    return nnx.merge(result.graphdef, jax.tree.map(lambda x: x[i], result.params))


def _loss_fn(graphdef, params, batch, key, consts, cfg: TrainConfig, kind: str, allow_blocks: bool = True):
    model = nnx.merge(graphdef, params)
    q_feat, pos = batch["query_features"], batch["pos"]
    q_BxD = model.encode_queries(q_feat)
    if kind == "seq_gr":
        codes = consts["codes_NxL"][pos]
        valid = consts["valid_PxV"][consts["prefix_NxL"][pos]]
        return -model.log_prob(q_BxD, codes, valid).mean()
    if cfg.objective == "global":
        # theory.objectives.global_loss; in blocks of documents, with no B x N matrix, at large B N
        emb_NxD, bias_N = model.doc_table(None, consts["doc_features"])
        return full_softmax_loss(q_BxD, emb_NxD, bias_N, pos, allow_blocks=allow_blocks).mean()
    B, K = pos.shape[0], cfg.num_negatives
    neg_BxK, log_q_BxK = sample_negatives(
        cfg.sampler, key, B, K, consts["doc_features"].shape[0],
        pop_cdf_N=consts.get("pop_cdf"), pop_log_q_N=consts.get("pop_log_q"), pool_BxP=batch.get("pool"),
    )
    idx_BxK1 = jnp.concatenate([pos[:, None], neg_BxK], axis=1)
    emb, bias = model.doc_table(idx_BxK1.reshape(-1), consts["doc_features"])
    s_BxK1 = jnp.einsum("bd,bkd->bk", q_BxD, emb.reshape(B, K + 1, -1)) + bias.reshape(B, K + 1)
    return sampled_loss(s_BxK1[:, 0], s_BxK1[:, 1:], log_q_BxK if cfg.logq else None, neg_BxK != pos[:, None]).mean()


_TRACES = [0]  # training programs traced (= compiled) so far in this process


def compile_count() -> int:
    """How many training programs this process has compiled: sweep points of the same shapes reuse one."""
    return _TRACES[0]


def _optimizer(cfg: TrainConfig):
    if cfg.optimizer == "sgd":
        return optax.sgd(cfg.learning_rate)
    return optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)


def _step_key(cfg: TrainConfig) -> TrainConfig:
    """The fields a compiled step does not depend on are reset, so equal programs share one cache entry."""
    return dataclasses.replace(cfg, steps=1, steps_per_call=1, hard_refresh=1, progress=False)


@lru_cache(maxsize=64)
def _make_run_chunk(graphdef, cfg: TrainConfig, kind: str, n_steps: int, allow_blocks: bool = True):
    """A compiled function running n_steps optimizer steps for every seed at once.

    allow_blocks=False keeps the full softmax materialised at every size: on a device mesh the
    B x N scores are sharded along N (each device holds its own columns), which a loop of dynamic
    slices over the document table would gather instead."""
    opt = _optimizer(cfg)

    def one_seed(params, opt_state, key, data, consts, pool_MxP):
        _TRACES[0] += 1
        def step(carry, _):
            params, opt_state, key = carry
            key, k_batch, k_neg = jax.random.split(key, 3)
            rows = jax.random.randint(k_batch, (cfg.batch_size,), 0, data["pos"].shape[0])
            batch = {"query_features": data["query_features"][rows], "pos": data["pos"][rows]}
            if pool_MxP is not None:
                batch["pool"] = pool_MxP[rows]
            loss_fn = partial(_loss_fn, graphdef, cfg=cfg, kind=kind, allow_blocks=allow_blocks)
            loss, grads = jax.value_and_grad(loss_fn)(
                params, batch, k_neg, consts
            )
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, key), loss

        (params, opt_state, key), losses = jax.lax.scan(step, (params, opt_state, key), length=n_steps)
        return params, opt_state, key, losses.mean()

    # donating params and optimizer state lets XLA update them in place: no copy of an N-row table per call
    return jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, None, None, 0)), donate_argnums=(0, 1))


_B1, _B2, _EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults, so lazy and dense Adam agree on touched rows


@lru_cache(maxsize=64)
def _make_run_chunk_sparse(tower_def, cfg: TrainConfig, temperature: float, n_steps: int, n_docs: int):
    """Like _make_run_chunk for a DualEncoder with a free table, but the table (rows and biases, a
    plain dict of N-row arrays) is updated only at the B(K+1) rows a step touches: exactly for
    SGD, and as lazy Adam for "adamw" (moments of untouched rows are not decayed; the bias
    correction uses the global step). The per-step cost then no longer grows with N."""

    opt = _optimizer(cfg)

    def one_seed(tower, table, opt_state, moments, key, data, consts, pool_MxP):
        _TRACES[0] += 1
        def loss_fn(tower, rows, inv_BxK1, batch):
            q_BxD = nnx.merge(tower_def, tower)(batch["query_features"]) / temperature
            emb = rows["doc_embed"][inv_BxK1]
            bias = rows["bias"][inv_BxK1] if "bias" in rows else jnp.zeros(inv_BxK1.shape, emb.dtype)
            s_BxK1 = jnp.einsum("bd,bkd->bk", q_BxD, emb) + bias
            pos, neg = batch["pos"], batch["neg"]
            return sampled_loss(s_BxK1[:, 0], s_BxK1[:, 1:], batch["log_q"] if cfg.logq else None, neg != pos[:, None]).mean()

        def gather(x, uniq_U):
            return x.at[uniq_U].get(mode="fill", fill_value=0)

        def scatter(x, uniq_U, rows):  # the padding index N is out of range and dropped
            return x.at[uniq_U].set(rows, mode="drop")

        def step(carry, _):
            tower, table, opt_state, (m, v, t), key = carry
            key, k_batch, k_neg = jax.random.split(key, 3)
            rows_B = jax.random.randint(k_batch, (cfg.batch_size,), 0, data["pos"].shape[0])
            pos = data["pos"][rows_B]
            neg, log_q = sample_negatives(
                cfg.sampler, k_neg, cfg.batch_size, cfg.num_negatives, n_docs,
                pop_cdf_N=consts.get("pop_cdf"), pop_log_q_N=consts.get("pop_log_q"),
                pool_BxP=None if pool_MxP is None else pool_MxP[rows_B],
            )
            idx_BxK1 = jnp.concatenate([pos[:, None], neg], axis=1)
            uniq_U = jnp.unique(idx_BxK1.reshape(-1), size=idx_BxK1.size, fill_value=n_docs)
            inv_BxK1 = jnp.searchsorted(uniq_U, idx_BxK1)
            rows = {k: gather(x, uniq_U) for k, x in table.items()}
            batch = {"query_features": data["query_features"][rows_B], "pos": pos, "neg": neg, "log_q": log_q}
            loss, (g_tower, g_rows) = jax.value_and_grad(loss_fn, argnums=(0, 1))(tower, rows, inv_BxK1, batch)
            updates, opt_state = opt.update(g_tower, opt_state, tower)
            tower = optax.apply_updates(tower, updates)
            t = t + 1
            if cfg.optimizer == "sgd":
                new_rows = {k: rows[k] - cfg.learning_rate * g_rows[k] for k in rows}
            else:
                m_rows = {k: _B1 * gather(m[k], uniq_U) + (1 - _B1) * g_rows[k] for k in rows}
                v_rows = {k: _B2 * gather(v[k], uniq_U) + (1 - _B2) * g_rows[k] ** 2 for k in rows}
                new_rows = {k: rows[k] - cfg.learning_rate * (m_rows[k] / (1 - _B1**t))
                            / (jnp.sqrt(v_rows[k] / (1 - _B2**t)) + _EPS) for k in rows}
                m = {k: scatter(m[k], uniq_U, m_rows[k]) for k in m}
                v = {k: scatter(v[k], uniq_U, v_rows[k]) for k in v}
            table = {k: scatter(table[k], uniq_U, new_rows[k]) for k in table}
            return (tower, table, opt_state, (m, v, t), key), loss

        (tower, table, opt_state, moments, key), losses = jax.lax.scan(
            step, (tower, table, opt_state, moments, key), length=n_steps)
        return tower, table, opt_state, moments, key, losses.mean()

    return jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, 0, 0, None, None, 0)), donate_argnums=(0, 1, 2, 3))


@partial(jax.jit, static_argnames=("graphdef", "pool"))
def _hard_pool(graphdef, params_S, query_features_MxF, doc_features_NxF, pool):
    """Top-P documents of every training query under each seed's current model (query blocks)."""

    def one_seed(params):
        model = nnx.merge(graphdef, params)
        emb_NxD, bias_N = model.doc_table(None, doc_features_NxF)

        def block(qf_bxF):
            s = model.encode_queries(qf_bxF) @ emb_NxD.T + bias_N[None, :]
            return jax.lax.top_k(s, pool)[1]

        M, F = query_features_MxF.shape
        blk = min(256, M)
        n_blk = -(-M // blk)
        qf = jnp.pad(query_features_MxF, ((0, n_blk * blk - M), (0, 0))).reshape(n_blk, blk, F)
        return jax.lax.map(block, qf).reshape(n_blk * blk, pool)[:M]

    return jax.vmap(one_seed)(params_S)


def train(model_cfg: ModelConfig, cfg: TrainConfig, data: TrainData, seeds, *, mesh=None) -> TrainResult:
    """Train one model per seed (under vmap) and return their parameters and loss curves.

    With a `mesh` (sim.sharding.doc_mesh), every array indexed by document is sharded along N over
    its devices; the compiled program and its results are the same as on one device.
    """
    import time

    kind = model_cfg.kind
    if kind == "seq_gr" and cfg.objective != "mle":
        raise ValueError(f"SeqGR trains by maximum likelihood: objective={cfg.objective!r}, expected 'mle'")
    if kind != "seq_gr" and cfg.objective == "mle":
        raise ValueError(f"objective 'mle' is SeqGR's; {kind} takes 'global' or 'local'")
    seeds = list(seeds)
    t0 = time.perf_counter()
    F = data.doc_features_NxF.shape[1]
    graphdef, _ = nnx.split(make_model(model_cfg, n_docs=data.n_docs, feature_dim=F, docids=data.docids, seed=seeds[0]))
    params = jax.tree.map(
        lambda *xs: jnp.stack(xs),
        *[nnx.state(make_model(model_cfg, n_docs=data.n_docs, feature_dim=F, docids=data.docids, seed=s), nnx.Param) for s in seeds],
    )
    opt = _optimizer(cfg)
    traces_before = compile_count()
    opt_state = jax.vmap(opt.init)(params)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(jnp.asarray(seeds))

    dev = {"query_features": jnp.asarray(data.query_features_MxF), "pos": jnp.asarray(data.pos_M, jnp.int32)}
    consts = {"doc_features": jnp.asarray(data.doc_features_NxF)}
    if kind == "seq_gr":
        consts.update(
            codes_NxL=jnp.asarray(data.docids.codes_NxL),
            prefix_NxL=jnp.asarray(data.docids.prefix_NxL),
            valid_PxV=jnp.asarray(data.docids.valid_PxV),
        )
    local = cfg.objective == "local"
    if local and cfg.sampler == "popularity":
        cdf, log_q = popularity_cdf(data.pos_M, data.n_docs)
        consts.update(pop_cdf=jnp.asarray(cdf), pop_log_q=jnp.asarray(log_q))
    use_pool = local and needs_pool(cfg.sampler)
    if use_pool and cfg.hard_pool > data.n_docs:
        raise ValueError(f"TrainConfig.hard_pool={cfg.hard_pool} exceeds n_docs={data.n_docs}")

    if mesh is not None:
        from sim.sharding import shard_along_docs

        params = shard_along_docs(params, data.n_docs, mesh, axis=1)  # axis 0 is the seed
        opt_state = shard_along_docs(opt_state, data.n_docs, mesh, axis=1)
        consts = shard_along_docs(consts, data.n_docs, mesh)
        dev = shard_along_docs(dev, data.n_docs, mesh)

    sparse = cfg.sparse_table
    if sparse:
        if kind != "dr" or model_cfg.doc_side != "table":
            raise ValueError("TrainConfig.sparse_table needs a DualEncoder with doc_side='table'")
        if mesh is not None:
            raise ValueError("TrainConfig.sparse_table is single-device; drop the mesh")
        tower_def = nnx.graphdef(make_model(model_cfg, n_docs=2, feature_dim=F, seed=0).query_tower)
        pure = nnx.to_pure_dict(params)
        tower = params["query_tower"]
        table = {k: pure[k] for k in ("doc_embed", "bias") if k in pure}
        opt_state = jax.vmap(opt.init)(tower)
        # separate buffers for the two moments: both are donated to the compiled call
        moments = tuple({k: jnp.zeros_like(x) for k, x in table.items()} for _ in range(2)) + (
            jnp.zeros((len(seeds),), jnp.float32),)

        def assemble():
            full = jax.tree.map(lambda x: x, params)
            nnx.replace_by_pure_dict(full, {"query_tower": nnx.to_pure_dict(tower), **table})
            return full

    chunk = min(cfg.steps_per_call, cfg.steps, cfg.hard_refresh if use_pool else cfg.steps)
    runners = {}
    losses, call_seconds = [], []
    done = 0
    pool = None
    bar = tqdm(total=cfg.steps, desc=f"train {kind}/{cfg.objective}", disable=not cfg.progress, leave=False)
    while done < cfg.steps:
        n = min(chunk, cfg.steps - done)
        if use_pool and done % cfg.hard_refresh == 0:
            current = assemble() if sparse else params
            pool = _hard_pool(graphdef, current, dev["query_features"], consts["doc_features"], cfg.hard_pool)
        if n not in runners:
            runners[n] = (_make_run_chunk_sparse(tower_def, _step_key(cfg), model_cfg.temperature, n, data.n_docs) if sparse
                          else _make_run_chunk(graphdef, _step_key(cfg), kind, n, allow_blocks=mesh is None))
        start = time.perf_counter()
        if sparse:
            tower, table, opt_state, moments, keys, loss_S = runners[n](tower, table, opt_state, moments, keys, dev, consts, pool)
        else:
            params, opt_state, keys, loss_S = runners[n](params, opt_state, keys, dev, consts, pool)
        loss_S = np.asarray(loss_S)  # waits for the call: its losses are its last output
        call_seconds.append(time.perf_counter() - start)
        if not np.all(np.isfinite(loss_S)):
            bar.close()
            raise TrainingDiverged(
                f"loss became {loss_S} at steps {done}-{done + n} (seeds {seeds}); "
                f"model={model_cfg}, train={cfg}. Lower the learning rate or raise the temperature."
            )
        losses.append(loss_S)
        done += n
        bar.update(n)
        bar.set_postfix(loss=float(loss_S.mean()))
    bar.close()
    if sparse:
        params = assemble()
    jax.block_until_ready(params)
    return TrainResult(graphdef, params, np.stack(losses, axis=1), time.perf_counter() - t0,
                       compile_count() - traces_before, tuple(call_seconds))
