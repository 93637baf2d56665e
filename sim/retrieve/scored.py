"""Exact top-k under any scorer of sim.scorers (multi-vector MaxSim included), in document chunks
(docs/design.md, sections 2 and 4)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from grdr.sim.retrieve.chunked import _check, _first, _merge

__all__ = ["topk_scored"]


@functools.partial(jax.jit, static_argnames=("k", "scorer", "chunk_size"))
def topk_scored(queries, docs, k: int, scorer, *, doc_bias_N: jax.Array | None = None, chunk_size: int = 256):
    """Exact top-k under any scorer of sim.scorers (e.g. multi-vector MaxSim), in document chunks.

    Each chunk's M x C scores come from `scorer.scores(queries, docs[chunk])` (MaxSim builds at
    most M x C x m x m' vector products, never M x N x m x m'); the chunks merge as in
    `topk_streamed` (running top-k, block maxima). The chunk is capped at N and rounded down to a
    multiple of 16 (so that the merge can select by block maxima); the N mod C documents past the
    last whole chunk are scored and merged once more, so the documents are never padded or copied.

    Args:
      queries: the scorer's query representations (M x ...).
      docs: its document representations (N x ...).
      k: documents per query, 1 <= k <= N (the chunk is raised to k).
      scorer: a hashable sim.scorers.Scorer (static).
      doc_bias_N: optional per-document additive bias.
      chunk_size: documents scored per step.

    Returns:
      (scores_MxK float32, idx_MxK int32), best first; equal scores by lower index.
    """
    num_docs = docs.shape[0]
    chunk = min(max(chunk_size, k), num_docs)
    if chunk >= 16 and (chunk // 16) * 16 >= k:
        chunk = (chunk // 16) * 16
    block = 16 if chunk % 16 == 0 else 1
    _check(num_docs, k, chunk, block)
    num_chunks, tail = divmod(num_docs, chunk)
    bias_N = None if doc_bias_N is None else doc_bias_N.astype(jnp.float32)

    def scores_of(docs_C, bias_C):
        scores_MxC = scorer.scores(queries, docs_C).astype(jnp.float32)
        return scores_MxC if bias_C is None else scores_MxC + bias_C[None, :]

    def scores_at(start):
        return scores_of(jax.lax.dynamic_slice_in_dim(docs, start, chunk),
                         None if bias_N is None else jax.lax.dynamic_slice_in_dim(bias_N, start, chunk))

    state = _first(scores_at(jnp.int32(0)), jnp.int32(0), k)

    def body(state, start):
        return _merge(*state, scores_at(start), start, block), None

    state, _ = jax.lax.scan(body, state, jnp.arange(1, num_chunks, dtype=jnp.int32) * chunk)
    if tail:
        start = num_chunks * chunk
        state = _merge(*state, scores_of(docs[start:], None if bias_N is None else bias_N[start:]),
                       jnp.int32(start), 1)
    return state
