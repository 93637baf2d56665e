"""Full-softmax cross-entropy over N documents without a B x N matrix in memory.

`theory.objectives.global_loss` takes the B x N score matrix; written that way, a training step
writes it, reads it back for the max, the exp-sum and the softmax of the backward pass, and keeps
it alive between the two passes. At B = 512 and N = 1e5 that is 200 MB per pass, and on a CPU
with a few GB/s of memory bandwidth those passes, not the matmuls, set the step time; at N = 1e7
on a GPU the matrix and its gradient alone fill tens of GB.

`softmax_xent` computes the same loss from the query vectors and the document table in blocks of
C documents, as an online logsumexp (running max and rescaled sum), and its hand-written backward
pass recomputes each block's scores instead of storing them: memory is O(B C + N D) and every
block's scores stay in cache. The gradient is the closed form of `theory.objectives.global_grad`,
softmax(s) - onehot(d+), pushed through s = q E^T + b block by block. `softmax_xent` defines
reverse mode only (jax.custom_vjp): forward-mode derivatives (jax.jvp, jacfwd, hessian) need the
materialised `theory.objectives.global_loss`.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from grdr.theory.objectives import global_loss

__all__ = ["default_block", "full_softmax_loss", "max_materialised_scores", "softmax_xent"]


def max_materialised_scores() -> int:
    """Up to this many scores B N, the plain B x N formula is the faster form.

    On a CPU, 2**21 (8 MiB of float32, within cache): measured on 2 cores, B = 64, N = 1e4 took
    2.95 ms a step materialised and 3.80 ms blocked; B = 64, N = 1e5 took 102 and 43 ms; B = 512,
    N = 1e5, H = 128 took 901 and 422 ms. On an accelerator, whose memory bandwidth makes the extra
    passes cheap, until memory binds: 2**30 (4 GiB of float32 scores). Measured on an H100, B = 512,
    N = 1e6, H = 128 ran 61.9 steps/s materialised and 43.7 blocked, while B = 4096, N = 1e6,
    H = 1024 needs blocks: materialised, it ran out of the H100's 80 GB.
    """
    return 2**21 if jax.default_backend() == "cpu" else 2**30


def default_block(batch: int) -> int:
    """Documents per block: about 1 MiB of float32 scores on a CPU (cache-sized), 64 MiB on an
    accelerator (large matmuls keep it busy); never fewer than 256."""
    budget = 2**18 if jax.default_backend() == "cpu" else 2**24
    return max(256, budget // max(batch, 1))


def full_softmax_loss(q_BxD, emb_NxD, bias_N, pos_B, *, allow_blocks: bool = True):
    """Per-example full-softmax cross-entropy, by whichever of the two forms is faster at this size:
    the materialised B x N formula up to `max_materialised_scores()` scores, `softmax_xent` in
    blocks above (never with allow_blocks=False). The size is that of one call: under vmap over S
    seeds the materialised array holds S times as many scores."""
    if not allow_blocks or q_BxD.shape[0] * emb_NxD.shape[0] <= max_materialised_scores():
        return global_loss(q_BxD @ emb_NxD.T + bias_N[None, :], pos_B)
    return softmax_xent(q_BxD, emb_NxD, bias_N, pos_B, default_block(q_BxD.shape[0]))


def _block_scores(q_BxD, emb_NxD, bias_N, start, size):
    """(scores of documents [start, start + size), their rows of the table)."""
    emb = jax.lax.dynamic_slice_in_dim(emb_NxD, start, size)
    bias = jax.lax.dynamic_slice_in_dim(bias_N, start, size)
    return q_BxD @ emb.T + bias[None, :], emb


def _logsumexp(q_BxD, emb_NxD, bias_N, block):
    """Online logsumexp of q E^T + b over the documents, one block at a time."""
    n_full, tail = divmod(emb_NxD.shape[0], block)  # full blocks, then a partial one
    B = q_BxD.shape[0]
    dtype = _accumulator_dtype(q_BxD, emb_NxD, bias_N)

    def merge(carry, s_BxC):
        m_B, sum_B = carry
        s_BxC = s_BxC.astype(dtype)
        new_m = jnp.maximum(m_B, s_BxC.max(axis=1))
        # while every score so far is -inf (masked documents), shift by 0: exp(-inf - (-inf)) is nan
        shift = jnp.where(jnp.isneginf(new_m), 0.0, new_m)
        return new_m, sum_B * jnp.exp(m_B - shift) + jnp.exp(s_BxC - shift[:, None]).sum(axis=1)

    carry = (jnp.full((B,), -jnp.inf, dtype), jnp.zeros((B,), dtype))
    if n_full:  # (a loop of zero blocks would still trace a block larger than the table)
        carry = jax.lax.fori_loop(
            0, n_full, lambda i, c: merge(c, _block_scores(q_BxD, emb_NxD, bias_N, i * block, block)[0]), carry)
    if tail:
        carry = merge(carry, _block_scores(q_BxD, emb_NxD, bias_N, n_full * block, tail)[0])
    m_B, sum_B = carry
    return m_B + jnp.log(sum_B)


def _accumulator_dtype(*arrays):
    """The inputs' common dtype, at least float32 (a bfloat16 running sum would lose the tail)."""
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def _positive_scores(q_BxD, emb_NxD, bias_N, pos_B):
    return jnp.einsum("bd,bd->b", q_BxD, emb_NxD[pos_B]) + bias_N[pos_B]


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def softmax_xent(q_BxD, emb_NxD, bias_N, pos_B, block):
    """Per-example full-softmax cross-entropy logsumexp_d(s_bd) - s_b,pos with s = q E^T + b.

    Args:
      q_BxD: query vectors.
      emb_NxD: the document (or output) table.
      bias_N: per-document bias.
      pos_B: the positive document of each query.
      block: documents per block (static); `default_block(B)` suits the backend.

    Returns:
      The loss per example, shape (B,): `global_loss(q @ emb.T + bias, pos)` computed in blocks.

    >>> import jax.numpy as jnp
    >>> from grdr.theory.objectives import global_loss
    >>> q, emb, bias = jnp.eye(2, 3), jnp.arange(15.0).reshape(5, 3) / 10, jnp.zeros(5)
    >>> pos = jnp.array([4, 1])
    >>> bool(jnp.allclose(softmax_xent(q, emb, bias, pos, 2), global_loss(q @ emb.T + bias[None, :], pos)))
    True
    """
    return _fwd(q_BxD, emb_NxD, bias_N, pos_B, block)[0]


