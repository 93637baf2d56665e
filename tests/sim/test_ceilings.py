"""Ceilings of a synthetic corpus against brute force and their limits."""
import numpy as np
import pytest

from sim.ceilings import ceilings, feature_reference, posterior_summary
from sim.corpus import CorpusSpec, make_corpus


def _brute_log_posterior(c):
    logits = c.spec.beta * c.test.latents_MxR.astype(np.float64) @ c.doc_latents_NxR.T.astype(np.float64)
    logits += c.doc_log_prior_N[None, :].astype(np.float64)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CorpusSpec(n_docs=300, n_train_queries=2_000, n_test_queries=60, latent_rank=4, beta=20.0,
                                  zipf=0.8, chunk_size=64))


def test_posterior_summary_equals_brute_force(corpus):
    logp = _brute_log_posterior(corpus)
    top2 = -np.sort(-logp, axis=1)[:, :2]
    got = posterior_summary(corpus)
    assert got["bayes_success1"] == pytest.approx(np.mean(np.exp(top2[:, 0])), rel=1e-5)
    assert got["eff_docs"] == pytest.approx(np.exp(np.mean(-np.sum(np.exp(logp) * logp, axis=1))), rel=1e-4)
    assert got["top_gap"] == pytest.approx(np.mean(top2[:, 0] - top2[:, 1]), rel=1e-4, abs=1e-6)


def test_noiseless_features_give_the_truth_itself():
    c = make_corpus(CorpusSpec(n_docs=200, n_train_queries=2_000, n_test_queries=50, latent_rank=4, beta=20.0,
                               query_feature_noise=0.0, doc_feature_noise=0.0))
    got = feature_reference(c)
    assert got["feasible_success1"] == 1.0
    assert got["feasible_kl"] == pytest.approx(0.0, abs=1e-3)


def test_noisier_features_lower_the_ceiling():
    def at(noise):
        return feature_reference(make_corpus(CorpusSpec(n_docs=300, n_train_queries=3_000, n_test_queries=200,
                                                        latent_rank=4, beta=30.0, query_feature_noise=noise)))

    clean, noisy = at(0.01), at(0.5)
    assert noisy["feasible_success1"] < clean["feasible_success1"] - 0.2
    assert noisy["feasible_kl"] > clean["feasible_kl"] + 0.2


def test_every_ceiling_is_in_range(corpus):
    got = ceilings(corpus)
    assert 0 < got["bayes_success1"] <= 1 and 1 <= got["eff_docs"] <= corpus.n_docs and got["top_gap"] >= 0
    assert 0 <= got["feasible_success1"] <= 1 and got["feasible_kl"] >= -1e-6
