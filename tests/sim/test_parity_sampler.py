"""The parity proposal: even documents drawn twice as often as odd ones, and its log Q."""
import jax
import jax.numpy as jnp
import numpy as np

from grdr.sim.samplers import get_sampler


def test_draws_follow_two_to_one_and_log_q_states_it():
    sampler, N, B, K = get_sampler("parity"), 7, 4000, 8
    consts = {k: jnp.asarray(v) for k, v in sampler.constants(np.zeros(3, int), N).items()}
    q = np.where(np.arange(N) % 2 == 0, 2.0, 1.0) / 11.0  # 4 even, 3 odd documents: weights sum to 11
    draws = np.asarray(sampler.draw(jax.random.key(0), B, K, N, consts))
    freq = np.bincount(draws.ravel(), minlength=N) / draws.size
    assert np.all(np.abs(freq - q) < 5 * np.sqrt(q / draws.size))
    np.testing.assert_allclose(np.exp(np.asarray(sampler.log_q(jnp.arange(N)[None, :], N, consts)))[0], q, rtol=1e-6)
    np.testing.assert_allclose(sampler.proposal_N(N), q, rtol=1e-12)
    assert sampler.record_fields(None) == {}  # it reads no training setting
