"""The theory's drift quantities on a corpus and on a model's scores, against independent references."""
import math

import numpy as np
import pytest

import scipy.special

from grdr.experiments.predictions import model_predictions, pmi_slope, truth_predictions
from grdr.experiments.theory_curves.measure import _MIN_DRAWS, fixed_point_samples
from grdr.sim.corpus import CorpusSpec, log_posterior_rows, make_corpus, posterior_marginal
from grdr.sim.evaluate import evaluate_model
from grdr.sim.models import ModelConfig, make_model, scorer_fields


@pytest.fixture(scope="module")
def tiny():
    spec = CorpusSpec(n_docs=60, n_train_queries=200, n_test_queries=6, latent_rank=4, zipf=1.0, seed=3)
    corpus = make_corpus(spec)
    model = make_model(ModelConfig(kind="dr", dim=6, hidden=8, depth=1), n_docs=spec.n_docs,
                       feature_dim=spec.feature_dim, seed=0)
    return corpus, model


def _predict(model, corpus, sampler, logq, n_queries):
    return model_predictions(model, corpus, sampler, logq, 8, n_queries, mc_samples=500, pool_size=8, seed=0)


def _truth(corpus, n):
    logp = log_posterior_rows(corpus, corpus.test, 0, n).astype(np.float64)
    return logp - scipy.special.logsumexp(logp, axis=1, keepdims=True)


def test_sample_kl_on_all_test_queries_equals_the_evaluators(tiny):
    corpus, model = tiny
    got = _predict(model, corpus, "uniform", False, corpus.test.size)
    assert got["kl_sample"] == pytest.approx(evaluate_model(model, corpus)["kl_true"], rel=1e-4, abs=1e-5)
    assert got["fixed_point_kl"] == pytest.approx(0.0, abs=1e-12)   # plain uniform, hits kept: log p* exactly
    assert got["kl_sample_se"] > 0


@pytest.mark.parametrize("scorer", [scorer_fields("bilinear"), scorer_fields("maxsim", vectors=2, doc_vectors=2)],
                         ids=["bilinear", "maxsim"])
def test_a_non_dot_scorers_predictions_use_its_own_scores(tiny, scorer):
    """The drift quantities read the scorer's scores: the sample KL is the evaluator's (which ranks by
    the scorer), and the hard pool of the model's own top documents gives finite quantities."""
    corpus, _ = tiny
    model = make_model(ModelConfig(kind="dr", dim=6, hidden=8, depth=1, doc_bias=True, **scorer),
                       n_docs=corpus.n_docs, feature_dim=corpus.spec.feature_dim, seed=1)
    model.bias[...] = np.linspace(-1.0, 1.0, corpus.n_docs)
    got = _predict(model, corpus, "uniform", False, corpus.test.size)
    assert got["kl_sample"] == pytest.approx(evaluate_model(model, corpus)["kl_true"], rel=1e-4, abs=1e-5)
    hard = _predict(model, corpus, "hard", True, 2)
    assert all(math.isfinite(v) for k, v in hard.items() if "fixed_point" not in k), hard


def test_uniform_closed_forms(tiny):
    """Uniform proposal, hits of d+ dropped: the uncorrected deficit's closed form is log(K/N), and the
    uniform coverage of k confusers is 1 - (1 - k/(N-1))^K for the k the records store."""
    corpus, model = tiny
    got = _predict(model, corpus, "uniform", False, 1)
    N, K, k = corpus.n_docs, 8, got["confusers"]
    assert got["deficit_approx"] == pytest.approx(math.log(K / N), abs=1e-9)
    assert got["coverage_uniform"] == pytest.approx(1 - (1 - k / (N - 1)) ** K, rel=1e-9)


def test_hard_negatives_have_no_fixed_point_but_every_other_quantity(tiny):
    corpus, model = tiny
    got = _predict(model, corpus, "hard", True, 2)
    assert math.isnan(got["fixed_point_kl"])
    others = {k: v for k, v in got.items() if not k.startswith("fixed_point")}
    assert all(math.isfinite(v) for v in others.values()), others


def test_fixed_point_draws_reach_the_rarest_document():
    q = np.array([0.5, 0.3, 0.18, 0.02])
    K = 8
    s = fixed_point_samples(4, q, K)
    assert (len(q) - 1) * K * q.min() * s >= _MIN_DRAWS
    assert (len(q) - 1) * K * q.min() * (s - 1) < _MIN_DRAWS
    assert fixed_point_samples(4, np.ones(4), K) == 4


