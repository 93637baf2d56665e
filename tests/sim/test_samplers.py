"""Negative proposals: draws follow the log Q each sampler returns, and the proposals match their definitions."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from grdr.sim import train as train_module
from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.models import ModelConfig
from grdr.sim.samplers import SAMPLERS, alias_probabilities, alias_table, get_sampler
from grdr.sim.train import TrainConfig, TrainData, train


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
    neg = s.draw(jax.random.key(1), 400, 100, 50, consts)
    log_q = s.log_q(neg, 50, consts)
    counts = np.bincount(np.asarray(neg).ravel(), minlength=50)
    q = np.bincount(pos_M, minlength=50) / len(pos_M)
    np.testing.assert_allclose(np.exp(np.asarray(log_q)), q[np.asarray(neg)], rtol=1e-6)
    keep = q * neg.size >= 5
    obs, exp = counts[keep], q[keep] * neg.size
    if (~keep).any() and q[~keep].sum() > 0:  # pool the rare cells, as the test requires
        obs, exp = np.append(obs, counts[~keep].sum()), np.append(exp, q[~keep].sum() * neg.size)
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    assert counts[q == 0].sum() == 0


POOL_SAMPLERS = [name for name, s in SAMPLERS.items() if s.needs_pool]


@pytest.mark.parametrize("name", POOL_SAMPLERS)
def test_pool_draws_follow_the_mixture_their_log_q_states(name):
    """Each negative is i.i.d. from u/N + (1 - u) 1[pool]/P: the mean count of every document is K Q(d),
    and log_q(d) is log Q(d) for pool and non-pool documents, the positive included."""
    sampler = get_sampler(name)
    N, P, B, K = 20, 4, 20_000, 5
    pool = jnp.broadcast_to(jnp.arange(P), (B, P))
    neg = np.asarray(sampler.draw(jax.random.key(0), B, K, N, {}, pool))
    mean_count = np.array([(neg == d).sum(axis=1).mean() for d in range(N)])
    u = sampler.uniform_share
    q = u / N + (1 - u) * (np.arange(N) < P) / P
    se = np.sqrt(K * q / B)  # Poisson-like bound on the count's standard error
    assert np.all(np.abs(mean_count - K * q) < 5 * se + 1e-3)
    docs = jnp.asarray(np.tile(np.arange(N), (2, 1)))
    np.testing.assert_allclose(np.exp(np.asarray(sampler.log_q(docs, N, {}, pool[:2]))), np.tile(q, (2, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(sampler.proposal_N(N, pool_N=np.arange(P)), q, rtol=1e-12)


def test_every_proposal_gives_every_document_mass_so_the_positive_can_be_corrected():
    """The standard logQ correction subtracts log Q(d+): finite for every document under every proposal
    (popularity: every training positive has a count)."""
    N, P = 30, 5
    pool = jnp.asarray(np.arange(P))[None, :]
    pos_M = np.arange(N) % 7  # documents 0..6 are positives
    for name, sampler in SAMPLERS.items():
        consts = {k: jnp.asarray(v) for k, v in sampler.constants(pos_M, N).items()}
        docs = jnp.asarray(np.unique(pos_M) if name == "popularity" else np.arange(N))[None, :]
        log_q = np.asarray(sampler.log_q(docs, N, consts, pool if sampler.needs_pool else None))
        assert np.all(np.isfinite(log_q)), name


def test_proposals_match_the_sampler_definitions():
    pop = np.array([0.4, 0.0, 0.1, 0.2, 0.2, 0.1])
    pool, N = np.array([1, 3]), 6
    np.testing.assert_allclose(get_sampler("uniform").proposal_N(N), np.full(N, 1 / N))
    np.testing.assert_allclose(get_sampler("popularity").proposal_N(N, popularity_N=pop), pop)
    on_pool = np.array([0, 0.5, 0, 0.5, 0, 0])
    assert (get_sampler("hard").uniform_share, get_sampler("mixed").uniform_share) == (0.1, 0.5)  # as defined
    for name in POOL_SAMPLERS:
        u = get_sampler(name).uniform_share
        q = get_sampler(name).proposal_N(N, pool_N=pool)
        np.testing.assert_allclose(q, u / N + (1 - u) * on_pool)
        assert q.sum() == pytest.approx(1.0) and np.all(q > 0)
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
