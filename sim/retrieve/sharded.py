"""Exact top-k with the document table sharded along N over a device mesh (docs/design.md,
sections 2 and 4): each shard runs `sim.retrieve.chunked`'s two-stage top-k on its rows, then the
shards' candidates are gathered and merged, so the result equals one device's."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from grdr.sim.retrieve.chunked import _DEFAULT_MERGE, DEFAULT_CHUNK, _check, _table_block, _topk_table

__all__ = ["topk_sharded"]


def topk_sharded(
    queries_MxD: jax.Array,
    docs_NxD: jax.Array,
    k: int,
    mesh: Mesh,
    *,
    doc_bias_N: jax.Array | None = None,
    doc_axis: str | None = None,
    query_axis: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    block_size: int | None = None,
    merge_size: int = _DEFAULT_MERGE,
    temperature: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """`topk` with the document table sharded along N over `mesh` (docs/design.md, section 4).

    Each shard runs the chunked top-k on its contiguous slice of documents; the S per-shard
    lists are all-gathered in shard order and merged by one more top_k, which keeps the
    lower-index tie rule, so the result is exactly that of `topk`. N need not divide by S
    (the last shard is padded with -inf documents).

    Args:
      queries_MxD, docs_NxD, k, doc_bias_N, chunk_size, block_size, merge_size, temperature:
        as in `topk`.
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
    block_size = _table_block(per_shard, k) if block_size is None else block_size
    _check(num_docs, k, chunk_size, block_size)
    return _topk_sharded(queries_MxD, docs_NxD, doc_bias_N, k, mesh, doc_axis, query_axis,
                         chunk_size, block_size, merge_size, temperature)


@functools.partial(jax.jit, static_argnums=tuple(range(3, 11)))
def _topk_sharded(queries_MxD, docs_NxD, bias_N, k, mesh, doc_axis, query_axis, chunk_size, block_size,
                  merge_size, temperature):
    num_shards = mesh.shape[doc_axis]
    num_docs = docs_NxD.shape[0]
    per_shard = -(-num_docs // num_shards)
    pad = per_shard * num_shards - num_docs
    if pad:
        docs_NxD = jnp.pad(docs_NxD, ((0, pad), (0, 0)))
        bias_N = jnp.zeros((num_docs,), jnp.float32) if bias_N is None else bias_N.astype(jnp.float32)
        bias_N = jnp.pad(bias_N, (0, pad), constant_values=-jnp.inf)

    def local(queries_MxD, docs_SxD, bias_S):
        vals_MxK, idx_MxK = _topk_table(queries_MxD, docs_SxD, bias_S, k, chunk_size, block_size, merge_size,
                                        temperature)
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
