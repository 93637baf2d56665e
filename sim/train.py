"""Training: one compiled step, many steps inside `lax.scan`, several seeds under `vmap`.

`train(model_cfg, train_cfg, data, seeds)` returns the trained parameters of every seed (stacked
along a leading axis) and the loss curve. DR and AtomicGR train with either objective
(`global`: full softmax over all N; `local`: sampled softmax with K negatives from a proposal in
`sim.samplers`, logQ-corrected or not), so the objective can be isolated from the architecture;
SeqGR trains by maximum likelihood over its trie-masked factorisation (`mle`), which is globally
normalised by construction. `data` is one TrainData shared by every seed, or one per seed (each
seed its own corpus, same shapes), vmapped along with the parameters. A free document table can be
updated row-sparsely (`sparse_table=True`, see `sim.sparse_train`). See docs/design.md, section 4.

Compiled once per model, not per sweep point: the documents are padded to a bucket of N
(`sim.buckets`; padded documents are masked, the number of real ones is a traced value), and the
steps of a call and the schedule's total are traced too, so every N of one bucket and every step
count share one training program. The padding stays inside `train`: its result has N rows.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from functools import lru_cache, partial

import jax
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from grdr.sim.buckets import bucket, mask_bias_N, pad_axis
from grdr.sim.curves import checkpoint_targets
from grdr.sim.hard_pool import hard_pool, pool_false_negatives
from grdr.sim.local_objective import draw_candidates, local_loss
from grdr.sim.models import ModelConfig, make_model, map_doc_rows
from grdr.sim.samplers import get_sampler
from grdr.sim.scorers import scorer_of
from grdr.sim.sparse_train import SparseState
from grdr.sim.optim import TRACES, batch_rows, compile_count, learning_rate, n_docs, optimizer, run_steps, step_key, zero_state
from grdr.sim.train_config import TrainConfig
from grdr.sim.train_data import TrainData, device_data
from grdr.sim.widths import abstract_model, check_inert, check_padding, pad_params

__all__ = ["TrainConfig", "TrainData", "TrainResult", "TrainingDiverged", "train", "model_at", "compile_count",
           "learning_rate"]

class TrainingDiverged(FloatingPointError):
    """The loss turned NaN or infinite; the message carries the step and the configuration."""


@dataclasses.dataclass
class TrainResult:
    graphdef: nnx.GraphDef
    params: nnx.State  # leading axis: seed
    losses_SxT: np.ndarray  # mean loss of each compiled call, per seed
    seconds: float
    compiles: int  # training programs compiled by this call (0 when an earlier call's are reused)
    call_seconds: tuple[float, ...] = ()  # wall time of each compiled call (the first includes compiling)
    pool_false_negatives_S: np.ndarray | None = None  # share of the last hard pool inside the top p* mass
    heldout_SxT: np.ndarray | None = None  # held-out full-softmax NLL before training and after each call
    curve: dict | None = None  # learning curve: "step" (C,), and per metric an S x C array (sim.curves)
    best_step_S: np.ndarray | None = None  # early_stop: per seed, the steps after which `params` were taken

    def heldout_falls_S(self) -> tuple[np.ndarray, np.ndarray]:
        """(fall of the held-out NLL over the last quarter of the calls, its fall over all of training),
        in nats, per seed: the mean of the last quarter's calls against the quarter before, and
        against the NLL before training. NaN without a held-out set or with fewer than 4 calls."""
        curve = self.heldout_SxT
        T = 0 if curve is None else curve.shape[1] - 1
        if T < 4:
            nan = np.full(self.losses_SxT.shape[0], np.nan)
            return nan, nan
        w = T // 4
        last = curve[:, -w:].mean(1)
        return curve[:, -2 * w:-w].mean(1) - last, curve[:, 0] - last


class _Best:
    """Early stopping: per seed, the parameters after the call with the least held-out NLL so far (on the
    host; the first of equal values is kept) and the steps they had trained."""

    def __init__(self, params, nll_S):
        self.params = jax.tree.map(np.array, params)
        self.nll_S = np.asarray(nll_S, np.float64).copy()
        self.step_S = np.zeros(self.nll_S.shape[0], np.int64)

    def offer(self, params, nll_S, step: int) -> None:
        better_S = np.asarray(nll_S, np.float64) < self.nll_S
        if not better_S.any():
            return
        self.params = jax.tree.map(
            lambda old, new: np.where(better_S.reshape((-1,) + (1,) * (old.ndim - 1)), np.asarray(new), old),
            self.params, params)
        self.nll_S = np.where(better_S, nll_S, self.nll_S)
        self.step_S = np.where(better_S, step, self.step_S)


def model_at(result: TrainResult, i: int) -> nnx.Module:
    """The trained model of the i-th seed (taken on the host: an eager x[i] compiles once per shape)."""
    return nnx.merge(result.graphdef, jax.tree.map(lambda x: jax.device_put(np.asarray(x)[i]), result.params))


def _masked_table(model, consts):
    """Every document's representation and bias, the padded ones scored -inf."""
    emb_NxD, bias_N = model.doc_table(None, consts["doc_features"])
    if "n_docs" in consts:
        bias_N = bias_N + mask_bias_N(consts["n_docs"], bias_N.shape[0], bias_N.dtype)
    return emb_NxD, bias_N


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
        emb_NxD, bias_N = _masked_table(model, consts)
        return scorer_of(model).softmax_loss(q_BxD, emb_NxD, bias_N, pos, allow_blocks=allow_blocks).mean()
    B, K = pos.shape[0], cfg.num_negatives
    idx_BxK1, log_q_BxK1, valid_BxK = draw_candidates(key, pos, cfg, n_docs(consts), consts, batch.get("pool"))
    emb, bias = model.doc_table(idx_BxK1.reshape(-1), consts["doc_features"])
    s_BxK1 = scorer_of(model).gathered(q_BxD, emb.reshape(B, K + 1, *emb.shape[1:])) + bias.reshape(B, K + 1)
    return local_loss(s_BxK1, log_q_BxK1, valid_BxK, cfg)


