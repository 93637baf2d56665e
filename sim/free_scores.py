"""The scores and the success readings of the free-embedding protocol (sim.free_embedding): DR's and
MaxSim's scores of free tables, at float32 (highest precision) or as a GPU's default precision
computes them (TF32 inputs, `tf32_scores`), and per query the top-2 hits and the margin."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from grdr.sim.scorers import late_interaction

__all__ = ["tf32_scores"]


def _margins(scores_MxN, rel_MxN):
    """Per query: lower relevant score minus best irrelevant score (> 0 iff top-2 is correct).
    Masked documents score -inf; a padded query (no relevant document) gets +inf."""
    worst_rel_M = jnp.where(rel_MxN, scores_MxN, jnp.inf).min(axis=1)
    best_irr_M = jnp.where(rel_MxN, -jnp.inf, scores_MxN).max(axis=1)
    return worst_rel_M - best_irr_M


def _top2_hits(scores_MxN, rel_MxN):
    """Relevant documents among each query's top 2, ties to the lower index (lax.top_k, like a
    stable argsort of -scores)."""
    _, top_Mx2 = jax.lax.top_k(scores_MxN, 2)
    return jnp.take_along_axis(rel_MxN, top_Mx2, axis=1).sum()


def _tf32(x):
    """x rounded to TensorFloat-32 (8 exponent bits, 10 mantissa bits, to nearest), as NVIDIA tensor
    cores round float32 matmul inputs under JAX's default precision on Ampere and newer GPUs."""
    return jax.lax.reduce_precision(x, exponent_bits=8, mantissa_bits=10)


@jax.custom_vjp
def tf32_scores(a_MxD, b_NxD):
    """a @ b.T as a GPU computes it at default precision: TF32 inputs, float32 accumulation, in the
    forward matmul and in both matmuls of the backward pass."""
    return _tf32(a_MxD) @ _tf32(b_NxD).T


def _tf32_fwd(a_MxD, b_NxD):
    return tf32_scores(a_MxD, b_NxD), (a_MxD, b_NxD)


def _tf32_bwd(res, g_MxN):
    a_MxD, b_NxD = res
    g_MxN = _tf32(g_MxN)
    return g_MxN @ _tf32(b_NxD), g_MxN.T @ _tf32(a_MxD)


tf32_scores.defvjp(_tf32_fwd, _tf32_bwd)


def _dr_scores(temperature: float, matmul: str = "float32"):
    def scores(params, consts):
        if matmul == "tf32":
            return tf32_scores(params["queries"], params["docs"]) / temperature
        q_MxD, d_NxD = params["queries"], params["docs"]
        return jnp.dot(q_MxD, d_NxD.T, precision=jax.lax.Precision.HIGHEST) / temperature

    return scores


def _maxsim_scores(temperature: float, matmul: str = "float32"):
    """MaxSim of free multi-vector tables, sum_i max_j <q_i, d_j> / temperature: one matmul of every
    query vector against every document vector (DR's, TF32 included), then max over each document's
    m' vectors and sum over each query's m vectors. Tables: M x m x D and N x m' x D."""
    def highest(a_IxD, b_JxD):
        return jnp.dot(a_IxD, b_JxD.T, precision=jax.lax.Precision.HIGHEST)

    def scores(params, consts):
        dot = tf32_scores if matmul == "tf32" else highest
        return late_interaction(params["queries"], params["docs"], dot) / temperature

    return scores
