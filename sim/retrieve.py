"""Exact top-k retrieval over a corpus in document chunks: one device, streamed, or sharded.

DESIGN.md sections 2 and 4: no M x N score matrix is ever built. Scores are
s(q, d) = q.d / temperature + bias(d); the corpus is scanned in chunks of C documents
(`lax.scan`, compiled once per shape), so memory is O(M C + M k).

Tie rule: equal scores rank the lower document index first. Scores are compared as XLA's
TopK compares them, except that -0.0 is folded to +0.0 first, so IEEE-equal scores always tie;
NaN scores are not supported.

Selection is exact and two-stage, because a plain `lax.top_k` over every chunk costs more
than the matmul on CPU: the chunk's scores are cut into blocks of b documents; the top k
of [running top-k values, block maxima] names at most k blocks that can hold a new
top-k document (a block whose maximum is not among them holds none); only those k*b scores
go through the final `lax.top_k` with the running top-k. Both top_k calls list the running
entries first and candidate blocks in index order, so TopK's positional tie-break is the
lower-document-index rule.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["topk", "topk_streamed", "topk_sharded"]

_DEFAULT_CHUNK = 16384
_DEFAULT_BLOCK = 32


def _check(num_docs: int, k: int, chunk_size: int, block_size: int):
    if not 1 <= k <= num_docs:
        raise ValueError(f"k: must be in [1, n_docs={num_docs}], got {k}")
    if chunk_size < k:
        raise ValueError(f"chunk_size: must be >= k={k}, got {chunk_size}")
    if block_size < 1 or chunk_size % block_size:
        raise ValueError(f"block_size: must divide chunk_size={chunk_size}, got {block_size}")


def _scores(queries_MxD, docs_CxD, bias_C, temperature):
    scores_MxC = jnp.dot(queries_MxD, docs_CxD.T, preferred_element_type=jnp.float32)
    if temperature != 1.0:
        scores_MxC = scores_MxC / temperature
    if bias_C is not None:
        scores_MxC = scores_MxC + bias_C[None, :].astype(jnp.float32)
    return jnp.where(scores_MxC == 0, 0.0, scores_MxC)  # -0.0 -> +0.0: equal scores tie


def _merge(run_vals_MxK, run_idx_MxK, scores_MxC, start, block_size, valid_C=None):
    """Exact top-k of the running top-k and one chunk (doc indices start .. start + C - 1)."""
    num_queries, chunk = scores_MxC.shape
    k = run_vals_MxK.shape[1]
    if valid_C is not None:
        scores_MxC = jnp.where(valid_C[None, :], scores_MxC, -jnp.inf)
    num_blocks = chunk // block_size
    if block_size == 1 or num_blocks <= k:
        vals_MxK, pos_MxK = jax.lax.top_k(jnp.concatenate([run_vals_MxK, scores_MxC], axis=1), k)
        chunk_idx_MxK = start + pos_MxK - k
        return vals_MxK, jnp.where(pos_MxK < k, jnp.take_along_axis(run_idx_MxK, jnp.minimum(pos_MxK, k - 1), 1), chunk_idx_MxK)
    blocks_MxBxb = scores_MxC.reshape(num_queries, num_blocks, block_size)
    block_max_MxB = jnp.max(blocks_MxBxb, axis=2)
    _, pos_MxK = jax.lax.top_k(jnp.concatenate([run_vals_MxK, block_max_MxB], axis=1), k)
    # Candidate blocks in index order; slots taken by running entries become an empty block.
    block_MxK = jnp.sort(jnp.where(pos_MxK >= k, pos_MxK - k, num_blocks), axis=1)
    gathered_MxKxb = jnp.take_along_axis(blocks_MxBxb, jnp.minimum(block_MxK, num_blocks - 1)[:, :, None], axis=1)
    gathered_MxKxb = jnp.where((block_MxK < num_blocks)[:, :, None], gathered_MxKxb, -jnp.inf)
    candidates = jnp.concatenate([run_vals_MxK, gathered_MxKxb.reshape(num_queries, k * block_size)], axis=1)
    vals_MxK, pos_MxK = jax.lax.top_k(candidates, k)
    slot_MxK = jnp.maximum(pos_MxK - k, 0)
    block_of_MxK = jnp.take_along_axis(block_MxK, slot_MxK // block_size, axis=1)
    chunk_idx_MxK = start + block_of_MxK * block_size + slot_MxK % block_size
    run_pick_MxK = jnp.take_along_axis(run_idx_MxK, jnp.minimum(pos_MxK, k - 1), axis=1)
    return vals_MxK, jnp.where(pos_MxK < k, run_pick_MxK, chunk_idx_MxK)


def _first(scores_MxC, start, k, valid_C=None):
    if valid_C is not None:
        scores_MxC = jnp.where(valid_C[None, :], scores_MxC, -jnp.inf)
    vals_MxK, pos_MxK = jax.lax.top_k(scores_MxC, k)
    return vals_MxK, start + pos_MxK


def _scan_chunks(queries_MxD, chunk_fn, num_chunks, chunk, k, block_size, temperature):
    """Top-k over chunks 0..num_chunks-1 of size C given by chunk_fn(start) -> (docs, bias, valid)."""
    def scores_at(start):
        docs_CxD, bias_C, valid_C = chunk_fn(start)
        return _scores(queries_MxD, docs_CxD, bias_C, temperature), valid_C

    scores_MxC, valid_C = scores_at(jnp.int32(0))
    state = _first(scores_MxC, jnp.int32(0), k, valid_C)

    def body(state, start):
        scores_MxC, valid_C = scores_at(start)
        return _merge(*state, scores_MxC, start, block_size, valid_C), None

    starts = jnp.arange(1, num_chunks, dtype=jnp.int32) * chunk
    state, _ = jax.lax.scan(body, state, starts)
    return state


def _topk_table(queries_MxD, docs_NxD, bias_N, k, chunk_size, block_size, temperature):
    num_docs = docs_NxD.shape[0]
    num_full = num_docs // chunk_size

    def chunk_fn(start):
        docs_CxD = jax.lax.dynamic_slice_in_dim(docs_NxD, start, chunk_size)
        bias_C = None if bias_N is None else jax.lax.dynamic_slice_in_dim(bias_N, start, chunk_size)
        return docs_CxD, bias_C, None

    state = None
    if num_full:
        state = _scan_chunks(queries_MxD, chunk_fn, num_full, chunk_size, k, block_size, temperature)
    start = num_full * chunk_size
    tail = num_docs - start
    if tail:
        # The last partial chunk has its own static shape; no copy of the table is made.
        bias_T = None if bias_N is None else bias_N[start:]
        scores_MxT = _scores(queries_MxD, docs_NxD[start:], bias_T, temperature)
        if state is None:
            return _first(scores_MxT, jnp.int32(0), k)
        padded = -(-tail // block_size) * block_size  # whole blocks; -inf pads sort last
        scores_MxT = jnp.pad(scores_MxT, ((0, 0), (0, padded - tail)), constant_values=-jnp.inf)
        state = _merge(*state, scores_MxT, jnp.int32(start), block_size)
    return state


@functools.partial(jax.jit, static_argnames=("k", "chunk_size", "block_size", "temperature"))
def topk(
    queries_MxD: jax.Array,
    docs_NxD: jax.Array,
    k: int,
    *,
    doc_bias_N: jax.Array | None = None,
    chunk_size: int = _DEFAULT_CHUNK,
    block_size: int = _DEFAULT_BLOCK,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Exact top-k documents of every query by q.d / temperature + bias, scanned in chunks.

    Args:
      queries_MxD: query embeddings.
      docs_NxD: document embeddings (N need not be a multiple of chunk_size).
      k: documents per query, 1 <= k <= N.
      doc_bias_N: optional per-document additive bias (e.g. log popularity; -inf hides a doc).
      chunk_size: documents scored at once (memory ~ M * chunk_size floats); >= k.
      block_size: documents per block of the two-stage selection; 1 = plain top_k per chunk.
      temperature: scores are divided by it before the bias is added.

    Returns:
      (scores_MxK float32, idx_MxK int32), best first; equal scores by lower index.

    >>> import jax.numpy as jnp
    >>> docs = jnp.eye(3)
    >>> scores, idx = topk(jnp.array([[0.0, 1.0, 1.0]]), docs, 2)
    >>> idx.tolist()
    [[1, 2]]
    """
    _check(docs_NxD.shape[0], k, chunk_size, block_size)
    return _topk_table(queries_MxD, docs_NxD, doc_bias_N, k, chunk_size, block_size, temperature)


