"""Negative proposals: draws follow the log Q each sampler returns, and the proposals match their definitions."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sim import train as train_module
from sim.corpus import CorpusSpec, make_corpus
from sim.models import ModelConfig
from sim.samplers import SAMPLERS, alias_probabilities, alias_table, get_sampler
from sim.train import TrainConfig, TrainData, train


def test_alias_tables_imply_the_weights_to_32_bits_even_for_rare_documents():
    # Zipf 1.1 over 1e5 documents: a float32 cumulative sum misplaces the rare documents' intervals
    # by several per cent; the alias tables are exact up to 2^-32 per slot.
    n = 100_000
    q = np.arange(1, n + 1, dtype=np.float64) ** -1.1
    q /= q.sum()
    p = alias_probabilities(*alias_table(q))
    assert np.max(np.abs(p / q - 1)) < 1e-4
    f32 = np.diff(np.concatenate([[0.0], np.cumsum(q).astype(np.float32).astype(np.float64)]))
    assert np.max(np.abs(f32 / q - 1)) > 1e-2  # what the float32 CDF would have drawn


def test_popularity_draws_follow_their_log_q():
    pos_M = np.random.default_rng(0).zipf(1.5, 20_000) % 50
    s = get_sampler("popularity")
    consts = {k: jnp.asarray(v) for k, v in s.constants(pos_M, 50).items()}
    neg, log_q = s.draw(jax.random.key(1), 400, 100, 50, consts)
    counts = np.bincount(np.asarray(neg).ravel(), minlength=50)
    q = np.bincount(pos_M, minlength=50) / len(pos_M)
    np.testing.assert_allclose(np.exp(np.asarray(log_q)), q[np.asarray(neg)], rtol=1e-6)
    keep = q * neg.size >= 5
    obs, exp = counts[keep], q[keep] * neg.size
    if (~keep).any() and q[~keep].sum() > 0:  # pool the rare cells, as the test requires
        obs, exp = np.append(obs, counts[~keep].sum()), np.append(exp, q[~keep].sum() * neg.size)
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    assert counts[q == 0].sum() == 0


@pytest.mark.parametrize("K", [3, 4, 5])
def test_mixed_log_q_is_the_expected_count_of_each_document_over_k(K):
    """K - K//2 uniform and K//2 pool draws: a pool document is expected (K - K//2)/N + (K//2)/P times."""
    N, P, B = 20, 4, 20_000
    pool = jnp.broadcast_to(jnp.arange(P), (B, P))
    neg, log_q = get_sampler("mixed").draw(jax.random.key(0), B, K, N, {}, pool)
    neg, log_q = np.asarray(neg), np.asarray(log_q)
    mean_count = np.array([(neg == d).sum(axis=1).mean() for d in range(N)])
    expected = (K - K // 2) / N + (K // 2) * (np.arange(N) < P) / P
    se = np.sqrt(expected / B)  # Poisson-like bound on the count's standard error
    assert np.all(np.abs(mean_count - expected) < 5 * se + 1e-3)
    np.testing.assert_allclose(K * np.exp(log_q[0]), expected[neg[0]], rtol=1e-6)


def test_proposals_match_the_sampler_definitions():
    pop = np.array([0.4, 0.0, 0.1, 0.2, 0.2, 0.1])
    pool, N = np.array([1, 3]), 6
    np.testing.assert_allclose(get_sampler("uniform").proposal_N(N), np.full(N, 1 / N))
    np.testing.assert_allclose(get_sampler("popularity").proposal_N(N, popularity_N=pop), pop)
    np.testing.assert_allclose(get_sampler("hard").proposal_N(N, pool_N=pool), [0, 0.5, 0, 0.5, 0, 0])
    for K in (2, 3):
        mixed = get_sampler("mixed").proposal_N(N, pool_N=pool, num_negatives=K)
        np.testing.assert_allclose(mixed, (K - K // 2) / K / N + (K // 2) / K * np.array([0, 0.5, 0, 0.5, 0, 0]))
        assert mixed.sum() == pytest.approx(1.0)
    assert set(SAMPLERS) == {"uniform", "popularity", "hard", "hard_denoised", "mixed"}
    with pytest.raises(ValueError, match="sampler='nope'"):
        get_sampler("nope")


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CorpusSpec(n_docs=80, n_train_queries=300, n_test_queries=5, latent_rank=3, feature_dim=6,
                                  beta=20.0, train_top_k=10))


@pytest.mark.parametrize("refresh,calls", [(150, 4), (250, 2), (100, 5)])
def test_the_hard_pool_is_rebuilt_every_hard_refresh_steps(corpus, monkeypatch, refresh, calls):
    seen = []
    real = train_module.hard_pool

    def counting(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "hard_pool", counting)
    cfg = TrainConfig(objective="local", sampler="hard", steps=500, steps_per_call=100, hard_refresh=refresh,
                      hard_pool=8, num_negatives=4, batch_size=8)
    train(ModelConfig(kind="dr", dim=4, hidden=8, depth=1), cfg, TrainData.from_corpus(corpus), [0])
    assert len(seen) == calls  # at steps 0, refresh, 2 refresh, ... below 500


def test_the_denoised_pool_leaves_out_the_top_posterior_mass(corpus):
    data = TrainData.from_corpus(corpus)
    cfg = TrainConfig(objective="local", sampler="hard_denoised", steps=20, hard_refresh=10, hard_pool=8,
                      num_negatives=4, batch_size=8, denoise_mass=0.5)
    raw = train(ModelConfig(kind="dr", dim=4, hidden=8, depth=1), dataclasses.replace(cfg, sampler="hard"), data, [0])
    denoised = train(ModelConfig(kind="dr", dim=4, hidden=8, depth=1), cfg, data, [0])
    assert denoised.pool_false_negatives_S[0] == 0.0  # nothing inside the top half of p* is in the pool
    assert raw.pool_false_negatives_S[0] > 0.0  # a fresh model's top-8 holds some of it
