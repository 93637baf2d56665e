"""Shape buckets: document counts padded to a short ladder of sizes, so that one compiled program
serves every sweep point whose N falls in the same bucket (docs/design.md, section 4).

The ladder is 2^k and 3 * 2^(k-1) (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768,
1024, 1536, 2048, 3072, ...): two sizes per octave, so a padded program does at most 1.5x (about
1.2x on average over a log grid) the N-proportional work of the unpadded one, where powers of two
would do up to 2x (300 -> 512, 3,000 -> 4,096); and a sweep with more than about six points per
decade of N shares programs. Every size from 16 on is a multiple of 8 (from 1,024 on, of 512), so
padded tables still split into the blocks and shards of sim.retrieve and sim.sharding.

A padded document is masked everywhere it could matter: its score is -inf in every softmax and
top-k (`mask_bias_N`), a sampler never draws it (the number of real documents is a traced value),
and its features, table rows and biases are zero, so its gradients are zero and no optimizer moves
it. Results equal the unpadded ones up to float rounding; the padding never reaches a record.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["bucket", "mask_bias_N", "pad_rows", "pad_axis"]

_SMALLEST = 8


def bucket(n: int) -> int:
    """The smallest size of the ladder (2^k or 3 * 2^(k-1), at least 8) that holds n.

    >>> [bucket(n) for n in (1, 9, 100, 300, 1_000, 3_000)]
    [8, 12, 128, 384, 1024, 3072]
    """
    n = int(n)
    if n <= _SMALLEST:
        return _SMALLEST
    power = 1 << (n - 1).bit_length()  # the smallest power of two >= n
    three_halves = 3 * power // 4  # 3 * 2^(k-1) sits between power / 2 and power
    return three_halves if n <= three_halves else power


def mask_bias_N(n_real, n_padded: int, dtype=jnp.float32) -> jax.Array:
    """0 for the first n_real of n_padded documents, -inf for the padding; n_real may be traced."""
    return jnp.where(jnp.arange(n_padded) < n_real, jnp.zeros((), dtype), jnp.asarray(-jnp.inf, dtype))


def pad_axis(x, size: int, axis: int = 0, value=0):
    """x padded with `value` along `axis` to `size` (numpy in, numpy out; jax in, jax out)."""
    extra = size - x.shape[axis]
    if extra < 0:
        raise ValueError(f"pad_axis: axis {axis} of shape {x.shape} is longer than {size}")
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    if isinstance(x, np.ndarray):
        return np.pad(x, widths, constant_values=value)
    return jnp.pad(x, widths, constant_values=value)


def pad_rows(x, size: int, value=0):
    """x padded with `value` along its first axis to `size` rows."""
    return pad_axis(x, size, 0, value)