@partial(jax.jit, static_argnames=("graphdef", "kind", "data_axis"))
def _heldout_nll(graphdef, params_S, heldout, consts, *, kind, data_axis):
    """Per seed, the mean full-softmax NLL of the held-out pairs (SeqGR: of their docids)."""

    def one_seed(params, heldout, consts):
        model = nnx.merge(graphdef, params)
        q = model.encode_queries(heldout["query_features"])
        pos = heldout["pos"]
        if kind == "seq_gr":
            valid = consts["valid_PxV"][consts["prefix_NxL"][pos]]
            return -model.log_prob(q, consts["codes_NxL"][pos], valid).mean()
        emb_NxD, bias_N = _masked_table(model, consts)
        return scorer_of(model).softmax_loss(q, emb_NxD, bias_N, pos).mean()

    return jax.vmap(one_seed, in_axes=(0, data_axis, data_axis))(params_S, heldout, consts)


@lru_cache(maxsize=64)
def _make_run_chunk(graphdef, cfg: TrainConfig, kind: str, allow_blocks: bool = True, data_axis: int | None = None):
    """A compiled function running n_steps optimizer steps for every seed at once:
    fn(params, opt_state, keys, data, consts, pool, n_steps, total_steps). The steps of the call and
    the schedule's total are traced scalars, so one program serves every length.

    data_axis=0 when every seed has its own data (vmapped with the parameters); None when shared.
    allow_blocks=False keeps the full softmax materialised at every size: on a device mesh the
    B x N scores are sharded along N (each device holds its own columns), which a loop of dynamic
    slices over the document table would gather instead."""
    loss_fn = partial(_loss_fn, graphdef, cfg=cfg, kind=kind, allow_blocks=allow_blocks)

    def one_seed(params, opt_state, key, data, consts, pool_MxP, n_steps, total_steps):
        TRACES[0] += 1
        opt = optimizer(cfg, total_steps)

        def step(_, carry):
            params, opt_state, key, loss_sum = carry
            key, k_batch, k_neg = jax.random.split(key, 3)
            batch = batch_rows(k_batch, cfg.batch_size, data, pool_MxP)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, k_neg, consts)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, loss_sum + loss

        return run_steps(step, (params, opt_state, key), n_steps)

    # donating params and optimizer state lets XLA update them in place: no copy of an N-row table per call
    in_axes = (0, 0, 0, data_axis, data_axis, 0, None, None)
    return jax.jit(jax.vmap(one_seed, in_axes=in_axes), donate_argnums=(0, 1))


