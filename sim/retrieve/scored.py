"""Exact top-k under any scorer of sim.scorers (multi-vector MaxSim included), in document chunks
(docs/design.md, sections 2 and 4)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sim.retrieve.chunked import _check, _first, _merge

__all__ = ["topk_scored"]


@functools.partial(jax.jit, static_argnames=("k", "scorer", "chunk_size"))
def topk_scored(queries, docs, k: int, scorer, *, doc_bias_N: jax.Array | None = None, chunk_size: int = 256):
    """Exact top-k under any scorer of sim.scorers (e.g. multi-vector MaxSim), in document chunks.

    Each chunk's M x C scores come from `scorer.scores(queries, docs[chunk])` (MaxSim builds at
    most M x C x m x m' vector products, never M x N x m x m'); the chunks merge as in
    `topk_streamed` (running top-k, block maxima). N need not be a multiple of the chunk: the last
    chunk is padded and its padding masked.

    Args:
      queries: the scorer's query representations (M x ...).
      docs: its document representations (N x ...).
      k: documents per query, 1 <= k <= min(N, chunk_size) (the chunk is raised to k).
      scorer: a hashable sim.scorers.Scorer (static).
      doc_bias_N: optional per-document additive bias.
      chunk_size: documents scored per step.

    Returns:
      (scores_MxK float32, idx_MxK int32), best first; equal scores by lower index.
    """
    num_docs = docs.shape[0]
    chunk = max(chunk_size, k)
    block = 16 if chunk % 16 == 0 else 1
    _check(num_docs, k, chunk, block)
    num_chunks = -(-num_docs // chunk)
    pad = num_chunks * chunk - num_docs
    docs_p = jnp.pad(docs, ((0, pad),) + ((0, 0),) * (docs.ndim - 1))
    bias_p = None if doc_bias_N is None else jnp.pad(doc_bias_N.astype(jnp.float32), (0, pad))

    def scores_at(start):
        docs_C = jax.lax.dynamic_slice_in_dim(docs_p, start, chunk)
        scores_MxC = scorer.scores(queries, docs_C).astype(jnp.float32)
        if bias_p is not None:
            scores_MxC = scores_MxC + jax.lax.dynamic_slice_in_dim(bias_p, start, chunk)[None, :]
        return scores_MxC, start + jnp.arange(chunk) < num_docs

    scores_MxC, valid_C = scores_at(jnp.int32(0))
    state = _first(scores_MxC, jnp.int32(0), k, valid_C)

    def body(state, start):
        scores_MxC, valid_C = scores_at(start)
        return _merge(*state, scores_MxC, start, block, valid_C), None

    state, _ = jax.lax.scan(body, state, jnp.arange(1, num_chunks, dtype=jnp.int32) * chunk)
    return state