def topk_streamed(
    queries_MxD: jax.Array,
    doc_chunk_fn: Callable[[jax.Array], tuple[jax.Array, jax.Array | None]],
    n_docs: int,
    k: int,
    *,
    chunk_size: int = _DEFAULT_CHUNK,
    block_size: int = _DEFAULT_BLOCK,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """`topk` over documents made chunk by chunk, so the N x D table never exists.

    Args:
      queries_MxD: query embeddings.
      doc_chunk_fn: traceable start -> (docs_CxD, bias_C or None) for documents
        start .. start + C - 1 (C = chunk_size); rows past n_docs are ignored.
      n_docs: N.
      k, chunk_size, block_size, temperature: as in `topk`.

    Returns:
      (scores_MxK, idx_MxK) exactly as `topk` on the concatenated chunks.
    """
    _check(n_docs, k, chunk_size, block_size)
    return _topk_streamed(queries_MxD, doc_chunk_fn, n_docs, k, chunk_size, block_size, temperature)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _topk_streamed(queries_MxD, doc_chunk_fn, n_docs, k, chunk_size, block_size, temperature):
    num_chunks = -(-n_docs // chunk_size)

    def chunk_fn(start):
        docs_CxD, bias_C = doc_chunk_fn(start)
        if docs_CxD.shape[0] != chunk_size:
            raise ValueError(f"doc_chunk_fn: returned {docs_CxD.shape[0]} documents, chunk_size is {chunk_size}")
        valid_C = None
        if n_docs % chunk_size:
            valid_C = start + jnp.arange(chunk_size, dtype=jnp.int32) < n_docs
        return docs_CxD, bias_C, valid_C

    return _scan_chunks(queries_MxD, chunk_fn, num_chunks, chunk_size, k, block_size, temperature)


def topk_sharded(
    queries_MxD: jax.Array,
    docs_NxD: jax.Array,
    k: int,
    mesh: Mesh,
    *,
    doc_bias_N: jax.Array | None = None,
    doc_axis: str | None = None,
    query_axis: str | None = None,
    chunk_size: int = _DEFAULT_CHUNK,
    block_size: int = _DEFAULT_BLOCK,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """`topk` with the document table sharded along N over `mesh` (DESIGN.md section 4).

    Each shard runs the chunked top-k on its contiguous slice of documents; the S per-shard
    lists are all-gathered in shard order and merged by one more top_k, which keeps the
    lower-index tie rule, so the result is exactly that of `topk`. N need not divide by S
    (the last shard is padded with -inf documents).

    Args:
      queries_MxD, docs_NxD, k, doc_bias_N, chunk_size, block_size, temperature: as in `topk`.
      mesh: a `jax.sharding.Mesh`.
      doc_axis: mesh axis that shards the documents (default: the first axis).
      query_axis: mesh axis that shards the queries, or None to replicate them.

    Returns:
      (scores_MxK, idx_MxK), sharded along M over query_axis, replicated otherwise.
    """
    doc_axis = mesh.axis_names[0] if doc_axis is None else doc_axis
    if doc_axis not in mesh.axis_names or (query_axis is not None and query_axis not in mesh.axis_names):
        raise ValueError(f"doc_axis/query_axis: must name axes of the mesh {mesh.axis_names}")
    num_docs = docs_NxD.shape[0]
    per_shard = -(-num_docs // mesh.shape[doc_axis])
    if per_shard < k:
        raise ValueError(f"k: each of the {mesh.shape[doc_axis]} shards holds {per_shard} < k={k} documents")
    _check(num_docs, k, chunk_size, block_size)
    return _topk_sharded(queries_MxD, docs_NxD, doc_bias_N, k, mesh, doc_axis, query_axis,
                         chunk_size, block_size, temperature)


@functools.partial(jax.jit, static_argnums=tuple(range(3, 10)))
def _topk_sharded(queries_MxD, docs_NxD, bias_N, k, mesh, doc_axis, query_axis, chunk_size, block_size, temperature):
    num_shards = mesh.shape[doc_axis]
    num_docs = docs_NxD.shape[0]
    per_shard = -(-num_docs // num_shards)
    pad = per_shard * num_shards - num_docs
    if pad:
        docs_NxD = jnp.pad(docs_NxD, ((0, pad), (0, 0)))
        bias_N = jnp.zeros((num_docs,), jnp.float32) if bias_N is None else bias_N.astype(jnp.float32)
        bias_N = jnp.pad(bias_N, (0, pad), constant_values=-jnp.inf)

    def local(queries_MxD, docs_SxD, bias_S):
        vals_MxK, idx_MxK = _topk_table(queries_MxD, docs_SxD, bias_S, k, chunk_size, block_size, temperature)
        idx_MxK = idx_MxK + jax.lax.axis_index(doc_axis).astype(jnp.int32) * per_shard
        # Shards in axis order hold ascending index ranges: positional ties = lower index.
        all_vals = jax.lax.all_gather(vals_MxK, doc_axis, axis=1, tiled=True)
        all_idx = jax.lax.all_gather(idx_MxK, doc_axis, axis=1, tiled=True)
        vals_MxK, pos_MxK = jax.lax.top_k(all_vals, k)
        return vals_MxK, jnp.take_along_axis(all_idx, pos_MxK, axis=1)

    query_spec = PartitionSpec(query_axis, None)
    in_specs = (query_spec, PartitionSpec(doc_axis, None), None if bias_N is None else PartitionSpec(doc_axis))
    # Place the inputs as the specs say (a no-op for inputs already placed so), on any mesh type.
    args = [jax.reshard(x, NamedSharding(mesh, spec)) if x is not None else None
            for x, spec in zip((queries_MxD, docs_NxD, bias_N), in_specs)]
    # The merged lists are equal on every doc shard (all_gather, then the same top_k), which
    # the replication check cannot infer through all_gather, hence check_vma=False.
    fn = jax.shard_map(local, mesh=mesh, in_specs=in_specs, out_specs=(query_spec, query_spec), check_vma=False)
    return fn(*args)
