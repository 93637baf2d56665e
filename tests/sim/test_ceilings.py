"""References of a synthetic corpus against brute force, their limits, and their Monte Carlo errors."""
import numpy as np
import pytest

from grdr.sim.ceilings import feature_reference, posterior_summary, references
from grdr.sim.corpus import CorpusSpec, make_corpus


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
    assert got["label_accuracy"] == pytest.approx(np.mean(np.exp(top2[:, 0])), rel=1e-5)
    assert got["eff_docs"] == pytest.approx(np.exp(np.mean(-np.sum(np.exp(logp) * logp, axis=1))), rel=1e-4)
    assert got["top_gap"] == pytest.approx(np.mean(top2[:, 0] - top2[:, 1]), rel=1e-4, abs=1e-6)


def test_label_accuracy_is_e_max_p_by_enumeration_and_no_ceiling_for_argmax_qrels():
    c = make_corpus(CorpusSpec(n_docs=5, n_train_queries=20, n_test_queries=7, latent_rank=3, beta=2.0, zipf=0.5))
    # p*(d|q) one document at a time from its definition: exp(beta u.z + log pi_d) / sum over the 5 documents
    u, z, b = c.test.latents_MxR.astype(np.float64), c.doc_latents_NxR.astype(np.float64), c.doc_log_prior_N
    best, hits = [], []
    for q in range(7):
        w = [np.exp(c.spec.beta * sum(u[q, r] * z[d, r] for r in range(3)) + float(b[d])) for d in range(5)]
        p = [wd / sum(w) for wd in w]
        best.append(max(p))
        hits.append(max(range(5), key=lambda d: p[d]) == c.test.pos_M[q])  # p*'s own top-1 against the qrels
    assert posterior_summary(c)["label_accuracy"] == pytest.approx(np.mean(best), rel=1e-5)
    assert np.mean(best) < 0.9 and all(hits)  # p* scores Success@1 = 1 against its argmax: 0.x is no ceiling


def test_noiseless_features_give_the_truth_itself():
    c = make_corpus(CorpusSpec(n_docs=200, n_train_queries=2_000, n_test_queries=50, latent_rank=4, beta=20.0,
                               query_feature_noise=0.0, doc_feature_noise=0.0))
    got = feature_reference(c, samples=64)
    assert got["reference_success1"] == 1.0
    assert got["reference_kl"] == pytest.approx(0.0, abs=1e-3)
    assert got["reference_kl_se"] < 1e-4 and got["reference_success1_se"] < 1e-3


def test_noisier_features_lower_the_reference():
    def at(noise):
        return feature_reference(make_corpus(CorpusSpec(n_docs=300, n_train_queries=3_000, n_test_queries=200,
                                                        latent_rank=4, beta=30.0, query_feature_noise=noise)),
                                 samples=64)

    clean, noisy = at(0.01), at(0.5)
    assert noisy["reference_success1"] < clean["reference_success1"] - 0.2
    assert noisy["reference_kl"] > clean["reference_kl"] + 0.2


def test_every_reference_is_in_range(corpus):
    got = references(corpus, samples=64)
    assert 0 < got["label_accuracy"] <= 1 and 1 <= got["eff_docs"] <= corpus.n_docs and got["top_gap"] >= 0
    assert 0 <= got["reference_success1"] <= 1 and got["reference_kl"] >= -1e-6
    assert got["reference_kl_se"] >= 0 and got["reference_success1_se"] >= 0 and got["reference_samples"] == 64


def test_samples_must_split_into_the_groups(corpus):
    with pytest.raises(ValueError, match="samples=40"):
        feature_reference(corpus, samples=40, groups=16)


@pytest.fixture(scope="module")
def noisy():
    """A small corpus with noisy query features, so that the reference mixes over a wide latent cloud."""
    return make_corpus(CorpusSpec(n_docs=60, n_train_queries=2_000, n_test_queries=200, latent_rank=4, beta=6.0,
                                  query_feature_noise=0.4, seed=3))


@pytest.fixture(scope="module")
def spread(noisy):
    """Every estimate over 10 independent sets of draws, at 128 and at 2048 draws per query."""
    out = {}
    for samples in (128, 2048):
        runs = [feature_reference(noisy, samples=samples, seed=s) for s in range(10)]
        out[samples] = {k: np.array([r[k] for r in runs]) for k in runs[0]}
    return out


def test_kl_standard_error_shrinks_like_one_over_root_samples_and_matches_the_spread(spread):
    small, large = spread[128], spread[2048]
    # batch means over 16 groups: each reported SE is within ~18% (1 / sqrt(2 * 15)); 10 seeds average it to ~6%
    ratio = small["reference_kl_se"].mean() / large["reference_kl_se"].mean()
    assert ratio == pytest.approx(np.sqrt(2048 / 128), rel=0.25)
    # the reported SE is the spread of the estimate over independent draws (10 seeds: the spread is within ~25%)
    for got in (small, large):
        assert got["reference_kl"].std(ddof=1) / got["reference_kl_se"].mean() == pytest.approx(1.0, abs=0.6)
    # the bias estimate predicts how much 16 times the draws lower the mean estimate: b(128) - b(2048)
    drop = small["reference_kl"].mean() - large["reference_kl"].mean()
    predicted = small["reference_kl_bias"].mean() - large["reference_kl_bias"].mean()
    sem = np.hypot(small["reference_kl"].std(ddof=1), large["reference_kl"].std(ddof=1)) / np.sqrt(10)
    assert predicted > 0 and abs(drop - predicted) < 4 * sem + 0.1 * predicted


def test_success1_standard_error_matches_the_spread_over_draws(spread):
    got = spread[128]
    assert got["reference_success1_se"].mean() > 0
    # a coarse statistical tolerance: 10 seeds give the spread to within ~24%
    assert got["reference_success1"].std(ddof=1) / got["reference_success1_se"].mean() == pytest.approx(1.0, abs=0.6)


def test_reference_is_invariant_to_the_order_of_the_documents_chunks(corpus):
    # streaming over chunks of 64 or all 300 documents at once gives the same estimate
    a, b = feature_reference(corpus, samples=32, chunk_size=64), feature_reference(corpus, samples=32, chunk_size=4096)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k


@pytest.mark.parametrize("groups", [2, 8])
def test_groups_do_not_change_the_estimate_itself(corpus, groups):
    # the whole mixture over all draws is the same whatever the grouping; only the SE changes
    a = feature_reference(corpus, samples=64, groups=groups)
    b = feature_reference(corpus, samples=64, groups=32)
    assert a["reference_kl"] == pytest.approx(b["reference_kl"], rel=1e-4, abs=1e-7)
    assert a["reference_success1"] == b["reference_success1"]


def test_flip_variance_is_zero_unless_the_qrel_is_one_of_the_top_two():
    from math import erf, sqrt

    from grdr.sim.ceilings import _flip_variance

    # two queries, four draws; per draw log p*(a|u), log p*(b|u) for the mixture's top two a, b
    logpu = np.log(np.array([[[0.6, 0.4], [0.5, 0.5], [0.7, 0.3], [0.4, 0.6]]] * 2))
    arg = np.array([[3, 1], [3, 1]])
    var = _flip_variance(logpu, arg, np.array([1, 2]))
    diff = np.array([0.2, 0.0, 0.4, -0.2])
    z = diff.mean() / (diff.std(ddof=1) / 2)
    flip = 0.5 * (1 + erf(-z / sqrt(2)))
    assert var[0] == pytest.approx(flip * (1 - flip), rel=1e-9) and var[1] == 0.0
