"""sim.softmax.softmax_xent against the B x N formula of theory.objectives, in float64.

The blocked loss and its hand-written backward pass must equal `global_loss` on the materialised
score matrix and its autodiff gradient, for every block size (one block, several, a partial last
block, a block of one), with repeated positives (the onehot part is a scatter-add) and under vmap.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grdr.sim.softmax import default_block, full_softmax_loss, softmax_xent
from grdr.theory.objectives import global_loss


def _case(B=6, N=37, D=5, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, D)) * 2
    emb = rng.standard_normal((N, D))
    bias = rng.standard_normal(N)
    pos = rng.integers(0, N, B)
    pos[1] = pos[0]  # a repeated positive
    return q, emb, bias, pos


def _reference(q, emb, bias, pos, g):
    return jnp.sum(g * global_loss(q @ emb.T + bias[None, :], pos))


@pytest.mark.parametrize("block", [1, 4, 10, 37, 64, 100])
def test_loss_and_gradients_equal_the_materialised_softmax(block):
    with jax.enable_x64(True):
        q, emb, bias, pos = (jnp.asarray(x) for x in _case())
        g = jnp.linspace(0.5, 2.0, q.shape[0])  # a non-uniform cotangent
        np.testing.assert_allclose(softmax_xent(q, emb, bias, pos, block),
                                   global_loss(q @ emb.T + bias[None, :], pos), rtol=1e-12)
        got = jax.grad(lambda *a: jnp.sum(g * softmax_xent(*a, pos, block)), argnums=(0, 1, 2))(q, emb, bias)
        want = jax.grad(lambda *a: _reference(*a, pos, g), argnums=(0, 1, 2))(q, emb, bias)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_large_scores_do_not_overflow():
    """The online logsumexp rescales its running sum: scores of 1e3 (exp overflows) stay finite."""
    with jax.enable_x64(True):
        q, emb, bias, pos = (jnp.asarray(x) for x in _case())
        loss = softmax_xent(q * 500, emb, bias, pos, 8)
        assert np.all(np.isfinite(loss))
        np.testing.assert_allclose(loss, global_loss((q * 500) @ emb.T + bias[None, :], pos), rtol=1e-12)


def test_a_block_of_masked_documents_is_skipped():
    """A first block whose scores are all -inf (documents masked by a -inf bias) adds nothing:
    the running max stays -inf there, and the sum must not become exp(-inf - (-inf)) = nan."""
    with jax.enable_x64(True):
        q, emb, bias, pos = _case()
        bias[:8] = -np.inf
        pos = np.maximum(pos, 8)  # positives outside the masked block
        q, emb, bias, pos = (jnp.asarray(x) for x in (q, emb, bias, pos))
        want = global_loss(q @ emb.T + bias[None, :], pos)
        assert np.all(np.isfinite(want))
        np.testing.assert_allclose(softmax_xent(q, emb, bias, pos, 8), want, rtol=1e-12)
        got = jax.grad(lambda q, e: softmax_xent(q, e, bias, pos, 8).sum(), argnums=(0, 1))(q, emb)
        ref = jax.grad(lambda q, e: global_loss(q @ e.T + bias[None, :], pos).sum(), argnums=(0, 1))(q, emb)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_bfloat16_inputs_keep_their_dtype_and_a_float32_sum():
    q, emb, bias, pos = (jnp.asarray(x) for x in _case())
    low = [x.astype(jnp.bfloat16) for x in (q, emb, bias)]
    loss, grads = jax.value_and_grad(lambda *a: softmax_xent(*a, pos, 8).mean(), argnums=(0, 1, 2))(*low)
    assert loss.dtype == jnp.float32 and [g.dtype for g in grads] == [jnp.bfloat16] * 3
    q32, emb32, bias32 = (x.astype(jnp.float32) for x in low)  # the same bfloat16 values, summed in float32
    np.testing.assert_allclose(loss, global_loss(q32 @ emb32.T + bias32[None, :], pos).mean(), rtol=2e-2)


def test_under_vmap_over_seeds_and_jit():
    with jax.enable_x64(True):
        cases = [_case(seed=s) for s in range(3)]
        q, emb, bias = (jnp.stack([jnp.asarray(c[i]) for c in cases]) for i in range(3))
        pos = jnp.asarray(cases[0][3])

        def loss(q, emb, bias):
            return softmax_xent(q, emb, bias, pos, 8).mean()

        got = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1, 2))))(q, emb, bias)
        want = jax.vmap(jax.value_and_grad(lambda q, e, b: global_loss(q @ e.T + b[None, :], pos).mean(), argnums=(0, 1, 2)))(
            q, emb, bias)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's block size")
def test_default_block_is_cache_sized_on_cpu():
    assert default_block(64) * 64 * 4 == 2**20  # 1 MiB of float32 scores
    assert default_block(10**6) == 256


@pytest.mark.parametrize("n_docs", [37, 40_000])  # below and above max_materialised_scores() on a CPU
def test_full_softmax_loss_takes_either_form_with_the_same_value(n_docs):
    q, emb, bias, pos = (jnp.asarray(x, jnp.float32) for x in _case(B=64, N=n_docs, D=4))
    pos = pos.astype(jnp.int32)
    got = jax.jit(jax.value_and_grad(lambda q, e, b: full_softmax_loss(q, e, b, pos).mean(), argnums=(0, 1, 2)))(
        q, emb, bias)
    want = jax.value_and_grad(lambda q, e, b: global_loss(q @ e.T + b[None, :], pos).mean(), argnums=(0, 1, 2))(
        q, emb, bias)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
