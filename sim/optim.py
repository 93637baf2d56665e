"""The pieces of a training step that the dense trainer (sim.train) and the row-sparse one
(sim.sparse_train) share: the optimizer and its schedule, the step loop inside a compiled call, the
batch draw, the count of compiled training programs and the optimizer's zero state."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from grdr.sim.train_config import TrainConfig

__all__ = ["TRACES", "compile_count", "learning_rate", "optimizer", "step_key", "batch_rows", "run_steps", "n_docs",
           "zero_state"]


TRACES = [0]  # training programs traced (= compiled) so far in this process


def compile_count() -> int:
    """How many training programs this process has compiled: sweep points of the same shapes reuse one."""
    return TRACES[0]


def learning_rate(cfg: TrainConfig, total_steps=None):
    """The step size: a float, or a schedule of the step count (optax's cosine decay over
    `total_steps`, default cfg.steps; a traced total lets one compiled program serve every length)."""
    if cfg.schedule == "constant":
        return cfg.learning_rate
    if cfg.schedule == "rsqrt":
        return lambda count: cfg.learning_rate * jax.lax.rsqrt(1.0 + count / cfg.decay_steps)
    total = cfg.steps if total_steps is None else total_steps
    peak, alpha = cfg.learning_rate, cfg.final_lr_fraction

    def cosine(count):  # optax.cosine_decay_schedule's arithmetic, in float32 with a traced total
        total_f = jnp.asarray(total, jnp.float32)
        count = jnp.minimum(count, total_f)
        return peak * ((1 - alpha) * (0.5 * (1 + jnp.cos(jnp.pi * count / total_f))) + alpha)

    return cosine


def optimizer(cfg: TrainConfig, total_steps=None):
    if cfg.optimizer == "sgd":
        return optax.sgd(learning_rate(cfg, total_steps))
    return optax.adamw(learning_rate(cfg, total_steps), weight_decay=cfg.weight_decay)


def step_key(cfg: TrainConfig) -> TrainConfig:
    """The fields a compiled step does not depend on are reset, so equal programs share one cache entry
    (the schedule reads its total steps as a traced value)."""
    return dataclasses.replace(cfg, steps=1, steps_per_call=1, curve_points=1, hard_refresh=1, progress=False,
                               denoise_mass=0.5, heldout=0, early_stop=False)


def batch_rows(key, batch_size, data, pool_MxP):
    rows = jax.random.randint(key, (batch_size,), 0, data["pos"].shape[0])
    batch = {"query_features": data["query_features"][rows], "pos": data["pos"][rows]}
    if pool_MxP is not None:
        batch["pool"] = pool_MxP[rows]
    return batch


def run_steps(step, carry, n_steps):
    """carry after n_steps (traced) calls of step(i, carry + (loss_sum,)), and the mean loss."""
    *carry, loss_sum = jax.lax.fori_loop(0, n_steps, step, (*carry, jnp.zeros((), jnp.float32)))
    return *carry, loss_sum / n_steps


def n_docs(consts):
    """The number of real documents: traced when the table is padded (consts["n_docs"]), else its length."""
    return consts.get("n_docs", consts["doc_features"].shape[0])


def zero_state(init, params):
    """init(params) for an optimizer state that starts at zeros (Adam's moments and step count, a
    schedule's step count: every optimizer of `optimizer`), built on the host from its shapes:
    eager, each zeros_like would compile one program per shape."""
    return jax.tree.map(lambda s: jax.device_put(np.zeros(s.shape, s.dtype)), jax.eval_shape(init, params))