def _check(model_cfg: ModelConfig, cfg: TrainConfig, datas: list[TrainData], seeds: list[int], mesh) -> None:
    kind = model_cfg.kind
    if kind == "seq_gr" and cfg.objective != "mle":
        raise ValueError(f"SeqGR trains by maximum likelihood: objective={cfg.objective!r}, expected 'mle'")
    if kind != "seq_gr" and cfg.objective == "mle":
        raise ValueError(f"objective 'mle' is SeqGR's; {kind} takes 'global' or 'local'")
    if len(datas) != len(seeds):
        raise ValueError(f"{len(datas)} TrainData for {len(seeds)} seeds: give one, or one per seed")
    if not 0 <= cfg.heldout < datas[0].pos_M.shape[0]:
        raise ValueError(f"TrainConfig.heldout={cfg.heldout} must leave training pairs of the "
                         f"{datas[0].pos_M.shape[0]} given")
    shapes = {(d.query_features_MxF.shape, d.doc_features_NxF.shape) for d in datas}
    if len(shapes) > 1:
        raise ValueError(f"per-seed TrainData must share their shapes, got {sorted(shapes)}")
    if cfg.objective == "local" and get_sampler(cfg.sampler).needs_pool and cfg.hard_pool > datas[0].n_docs:
        raise ValueError(f"TrainConfig.hard_pool={cfg.hard_pool} exceeds n_docs={datas[0].n_docs}")
    if cfg.sparse_table:
        if kind != "dr" or model_cfg.doc_side != "table":
            raise ValueError("TrainConfig.sparse_table needs a DualEncoder with doc_side='table'")
        if mesh is not None:
            raise ValueError("TrainConfig.sparse_table is single-device; drop the mesh")


class _DenseState:
    """Parameters and optimizer state of every seed, advanced by compiled calls of n steps."""

    def __init__(self, graphdef, params, cfg, kind, mesh, data_axis):
        self.graphdef, self.params, self.cfg, self.kind = graphdef, params, cfg, kind
        self.opt_state = zero_state(jax.vmap(optimizer(cfg).init), params)
        self.allow_blocks, self.data_axis = mesh is None, data_axis

    def shard(self, mesh, n_docs):
        from grdr.sim.sharding import shard_along_docs

        self.params = shard_along_docs(self.params, n_docs, mesh, axis=1)  # axis 0 is the seed
        self.opt_state = shard_along_docs(self.opt_state, n_docs, mesh, axis=1)

    def current(self):
        return self.params

    def run(self, n, keys, dev, consts, pool):
        fn = _make_run_chunk(self.graphdef, step_key(self.cfg), self.kind, self.allow_blocks, self.data_axis)
        self.params, self.opt_state, keys, loss_S = fn(self.params, self.opt_state, keys, dev, consts, pool,
                                                       np.int32(n), np.int32(self.cfg.steps))
        return keys, loss_S


def padded_docs(n_docs: int, mesh=None, pad_docs: int | None = None) -> int:
    """Document slots of the compiled programs: N's bucket (or the bucket of `pad_docs`, a larger corpus
    size whose programs a group shares), a multiple of the mesh's devices."""
    n_pad = bucket(max(n_docs, pad_docs or 0))
    n_dev = 1 if mesh is None else mesh.devices.size
    return -(-n_pad // n_dev) * n_dev


def _init_params(model_cfg: ModelConfig, datas: list[TrainData], seeds: list[int], n_docs: int, n_pad: int,
                 pad_to: ModelConfig | None = None):
    """(graphdef, every seed's parameters stacked) with n_pad document rows: the
    first n_docs are the initialisation at n_docs exactly, the rest zero. Threefry draws depend on the
    flat index only (jax_threefry_partitionable), so a table drawn with n_pad rows starts with the
    n_docs-row draw, and one initialisation program serves a whole bucket; otherwise the tables are
    drawn at n_docs. With pad_to, the model of model_cfg is initialised and then zero-padded to
    pad_to's widths (sim.widths), and the graphdef is pad_to's."""
    F = datas[0].doc_features_NxF.shape[1]
    at = n_pad if jax.config.jax_threefry_partitionable else n_docs
    models = [make_model(model_cfg, n_docs=at, feature_dim=F, docids=d.docids, seed=s) for d, s in zip(datas, seeds)]
    graphdef, _ = nnx.split(models[0])
    # stacked, padded and zeroed on the host: eager, each would compile once per shape
    params = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *[nnx.state(m, nnx.Param) for m in models])
    if pad_to is not None and pad_to != model_cfg:
        graphdef, target = abstract_model(pad_to, n_docs=at, feature_dim=F, docids=datas[0].docids)
        params = pad_params(params, target, leading=1)
    params = map_doc_rows(params, model_cfg.kind, lambda x_SxN: _zero_past(pad_axis(x_SxN, n_pad, 1), n_docs))
    return graphdef, jax.device_put(params)


