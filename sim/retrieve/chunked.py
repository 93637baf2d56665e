"""Exact top-k over a table or a stream of documents, in chunks (the core of sim.retrieve).

docs/design.md, sections 2 and 4: no M x N score matrix is ever built. Scores are
s(q, d) = q.d / temperature + bias(d); the corpus is scanned in chunks (`lax.scan`, compiled
once per shape), so memory is O(M * chunk) scores plus, for `topk`, O(M * merge_size / b)
block maxima and ~16 MB of rescored rows.

Tie rule: equal scores rank the lower document index first. Scores are compared as XLA's
TopK compares them, except that -0.0 is folded to +0.0 first, so IEEE-equal scores always tie;
NaN scores are not supported.

Selection is exact and two-stage, because on CPU a plain `lax.top_k` over every chunk costs
more than the matmul (it scans every score, single-threaded, and sorts its k outputs per row
and call). Documents are cut into blocks of b consecutive indices. A block whose maximum is
not among the k largest block maxima holds no top-k document (each of those k blocks holds a
document at least as good), so:
- `topk` (a table in memory): stage 1 keeps the running top k block maxima over the corpus,
  merging the maxima of `merge_size` documents per TopK call; stage 2 scores the k*b
  documents of the k surviving blocks again from the table and takes their exact top k.
- `topk_streamed` (no table to go back to): each chunk's scores stay until the chunk is done;
  the top k of [running top-k values, chunk block maxima] names at most k blocks, and only
  their k*b scores enter the final TopK with the running top k.
Every TopK lists earlier documents (running entries, lower blocks) first, so its positional
tie-break is the lower-index rule. Stage 2 of `topk` recomputes scores with a differently
shaped product, so with inexact float dot products its choice can differ from a brute force
only between scores equal up to rounding; with exact ones (e.g. small integers) it is exact.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["topk", "topk_streamed", "DEFAULT_CHUNK"]

# Defaults measured on 2 cores at N=1e6, D=128, M=1000, k=100 (benchmarks/topk.py):
DEFAULT_CHUNK = 2048  # one matmul: its 1000 x 2048 scores stay in cache for the block maxima
_DEFAULT_MERGE = 65536  # documents whose block maxima go through one TopK call
_STREAM_CHUNK = 32768  # scores of a whole chunk stay for stage 2: M x 32768 floats
_STREAM_BLOCK = 16  # per chunk: TopK over C/b maxima, then over k*b candidates; 16 balances them


def _table_block(num_docs: int, k: int) -> int:
    """Default block: stage 1 scans N/b maxima, stage 2 gathers k*b rows, so b grows with N/k.

    Measured (benchmarks/topk.py, k=100): at N=1e6, b=32 is 6% faster than 16; at N=1e5,
    b=16 is 18% faster than 32 (b=64 doubles the stage-2 gather)."""
    return 32 if num_docs >= 3000 * k else 16


def _check(num_docs: int, k: int, chunk_size: int, block_size: int, min_chunk: int = 1):
    if not 1 <= k <= num_docs:
        raise ValueError(f"k: must be in [1, n_docs={num_docs}], got {k}")
    if chunk_size < min_chunk:
        raise ValueError(f"chunk_size: must be >= {min_chunk}, got {chunk_size}")
    if block_size < 1 or chunk_size % block_size:
        raise ValueError(f"block_size: must divide chunk_size={chunk_size}, got {block_size}")


def _scores(queries_MxD, docs_CxD, bias_C, temperature):
    scores_MxC = jnp.dot(queries_MxD, docs_CxD.T, preferred_element_type=jnp.float32)
    if temperature != 1.0:
        scores_MxC = scores_MxC / temperature
    if bias_C is not None:
        scores_MxC = scores_MxC + bias_C[None, :].astype(jnp.float32)
    return scores_MxC


def _canonical(values):
    """-0.0 -> +0.0, so that TopK (which orders -0.0 below +0.0) ties IEEE-equal scores.

    Applied only to what enters top_k (block maxima, candidates), never to a whole chunk:
    a max over raw values canonicalised afterwards is the max over canonical values."""
    return jnp.where(values == 0, jnp.zeros((), values.dtype), values)


def _merge(run_vals_MxK, run_idx_MxK, scores_MxC, start, block_size, valid_C=None):
    """Exact top-k of the running top-k and one chunk (doc indices start .. start + C - 1)."""
    num_queries, chunk = scores_MxC.shape
    k = run_vals_MxK.shape[1]
    if valid_C is not None:
        scores_MxC = jnp.where(valid_C[None, :], scores_MxC, -jnp.inf)
    num_blocks = chunk // block_size
    if block_size == 1 or num_blocks <= k:
        vals_MxK, pos_MxK = jax.lax.top_k(jnp.concatenate([run_vals_MxK, _canonical(scores_MxC)], axis=1), k)
        run_pick_MxK = jnp.take_along_axis(run_idx_MxK, jnp.minimum(pos_MxK, k - 1), axis=1)
        return vals_MxK, jnp.where(pos_MxK < k, run_pick_MxK, start + pos_MxK - k)
    blocks_MxBxb = scores_MxC.reshape(num_queries, num_blocks, block_size)
    block_max_MxB = _canonical(jnp.max(blocks_MxBxb, axis=2))
    _, pos_MxK = jax.lax.top_k(jnp.concatenate([run_vals_MxK, block_max_MxB], axis=1), k)
    # Candidate blocks in index order; slots taken by running entries become an empty block.
    block_MxK = jnp.sort(jnp.where(pos_MxK >= k, pos_MxK - k, num_blocks), axis=1)
    safe_MxK1 = jnp.minimum(block_MxK, num_blocks - 1)[:, :, None]
    gathered_MxKxb = jnp.take_along_axis(blocks_MxBxb, safe_MxK1, axis=1)
    gathered_MxKxb = jnp.where((block_MxK < num_blocks)[:, :, None], gathered_MxKxb, -jnp.inf)
    gathered_MxKb = _canonical(gathered_MxKxb.reshape(num_queries, k * block_size))
    candidates = jnp.concatenate([run_vals_MxK, gathered_MxKb], axis=1)
    vals_MxK, pos_MxK = jax.lax.top_k(candidates, k)
    slot_MxK = jnp.maximum(pos_MxK - k, 0)
    block_of_MxK = jnp.take_along_axis(block_MxK, slot_MxK // block_size, axis=1)
    chunk_idx_MxK = start + block_of_MxK * block_size + slot_MxK % block_size
    run_pick_MxK = jnp.take_along_axis(run_idx_MxK, jnp.minimum(pos_MxK, k - 1), axis=1)
    return vals_MxK, jnp.where(pos_MxK < k, run_pick_MxK, chunk_idx_MxK)


def _first(scores_MxC, start, k, valid_C=None):
    if valid_C is not None:
        scores_MxC = jnp.where(valid_C[None, :], scores_MxC, -jnp.inf)
    vals_MxK, pos_MxK = jax.lax.top_k(_canonical(scores_MxC), k)
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


def _block_maxima(queries_MxD, docs_NxD, bias_N, start, count, chunk, block_size, temperature):
    """Maxima of the blocks of b documents start .. start + count - 1 (start: a multiple of b).

    Scores are made `chunk` documents at a time (a matmul whose output stays in cache) and
    reduced at once; the last partial block is padded with -inf. Returns (M, ceil(count / b))."""
    num_queries = queries_MxD.shape[0]

    def maxima(scores_MxC):
        pad = -scores_MxC.shape[1] % block_size
        scores_MxC = jnp.pad(scores_MxC, ((0, 0), (0, pad)), constant_values=-jnp.inf)
        return jnp.max(scores_MxC.reshape(num_queries, -1, block_size), axis=2)

    def scores_at(offset, size):
        docs_CxD = jax.lax.dynamic_slice_in_dim(docs_NxD, start + offset, size)
        bias_C = None if bias_N is None else jax.lax.dynamic_slice_in_dim(bias_N, start + offset, size)
        return _scores(queries_MxD, docs_CxD, bias_C, temperature)

    parts = []
    num_full = count // chunk
    if num_full:
        offsets = jnp.arange(num_full, dtype=jnp.int32) * chunk
        _, maxima_SxMxB = jax.lax.scan(lambda _, off: (None, maxima(scores_at(off, chunk))), None, offsets)
        parts.append(jnp.transpose(maxima_SxMxB, (1, 0, 2)).reshape(num_queries, -1))
    if count % chunk:
        parts.append(maxima(scores_at(num_full * chunk, count % chunk)))
    return _canonical(jnp.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])


def _rescore_blocks(queries_MxD, docs_NxD, bias_N, block_MxK, k, block_size, temperature):
    """Exact top-k among the documents of k blocks per query, scored again from the table."""
    num_queries, dim = queries_MxD.shape
    num_docs = docs_NxD.shape[0]
    # Blocks in index order, so TopK's positional tie-break is the lower-index rule.
    doc_MxKb = (jnp.sort(block_MxK, axis=1)[:, :, None] * block_size + jnp.arange(block_size)[None, None, :])
    doc_MxKb = doc_MxKb.reshape(num_queries, k * block_size)
    # Query tiles bound the gathered rows to ~16 MB.
    tile = max(1, min(num_queries, (1 << 22) // (k * block_size * dim)))
    pad = -num_queries % tile

    def one_tile(args):
        queries_TxD, doc_TxKb = args
        safe_TxKb = jnp.minimum(doc_TxKb, num_docs - 1)
        rows_TxKbxD = docs_NxD[safe_TxKb]
        scores_TxKb = jnp.einsum("td,tnd->tn", queries_TxD, rows_TxKbxD, preferred_element_type=jnp.float32)
        if temperature != 1.0:
            scores_TxKb = scores_TxKb / temperature
        if bias_N is not None:
            scores_TxKb = scores_TxKb + bias_N[safe_TxKb].astype(jnp.float32)
        scores_TxKb = jnp.where(doc_TxKb < num_docs, _canonical(scores_TxKb), -jnp.inf)
        vals_TxK, pos_TxK = jax.lax.top_k(scores_TxKb, k)
        return vals_TxK, jnp.take_along_axis(doc_TxKb, pos_TxK, axis=1)

    queries = jnp.pad(queries_MxD, ((0, pad), (0, 0))).reshape(-1, tile, dim)
    docs = jnp.pad(doc_MxKb, ((0, pad), (0, 0))).reshape(-1, tile, k * block_size)
    vals, idx = jax.lax.map(one_tile, (queries, docs))
    return vals.reshape(-1, k)[:num_queries], idx.reshape(-1, k)[:num_queries]


def _topk_table(queries_MxD, docs_NxD, bias_N, k, chunk_size, block_size, merge_size, temperature):
    """Exact top-k over a table: stage 1 keeps the top k block maxima, stage 2 rescores them."""
    num_docs = docs_NxD.shape[0]
    if -(-num_docs // block_size) <= k:  # too few blocks to prune: one plain top_k
        vals_MxK, idx_MxK = jax.lax.top_k(_canonical(_scores(queries_MxD, docs_NxD, bias_N, temperature)), k)
        return vals_MxK, idx_MxK
    # Merge the block maxima of `merge` documents at once: TopK has a fixed cost per row
    # and call (it sorts its k outputs) that would dominate if paid for every chunk.
    merge = chunk_size * -(-max(k * block_size, merge_size) // chunk_size)
    num_merges, tail = divmod(num_docs, merge)
    args = (queries_MxD, docs_NxD, bias_N)
    state = None

    def merged(state, start, count):
        maxima_MxB = _block_maxima(*args, start, count, chunk_size, block_size, temperature)
        first_block = start // block_size
        if state is None:
            vals_MxK, pos_MxK = jax.lax.top_k(maxima_MxB, k)
            return vals_MxK, first_block + pos_MxK
        run_vals_MxK, run_block_MxK = state
        vals_MxK, pos_MxK = jax.lax.top_k(jnp.concatenate([run_vals_MxK, maxima_MxB], axis=1), k)
        run_pick = jnp.take_along_axis(run_block_MxK, jnp.minimum(pos_MxK, k - 1), axis=1)
        return vals_MxK, jnp.where(pos_MxK < k, run_pick, first_block + pos_MxK - k)

    if num_merges:
        state = merged(None, jnp.int32(0), merge)
        starts = jnp.arange(1, num_merges, dtype=jnp.int32) * merge
        state, _ = jax.lax.scan(lambda st, start: (merged(st, start, merge), None), state, starts)
    if tail:
        state = merged(state, jnp.int32(num_merges * merge), tail)
    return _rescore_blocks(queries_MxD, docs_NxD, bias_N, state[1], k, block_size, temperature)


@functools.partial(jax.jit, static_argnames=("k", "chunk_size", "block_size", "merge_size", "temperature"))
def topk(
    queries_MxD: jax.Array,
    docs_NxD: jax.Array,
    k: int,
    *,
    doc_bias_N: jax.Array | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    block_size: int | None = None,
    merge_size: int = _DEFAULT_MERGE,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Exact top-k documents of every query by q.d / temperature + bias, scanned in chunks.

    Args:
      queries_MxD: query embeddings.
      docs_NxD: document embeddings (N need not be a multiple of any chunk).
      k: documents per query, 1 <= k <= N.
      doc_bias_N: optional per-document additive bias (e.g. log popularity; -inf hides a doc).
      chunk_size: documents per matmul (memory ~ M * chunk_size floats).
      block_size: documents per block of the two-stage selection (divides chunk_size);
        None: 32 when N >= 3000 k, else 16, halved until it divides chunk_size.
      merge_size: documents whose block maxima are merged by one TopK call (rounded up to
        whole chunks and to at least k * block_size).
      temperature: scores are divided by it before the bias is added.

    Returns:
      (scores_MxK float32, idx_MxK int32), best first; equal scores by lower index.

    >>> import jax.numpy as jnp
    >>> scores, idx = topk(jnp.array([[0.0, 1.0, 1.0]]), jnp.eye(3), 2)
    >>> idx.tolist()
    [[1, 2]]
    """
    if block_size is None:  # the default, halved until it divides the chunk (any chunk_size works)
        block_size = _table_block(docs_NxD.shape[0], k)
        while chunk_size > 0 and chunk_size % block_size:
            block_size //= 2
    _check(docs_NxD.shape[0], k, chunk_size, block_size)
    return _topk_table(queries_MxD, docs_NxD, doc_bias_N, k, chunk_size, block_size, merge_size, temperature)


def topk_streamed(
    queries_MxD: jax.Array,
    doc_chunk_fn: Callable[[jax.Array], tuple[jax.Array, jax.Array | None]],
    n_docs: int,
    k: int,
    *,
    chunk_size: int = _STREAM_CHUNK,
    block_size: int = _STREAM_BLOCK,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """`topk` over documents made chunk by chunk, so the N x D table never exists.

    Compiled once per (doc_chunk_fn, shapes): pass the same function object to reuse it.

    Args:
      queries_MxD: query embeddings.
      doc_chunk_fn: traceable start -> (docs_CxD, bias_C or None) for the documents
        start .. start + C - 1 (C = chunk_size); rows past n_docs are ignored.
      n_docs: N.
      k: documents per query, k <= min(N, chunk_size).
      chunk_size: documents per call of doc_chunk_fn (memory ~ M * chunk_size floats).
      block_size, temperature: as in `topk`.

    Returns:
      (scores_MxK, idx_MxK) exactly as a brute force over the concatenated chunks.
    """
    _check(n_docs, k, chunk_size, block_size, min_chunk=k)
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