def test_truth_predictions_of_plain_and_corrected_sampling(tiny):
    """Hits kept: plain uniform and every logQ-corrected proposal sit at log p* (KL 0 exactly); plain
    popularity at the PMI target with the population marginal; the coverage is K k / N."""
    corpus, _ = tiny
    got = truth_predictions(corpus, "uniform", False, 8, 3)
    assert got["fixed_point_kl"] == pytest.approx(0.0, abs=1e-12)
    assert got["predicted_coverage"] == pytest.approx(8 * got["truth_confusers"] / corpus.n_docs)
    assert truth_predictions(corpus, "popularity", True, 8, 3)["fixed_point_kl"] == pytest.approx(0.0, abs=1e-12)
    logp = _truth(corpus, 3)
    q = posterior_marginal(corpus, corpus.train)
    pmi = logp - np.log(q)[None, :]
    pmi -= scipy.special.logsumexp(pmi, axis=1, keepdims=True)
    expected = np.mean(np.sum(np.exp(logp) * (logp - pmi), axis=1))
    assert truth_predictions(corpus, "popularity", False, 8, 3)["fixed_point_kl"] == pytest.approx(expected, rel=1e-9)


def test_uniform_closed_forms(tiny):
    """Uniform proposal, hits of d+ kept: the uncorrected deficit's closed form is log(K/N) - log(1 - p+),
    and the uniform coverage of k confusers is 1 - (1 - k/(N-1))^K for the k the records store."""
    corpus, model = tiny
    got = _predict(model, corpus, "uniform", False, 1)
    N, K, k = corpus.n_docs, 8, got["confusers"]
    s_N = np.asarray(model.encode_queries(corpus.test.features_MxF[:1]) @ model.doc_table(
        None, corpus.doc_features_NxF)[0].T, np.float64)[0]
    p_pos = scipy.special.softmax(s_N)[int(corpus.test.pos_M[0])]
    assert got["deficit_approx"] == pytest.approx(math.log(K / N) - math.log1p(-p_pos), abs=1e-5)
    assert got["coverage_uniform"] == pytest.approx(1 - (1 - k / (N - 1)) ** K, rel=1e-9)


def test_pmi_slope_reads_one_at_the_pmi_target_and_zero_at_the_truth():
    rng = np.random.default_rng(0)
    logp = np.log(rng.dirichlet(np.ones(50)))
    q = rng.dirichlet(np.ones(50))
    assert pmi_slope(logp - np.log(q) + 3.0, logp, q) == pytest.approx(1.0, abs=1e-12)
    assert pmi_slope(logp + 1.0, logp, q) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(pmi_slope(logp, logp, np.full(50, 0.02)))   # a uniform proposal has no direction


def test_a_test_positive_the_popularity_proposal_cannot_draw_is_left_out_under_logq(tiny):
    """Popularity is the training positives' counts, so a document no training pair holds has Q = 0; a test
    query whose positive is such a document has no logQ gradient bias or deficit (the sampled objective
    never meets it). Its quantities are NaN and counted in `unseen_positive`; the others are the means over
    the queries whose positive the proposal draws (the deficit's closed form, computed query by query)."""
    import dataclasses

    corpus, model = tiny
    counts = np.bincount(corpus.train.pos_M, minlength=corpus.n_docs)
    pos_M = corpus.test.pos_M.copy()
    pos_M[0] = int(np.flatnonzero(counts == 0)[0])  # plant one: a positive no training pair holds
    corpus = dataclasses.replace(corpus, test=dataclasses.replace(corpus.test, pos_M=pos_M))
    unseen = [j for j in range(corpus.test.size) if counts[pos_M[j]] == 0]
    got = _predict(model, corpus, "popularity", True, corpus.test.size)
    assert got["unseen_positive"] == pytest.approx(len(unseen) / corpus.test.size)
    assert math.isfinite(got["grad_bias_norm"]) and math.isfinite(got["deficit_mc"])
    one = [_predict(model, _first(corpus, j), "popularity", True, 1)["deficit_approx"]
           for j in range(corpus.test.size) if j not in unseen]
    assert got["deficit_approx"] == pytest.approx(np.mean(one), rel=1e-6)  # float32 scores, batched differently


def _first(corpus, j):
    """The corpus with test query j moved to the front."""
    import dataclasses

    order = np.r_[j, np.delete(np.arange(corpus.test.size), j)]
    test = corpus.test
    return dataclasses.replace(corpus, test=dataclasses.replace(
        test, **{f.name: getattr(test, f.name)[order] for f in dataclasses.fields(test)}))
