import numpy as np
import pytest
from scipy import stats

from grdr.sim.corpus import CorpusSpec, log_posterior_chunks, log_posterior_rows, make_corpus

SMALL = CorpusSpec(n_docs=300, n_train_queries=400, n_test_queries=40, latent_rank=4, zipf=1.1, chunk_size=64,
                   qrels_k=5, feature_dim=8)


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(SMALL)


def brute_log_posterior(c, queries):
    """log p* by the formula of the module doc, in float64, all at once."""
    logits = c.spec.beta * queries.latents_MxR.astype(np.float64) @ c.doc_latents_NxR.T.astype(np.float64)
    logits += c.spec.popularity_weight * np.log(c.doc_popularity_N)[None, :]
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def test_posterior_sums_to_one_and_matches_brute_force(corpus):
    ref = brute_log_posterior(corpus, corpus.test)
    chunks = np.concatenate([b for _, b in log_posterior_chunks(corpus, corpus.test, chunk_size=37)], axis=1)
    np.testing.assert_allclose(np.exp(chunks).sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(chunks, ref, atol=2e-4)
    np.testing.assert_allclose(log_posterior_rows(corpus, corpus.test, 3, 9), ref[3:9], atol=2e-4)


def test_qrels_are_the_top_of_the_posterior(corpus):
    ref = brute_log_posterior(corpus, corpus.test)
    top = np.argsort(-ref, axis=1, kind="stable")[:, : SMALL.qrels_k]
    np.testing.assert_array_equal(corpus.test.qrels_MxQ, top)
    np.testing.assert_array_equal(corpus.test.pos_M, top[:, 0])


def test_same_seed_same_corpus_other_seed_other_corpus(corpus):
    again = make_corpus(SMALL)
    np.testing.assert_array_equal(again.doc_features_NxF, corpus.doc_features_NxF)
    np.testing.assert_array_equal(again.train.pos_M, corpus.train.pos_M)
    other = make_corpus(CorpusSpec(**{**SMALL.__dict__, "seed": 1}))
    assert not np.allclose(other.doc_features_NxF, corpus.doc_features_NxF)


@pytest.mark.parametrize("n_docs,chunk_size", [(50, 16), (700, 512)])
def test_streaming_draw_follows_the_posterior(n_docs, chunk_size):
    """Many training queries about one document: the drawn positives must follow p*(.|q) (chi-square).
    Chunks of 512 documents hold four blocks of the two-level inverse-CDF draw, and a flat posterior
    (beta 1) spreads the mass over all of them, so the block-level step is exercised."""
    flat = n_docs > 128  # many queries about one target (zipf 2) whose posterior ignores popularity
    spec = CorpusSpec(n_docs=n_docs, n_train_queries=20_000, n_test_queries=1, latent_rank=3,
                      beta=1.0 if flat else 3.0, zipf=2.0 if flat else 0.0, popularity_weight=0.0 if flat else 1.0,
                      query_noise=0.0, chunk_size=chunk_size, branching=2, depth=1, doc_noise=3.0)
    c = make_corpus(spec)
    # with query_noise 0 every query about target t has u = z_t: group queries by latent
    _, group = np.unique(np.round(c.train.latents_MxR, 5), axis=0, return_inverse=True)
    big = np.bincount(group.ravel()).argmax()
    rows = np.flatnonzero(group.ravel() == big)
    p = np.exp(brute_log_posterior(c, c.train)[rows[0]])
    observed = np.bincount(c.train.pos_M[rows], minlength=spec.n_docs)
    if flat:  # draws land in every block of the first chunk and in the second chunk
        assert all(observed[b:b + 128].sum() > 0 for b in range(0, 640, 128))
    keep = p * len(rows) >= 5  # pool the rare cells, as the test requires
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(p[keep], p[~keep].sum()) * len(rows)
    assert stats.chisquare(obs, exp).pvalue > 1e-3


@pytest.mark.parametrize("field,value", [("n_docs", 1), ("feature_map", "cubic"), ("qrels_k", 0), ("beta", -1.0)])
def test_invalid_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"CorpusSpec.{field}"):
        CorpusSpec(**{field: value})


def test_iso_difficulty_solves_beta_for_the_target_effective_documents():
    """target_eff_docs: the solved beta gives the probe queries exp(mean entropy) = the target (checked by a
    direct float64 softmax), the test queries about the same at every N, and it leaves the draws of a
    corpus at that beta unchanged."""
    import dataclasses

    import scipy.special

    from grdr.sim.corpus import _PROBE_QUERIES, _query_latents

    for n in (60, 400):
        spec = CorpusSpec(n_docs=n, n_train_queries=50, n_test_queries=300, latent_rank=4, zipf=0.5,
                          target_eff_docs=5.0, seed=2)
        corpus = make_corpus(spec)
        beta = corpus.spec.beta
        rng = np.random.default_rng(spec.seed)
        # rebuild the probe from its own stream, as make_corpus does, and the entropy by brute force
        z, bias = corpus.doc_latents_NxR.astype(np.float64), corpus.doc_log_prior_N.astype(np.float64)
        log_pi = np.log(corpus.doc_popularity_N)
        probe = _query_latents(spec, np.random.default_rng([spec.seed, 7]), corpus.doc_latents_NxR, log_pi,
                               _PROBE_QUERIES).astype(np.float64)
        logp = scipy.special.log_softmax(beta * probe @ z.T + bias[None, :], axis=1)
        assert np.exp(np.mean(-np.sum(np.exp(logp) * logp, axis=1))) == pytest.approx(5.0, rel=1e-8)
        logp_test = scipy.special.log_softmax(beta * corpus.test.latents_MxR.astype(np.float64) @ z.T + bias, axis=1)
        assert np.exp(np.mean(-np.sum(np.exp(logp_test) * logp_test, axis=1))) == pytest.approx(5.0, rel=0.15)
        plain = make_corpus(dataclasses.replace(spec, target_eff_docs=0.0, beta=beta))
        np.testing.assert_array_equal(plain.train.pos_M, corpus.train.pos_M)
        np.testing.assert_array_equal(plain.doc_features_NxF, corpus.doc_features_NxF)
    with pytest.raises(ValueError, match="target_eff_docs"):
        CorpusSpec(n_docs=10, target_eff_docs=20.0)
