"""The theory's drift quantities on a corpus and on a model's scores, against independent references."""
import math

import numpy as np
import pytest

from experiments.predictions import (FixedPointBudget, _MIN_DRAWS, fixed_point_samples, model_predictions,
                                     truth_predictions)
from sim.corpus import CorpusSpec, make_corpus
from sim.evaluate import evaluate_model
from sim.models import ModelConfig, make_model


@pytest.fixture(scope="module")
def tiny():
    spec = CorpusSpec(n_docs=60, n_train_queries=200, n_test_queries=6, latent_rank=4, zipf=1.0, seed=3)
    corpus = make_corpus(spec)
    model = make_model(ModelConfig(kind="dr", dim=6, hidden=8, depth=1), n_docs=spec.n_docs,
                       feature_dim=spec.feature_dim, seed=0)
    return corpus, model


def _predict(model, corpus, sampler, logq, n_queries, fixed_point_queries=0):
    return model_predictions(model, corpus, sampler, logq, 8, n_queries, mc_samples=500,
                             fixed_point_queries=fixed_point_queries, pool_size=8, seed=0,
                             budget=FixedPointBudget(samples=4, max_iter=60))


def test_sample_kl_on_all_test_queries_equals_the_evaluators(tiny):
    corpus, model = tiny
    got = _predict(model, corpus, "uniform", False, corpus.test.size)
    assert got["kl_sample"] == pytest.approx(evaluate_model(model, corpus)["kl_true"], rel=1e-4, abs=1e-5)
    assert math.isnan(got["fixed_point_kl"])


@pytest.mark.parametrize("scorer", [{"scorer": "bilinear"}, {"scorer": "maxsim", "vectors": 2, "doc_vectors": 2}],
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
    hard = _predict(model, corpus, "hard", True, 1)
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
    got = _predict(model, corpus, "hard", True, 1, fixed_point_queries=1)
    assert math.isnan(got["fixed_point_kl"]) and math.isnan(got["fixed_point_samples"])
    others = {k: v for k, v in got.items() if not k.startswith("fixed_point") and k != "kl_fixed_point_queries"}
    assert all(math.isfinite(v) for v in others.values()), others


def test_fixed_point_draws_reach_the_rarest_document():
    q = np.array([0.5, 0.3, 0.18, 0.02])
    budget, K = FixedPointBudget(samples=4), 8
    s = fixed_point_samples(budget, q, K)
    assert (len(q) - 1) * K * q.min() * s >= _MIN_DRAWS
    assert (len(q) - 1) * K * q.min() * (s - 1) < _MIN_DRAWS
    assert fixed_point_samples(budget, np.ones(4), K) == budget.samples


def test_truth_predictions_of_plain_uniform_sampling(tiny):
    """Plain uniform InfoNCE's population fixed point is log p* (up to a shift), so its KL is the sample
    average's bias only, small with many sets; the coverage is K k / N for the truth's confusers."""
    corpus, _ = tiny
    got = truth_predictions(corpus, "uniform", False, 8, 1, budget=FixedPointBudget(samples=256, max_iter=400))
    assert 0 <= got["fixed_point_kl"] < 0.05
    assert got["predicted_coverage"] == pytest.approx(8 * got["truth_confusers"] / corpus.n_docs)
    assert got["predicted_deficit"] == pytest.approx(math.log(8 / corpus.n_docs), abs=1e-9)