def _fwd(q_BxD, emb_NxD, bias_N, pos_B, block):
    lse_B = _logsumexp(q_BxD, emb_NxD, bias_N, block)
    loss_B = lse_B - _positive_scores(q_BxD, emb_NxD, bias_N, pos_B)
    return loss_B, (q_BxD, emb_NxD, bias_N, pos_B, lse_B)


def _bwd(block, residuals, g_B):
    q_BxD, emb_NxD, bias_N, pos_B, lse_B = residuals
    n_full, tail = divmod(emb_NxD.shape[0], block)  # full blocks, then a partial one
    dtype = _accumulator_dtype(q_BxD, emb_NxD, bias_N)
    g_B = g_B.astype(dtype)

    def block_grads(carry, start, size):
        """Softmax part of the gradient, restricted to documents [start, start + size)."""
        dq_BxD, demb_NxD, dbias_N = carry
        s_BxC, emb = _block_scores(q_BxD, emb_NxD, bias_N, start, size)
        s_BxC, emb = s_BxC.astype(dtype), emb.astype(dtype)
        g_BxC = jnp.exp(s_BxC - lse_B[:, None]) * g_B[:, None]  # g * softmax(s), this block's columns
        demb_NxD = jax.lax.dynamic_update_slice_in_dim(demb_NxD, g_BxC.T @ q_BxD.astype(dtype), start, 0)
        dbias_N = jax.lax.dynamic_update_slice_in_dim(dbias_N, g_BxC.sum(axis=0), start, 0)
        return dq_BxD + g_BxC @ emb, demb_NxD, dbias_N

    carry = (jnp.zeros(q_BxD.shape, dtype), jnp.zeros(emb_NxD.shape, dtype), jnp.zeros(bias_N.shape, dtype))
    if n_full:
        carry = jax.lax.fori_loop(0, n_full, lambda i, c: block_grads(c, i * block, block), carry)
    if tail:
        carry = block_grads(carry, n_full * block, tail)
    dq_BxD, demb_NxD, dbias_N = carry
    # minus the onehot: each query's positive row
    dq_BxD = dq_BxD - g_B[:, None] * emb_NxD[pos_B]
    demb_NxD = demb_NxD.at[pos_B].add(-g_B[:, None] * q_BxD)
    dbias_N = dbias_N.at[pos_B].add(-g_B)
    return dq_BxD.astype(q_BxD.dtype), demb_NxD.astype(emb_NxD.dtype), dbias_N.astype(bias_N.dtype), None


softmax_xent.defvjp(_fwd, _bwd)
