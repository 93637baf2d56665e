"""The local (sampled-softmax) objective of a training step, shared by the dense and the row-sparse
trainers: draw the K negatives, read the proposal's log Q at every candidate, and apply the loss.

The correction is the standard logQ (theory.objectives, "logq": log Q subtracted from every
candidate's logit, the positive included) when `TrainConfig.logq`, else none. Accidental hits (a
negative equal to d+) are kept by default (`TrainConfig.accidental_hits="keep"`): with i.i.d. draws
and hits kept, plain uniform sampling and every logQ-corrected proposal have log p* as their
population minimiser, for any K. Dropping them ("mask", as TensorFlow's remove_accidental_hits does)
adds a bias of order K/N (theory.fixed_point measures it).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from grdr.sim.samplers import get_sampler
from grdr.theory.objectives import sampled_loss

__all__ = ["draw_candidates", "local_loss"]


def draw_candidates(key, pos_B, cfg, n_docs: int, consts: dict, pool_BxP=None):
    """(idx_BxK1: the positive then K negatives, log_q_BxK1 or None, neg_valid_BxK or None)."""
    sampler = get_sampler(cfg.sampler)
    neg_BxK = sampler.draw(key, pos_B.shape[0], cfg.num_negatives, n_docs, consts, pool_BxP)
    idx_BxK1 = jnp.concatenate([pos_B[:, None], neg_BxK], axis=1)
    log_q_BxK1 = sampler.log_q(idx_BxK1, n_docs, consts, pool_BxP) if cfg.logq else None
    valid_BxK = neg_BxK != pos_B[:, None] if cfg.accidental_hits == "mask" else None
    return idx_BxK1, log_q_BxK1, valid_BxK


def local_loss(scores_BxK1: jax.Array, log_q_BxK1, neg_valid_BxK, cfg) -> jax.Array:
    """Mean sampled-softmax loss of the candidates' scores (positive first)."""
    return sampled_loss(scores_BxK1[:, 0], scores_BxK1[:, 1:], log_q_BxK1, "logq" if cfg.logq else "none",
                        neg_valid_BxK).mean()
