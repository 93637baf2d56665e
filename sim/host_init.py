"""Parameter initialisation on the host: the values JAX's eager initialisation gives, bit for bit,
from a few compiled programs (docs/design.md, section 4).

Eager JAX compiles one small program per operation and distinct shape, so initialising the models of
a sweep (every width, depth, vocabulary and N) compiled hundreds of programs, more than training
itself. Here every random draw, and the elementwise scaling JAX applies to it, is computed by the
same eager operations at a bucketed flat length (`sim.buckets.bucket`) and cut to its shape on the
host: the same values (threefry draws depend on the flat index only, with JAX's default
jax_threefry_partitionable, and an elementwise operation does not depend on the length), from one
program per operation and bucket of sizes. Zeros, ones and an added identity are exact in numpy.
Inside a trace (a traced key) or under x64 (whose default float is float64) every helper falls
back to the plain JAX expression.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.buckets import bucket

__all__ = ["host_init", "bucketed_draw", "zeros", "ones", "scaled_normal", "eye_plus_noise", "linear"]

_SMALLEST_DRAW = 1 << 16  # every smaller draw is made at this length: one program for all (0.5 ms a draw)


def host_init(key=None) -> bool:
    """Whether parameters are built on the host: not inside a trace, not under x64."""
    return not jax.config.jax_enable_x64 and not isinstance(key, jax.core.Tracer)


def bucketed_draw(draw, key, shape) -> np.ndarray:
    """draw(key, shape) (a jax.random sampler, and any elementwise operations on its values) as a host
    array, drawn at a bucketed flat length (at least 2^16) and cut to `shape`: the same values bit for
    bit, from compiled programs per bucket of sizes instead of per shape. Without partitionable threefry it
    draws at `shape`.

    >>> a = bucketed_draw(jax.random.normal, jax.random.key(0), (5, 3))
    >>> bool((a == np.asarray(jax.random.normal(jax.random.key(0), (5, 3)))).all())
    True
    """
    if not jax.config.jax_threefry_partitionable:
        return np.asarray(draw(key, shape))
    size = int(np.prod(shape))
    return np.asarray(draw(key, (max(_SMALLEST_DRAW, bucket(size)),)))[:size].reshape(shape)


def zeros(shape):
    """jnp.zeros(shape)."""
    return jax.device_put(np.zeros(shape, np.float32)) if host_init() else jnp.zeros(shape)


def ones(shape):
    """jnp.ones(shape)."""
    return jax.device_put(np.ones(shape, np.float32)) if host_init() else jnp.ones(shape)


def scaled_normal(key, shape, divisor: float):
    """jax.random.normal(key, shape) / divisor."""
    draw = lambda k, s: jax.random.normal(k, s) / divisor  # noqa: E731
    return jax.device_put(bucketed_draw(draw, key, shape)) if host_init(key) else draw(key, shape)


def eye_plus_noise(key, rows: int, cols: int, scale: float = 0.01):
    """jnp.eye(rows, cols) + scale * jax.random.normal(key, (rows, cols)): a scorer's matrix at the
    identity (or the first columns of it) plus a little noise."""
    noise = lambda k, s: scale * jax.random.normal(k, s)  # noqa: E731
    if not host_init(key):
        return jnp.eye(rows, cols) + noise(key, (rows, cols))
    return jax.device_put(np.eye(rows, cols, dtype=np.float32) + bucketed_draw(noise, key, (rows, cols)))


def _lecun_normal(key, shape, dtype=jnp.float32):
    """flax's default kernel initialiser (jax.nn.initializers.lecun_normal: a normal truncated to two
    standard deviations, scaled to variance 1 / fan_in), bit for bit: its own arithmetic (scalars,
    compiled once), the draw and its scaling by bucketed_draw."""
    if not host_init(key) or dtype != jnp.float32 or len(shape) != 2:
        return nnx.initializers.lecun_normal()(key, shape, dtype)
    variance = jnp.array(1.0 / shape[0], dtype=dtype)  # variance_scaling's fan_in of a 2-D kernel
    stddev = jnp.sqrt(variance) / jnp.array(.87962566103423978, dtype)
    draw = lambda k, s: jax.random.truncated_normal(k, -2, 2, s, dtype) * stddev  # noqa: E731
    return jax.device_put(bucketed_draw(draw, key, shape))


def _zeros_init(key, shape, dtype=jnp.float32):
    return zeros(shape) if dtype == jnp.float32 else jnp.zeros(shape, dtype)


def linear(d_in: int, d_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    """nnx.Linear(d_in, d_out) with its default initialisers, computed on the host (the same values)."""
    return nnx.Linear(d_in, d_out, kernel_init=_lecun_normal, bias_init=_zeros_init, rngs=rngs)
