"""Sharding along the document axis N over every device (docs/design.md, section 4).

A one-axis mesh named "docs" holds all devices. Arrays indexed by document (the document
features, a free document table, AtomicGR's output table and biases, and their optimizer moments)
are split along N; everything else is replicated. XLA's partitioner then runs the N x D matmul,
the full softmax's logsumexp and its gradient shard by shard, with one small all-reduce per
logsumexp: the same program as on one device, and the same numbers up to float reassociation.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["doc_mesh", "shard_along_docs"]


def doc_mesh(devices=None) -> Mesh:
    """A one-axis mesh ("docs") over the given devices (default: all)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.array(devices), ("docs",))


def shard_along_docs(tree, n_docs: int, mesh: Mesh, axis: int = 0):
    """Place every leaf whose `axis` has length n_docs split over the mesh; replicate the rest.

    n_docs must be a multiple of the number of devices (pad the corpus otherwise): uneven shards
    would silently fall back to replication.
    """
    n_dev = mesh.devices.size
    if n_docs % n_dev:
        raise ValueError(f"n_docs={n_docs} is not a multiple of the {n_dev} devices of the mesh")

    def place(x):
        x = jax.numpy.asarray(x)
        if x.ndim > axis and x.shape[axis] == n_docs:
            spec = [None] * x.ndim
            spec[axis] = "docs"
            return jax.device_put(x, NamedSharding(mesh, P(*spec)))
        return jax.device_put(x, NamedSharding(mesh, P()))

    return jax.tree.map(place, tree)