def _zero_past(x_SxNx_: np.ndarray, n_docs: int) -> np.ndarray:
    x_SxNx_ = x_SxNx_.copy()
    x_SxNx_[:, n_docs:] = 0
    return x_SxNx_


def _first_rows(x_SxNx_, n_docs: int):
    """The first n_docs rows of axis 1, copied through the host: an eager slice would compile per N.
    Unpadded arrays come back as they are (sharded along N where the mesh split them)."""
    if x_SxNx_.shape[1] == n_docs:
        return x_SxNx_
    return jax.device_put(np.asarray(x_SxNx_)[:, :n_docs])


@jax.jit
def _seed_keys(seeds_S):
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(seeds_S)


def train(model_cfg: ModelConfig, cfg: TrainConfig, data: TrainData | Sequence[TrainData], seeds, *,
          mesh=None, curve=None, pad_to: ModelConfig | None = None, pad_docs: int | None = None) -> TrainResult:
    """Train one model per seed (under vmap) and return their parameters and loss curves.

    Args:
      model_cfg, cfg: the model and how to train it.
      data: one TrainData for every seed, or a sequence of one per seed (same shapes).
      seeds: initialisation and sampling seeds, one model each.
      mesh: optional sim.sharding.doc_mesh; every array indexed by document is then sharded
        along N over its devices (shared data only); the compiled program and its results are
        the same as on one device.
      curve: optional learning-curve evaluator (sim.curves.curve_evaluator), called before training
        and at log-spaced call boundaries (sim.curves.checkpoint_targets); its values land in
        TrainResult.curve.
      pad_to: optional wider ModelConfig (sim.widths.padded_config): the model of model_cfg is trained
        inside it, its extra units zero and exactly inert, so that every width of a bucket shares the
        compiled programs; the result is the padded model (the same function; checked: no padded entry
        moved). Its parameter count is sim.widths.param_count of model_cfg.
      pad_docs: optional corpus size past N whose bucket the documents are padded to (`padded_docs`):
        the padding is masked as any bucket's is, so a group of a smaller N shares a larger N's programs
        (the same numbers up to float rounding; the result still has N rows).
    """
    seeds = list(seeds)
    shared = isinstance(data, TrainData)
    datas = [data] * len(seeds) if shared else list(data)
    shared = shared or all(d is datas[0] for d in datas)
    _check(model_cfg, cfg, datas, seeds, mesh)
    if mesh is not None and not shared:
        raise ValueError("a device mesh needs one TrainData shared by every seed")
    kind, n_docs = model_cfg.kind, datas[0].n_docs
    t0 = time.perf_counter()
    n_pad = padded_docs(n_docs, mesh, pad_docs)
    if pad_to is not None:
        check_padding(model_cfg, pad_to)
        if cfg.sparse_table and pad_to != model_cfg:
            raise ValueError("TrainConfig.sparse_table trains at the model's own widths: drop pad_to")
    graphdef, params = _init_params(model_cfg, datas, seeds, n_docs, n_pad, pad_to)
    traces_before = compile_count()
    keys = _seed_keys(np.asarray(seeds, np.int32))
    dev, heldout, consts, exclude = device_data(datas, cfg, kind, shared, n_pad)
    exclude = exclude["exclude"]
    data_axis = None if shared else 0
    use_pool = cfg.objective == "local" and get_sampler(cfg.sampler).needs_pool

    if cfg.sparse_table:
        state = SparseState(model_cfg, params, cfg, datas[0].doc_features_NxF.shape[1], data_axis)
    else:
        state = _DenseState(graphdef, params, cfg, kind, mesh, data_axis)
    if mesh is not None:
        from grdr.sim.sharding import shard_along_docs

        state.shard(mesh, n_pad)
        consts = shard_along_docs(consts, n_pad, mesh)
        dev = shard_along_docs(dev, n_pad, mesh)

    losses, call_seconds, heldout_nll = [], [], []
    if cfg.heldout:
        heldout_nll.append(np.asarray(_heldout_nll(graphdef, state.current(), heldout, consts, kind=kind,
                                                   data_axis=data_axis)))
    best = _Best(state.current(), heldout_nll[0]) if cfg.early_stop else None
    done, pool, targets, curve_rows = 0, None, None, []
    if curve is not None:
        curve_rows.append((0, curve(graphdef, state.current(), consts, data_axis)))
    bar = tqdm(total=cfg.steps, desc=f"train {kind}/{cfg.objective}", disable=not cfg.progress, leave=False)
    while done < cfg.steps:
        # a call never crosses a pool refresh, so the pool is rebuilt exactly every hard_refresh steps
        n = min(cfg.steps_per_call, cfg.steps - done)
        if use_pool:
            n = min(n, cfg.hard_refresh - done % cfg.hard_refresh)
            if done % cfg.hard_refresh == 0:
                pool = hard_pool(graphdef, state.current(), dev["query_features"], consts["doc_features"], exclude,
                                 consts["n_docs"], pool=cfg.hard_pool, data_axis=data_axis)
        start = time.perf_counter()
        keys, loss_S = state.run(n, keys, dev, consts, pool)
        loss_S = np.asarray(loss_S)  # waits for the call: its losses are its last output
        call_seconds.append(time.perf_counter() - start)
        if not np.all(np.isfinite(loss_S)):
            bar.close()
            raise TrainingDiverged(
                f"loss became {loss_S} at steps {done}-{done + n} (seeds {seeds}); "
                f"model={model_cfg}, train={cfg}. Lower the learning rate or raise the temperature.")
        losses.append(loss_S)
        if cfg.heldout:
            heldout_nll.append(np.asarray(_heldout_nll(graphdef, state.current(), heldout, consts, kind=kind,
                                                       data_axis=data_axis)))
        done += n
        if best is not None:
            best.offer(state.current(), heldout_nll[-1], done)
        if curve is not None:
            targets = checkpoint_targets(cfg.steps, done, cfg.curve_points) if targets is None else targets
            if np.any((targets <= done) & (targets > curve_rows[-1][0])):
                curve_rows.append((done, curve(graphdef, state.current(), consts, data_axis)))
        bar.update(n)
        bar.set_postfix(loss=float(loss_S.mean()))
    bar.close()
    if pad_to is not None and pad_to != model_cfg:
        _, real = abstract_model(model_cfg, n_docs=n_pad, feature_dim=datas[0].doc_features_NxF.shape[1])
        check_inert(state.current(), real, leading=1, what=f"(training {model_cfg} inside {pad_to}) ")
    final = state.current() if best is None else best.params
    params = map_doc_rows(final, kind, lambda x: _first_rows(x, n_docs))
    jax.block_until_ready(params)
    false_neg = pool_false_negatives(pool, datas, cfg.denoise_mass) if pool is not None else None
    curve_out = None
    if curve_rows:
        curve_out = {"step": np.array([step for step, _ in curve_rows])}
        curve_out.update({k: np.stack([row[k] for _, row in curve_rows], axis=1) for k in curve_rows[0][1]})
    return TrainResult(graphdef, params, np.stack(losses, axis=1), time.perf_counter() - t0,
                       compile_count() - traces_before, tuple(call_seconds), false_neg,
                       np.stack(heldout_nll, axis=1) if heldout_nll else None, curve_out,
                       None if best is None else best.step_S)
