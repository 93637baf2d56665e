"""Optimization drift: expected sampled gradients, the sampled log-partition, confuser coverage and
population fixed points, each against a brute-force reference, a closed form or Monte Carlo."""
import itertools
import math

import jax
import numpy as np
import pytest
import scipy.optimize
import scipy.special

from theory.drift import (confuser_coverage, expected_sampled_grad, gradient_bias, normalizer_deficit,
                          pmi_target, population_fixed_point)

SMALL_N, SMALL_K, MC_SAMPLES = 6, 3, 4000


def _zipf(num_docs, exponent=1.0):
    p_N = 1.0 / np.arange(1, num_docs + 1) ** exponent
    return p_N / p_N.sum()


def _sampling_q(proposal_N, pos, sampling):
    q_N = np.array(proposal_N, dtype=np.float64)
    if sampling == "exclude":
        q_N[pos] = 0.0
    return q_N / q_N.sum()


def _brute_force(scores_N, pos, num_negatives, proposal_N, corrected, sampling):
    """E_S[grad l_L] and E_S[log Z_S] - log Z by a plain loop over every ordered sample."""
    num_docs = len(scores_N)
    q_N = _sampling_q(proposal_N, pos, sampling)
    grad_N, deficit = np.zeros(num_docs), 0.0
    for sample in itertools.product(range(num_docs), repeat=num_negatives):
        prob = np.prod(q_N[list(sample)])
        if prob == 0.0:
            continue
        kept = [j for j in sample if j != pos]
        logits = [scores_N[pos]] + [scores_N[j] - (math.log(num_negatives * q_N[j]) if corrected else 0.0)
                                    for j in kept]
        weights = np.exp(np.array(logits) - scipy.special.logsumexp(logits))
        grad_N[pos] += prob * (weights[0] - 1.0)
        for j, w in zip(kept, weights[1:]):
            grad_N[j] += prob * w
        deficit += prob * (scipy.special.logsumexp(logits) - scipy.special.logsumexp(scores_N))
    return grad_N, deficit


@pytest.mark.parametrize("corrected, sampling", [(False, "exclude"), (True, "exclude"), (True, "mask")])
def test_exact_enumeration_matches_brute_force(corrected, sampling):
    rng = np.random.default_rng(1)
    scores_N, proposal_N = rng.normal(size=4), rng.dirichlet(np.ones(4))
    grad_N, deficit = _brute_force(scores_N, 1, 2, proposal_N, corrected, sampling)
    exact = expected_sampled_grad(scores_N, 1, 2, proposal_N, corrected, exact=True, sampling=sampling)
    np.testing.assert_allclose(exact.mean, grad_N, atol=1e-13)
    assert np.all(np.asarray(exact.standard_error) == 0.0)
    enumerated = normalizer_deficit(scores_N, 1, 2, proposal_N, corrected, exact=True, sampling=sampling)
    assert enumerated.monte_carlo == pytest.approx(deficit, abs=1e-13)


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(2)
    return rng.normal(size=SMALL_N) * 1.5, rng.dirichlet(np.ones(SMALL_N))


@pytest.mark.parametrize("corrected", [False, True])
def test_monte_carlo_agrees_with_enumeration(small_case, corrected):
    scores_N, proposal_N = small_case
    exact = expected_sampled_grad(scores_N, 0, SMALL_K, proposal_N, corrected, exact=True)
    mc = expected_sampled_grad(scores_N, 0, SMALL_K, proposal_N, corrected, num_samples=MC_SAMPLES,
                               key=jax.random.key(3))
    se_N = np.asarray(mc.standard_error)
    assert np.all(se_N[1:] > 0)
    assert np.all(np.abs(np.asarray(mc.mean) - np.asarray(exact.mean)) <= 4 * se_N + 1e-12)


def test_bias_vanishes_with_the_models_own_softmax_as_proposal(small_case):
    """Q = softmax(s) restricted to d != d+, corrected: every corrected negative logit equals
    log(Z (1 - p+) / K), so Z_S = Z on every sample and E_S[grad l_L] = grad l_G exactly."""
    scores_N, _ = small_case
    own_N = np.exp(scores_N)
    exact = gradient_bias(scores_N, 0, SMALL_K, own_N, True, exact=True)
    assert exact.norm < 1e-12
    mc = gradient_bias(scores_N, 0, SMALL_K, own_N, True, num_samples=MC_SAMPLES, key=jax.random.key(4))
    assert np.all(np.abs(np.asarray(mc.bias)) <= 4 * np.asarray(mc.standard_error) + 1e-12)


@pytest.mark.parametrize("corrected", [False, True])
def test_bias_does_not_vanish_with_a_uniform_proposal(small_case, corrected):
    scores_N, _ = small_case
    uniform_N = np.ones(SMALL_N)
    exact = gradient_bias(scores_N, 0, SMALL_K, uniform_N, corrected, exact=True)
    assert exact.norm > 0.02
    mc = gradient_bias(scores_N, 0, SMALL_K, uniform_N, corrected, num_samples=MC_SAMPLES, key=jax.random.key(5))
    z_N = np.abs(np.asarray(mc.bias)) / np.maximum(np.asarray(mc.standard_error), 1e-300)
    assert np.max(z_N) > 10
    assert abs(mc.norm - exact.norm) < 0.2 * exact.norm


def _spread_negatives(num_docs, pos_score, seed=6, sigma=0.5):
    scores_N = np.random.default_rng(seed).normal(size=num_docs) * sigma
    scores_N[0] = pos_score
    return scores_N


def test_uncorrected_deficit_is_log_ratio_where_negatives_hold_the_mass():
    """p+ ~ 1e-3, negative mass spread: E log Z_S - log Z ~ -log((N-1)/K), falling ln 10 per decade."""
    num_negatives, values = 16, {}
    for num_docs in (1_000, 10_000):
        d = normalizer_deficit(_spread_negatives(num_docs, -2.0), 0, num_negatives, np.ones(num_docs), False,
                               num_samples=20_000, key=jax.random.key(7))
        assert d.approximation == pytest.approx(-math.log((num_docs - 1) / num_negatives), abs=1e-12)
        # The Jensen gap is about Var(e^s)/E(e^s)^2 / (2K) ~ 0.01 at sigma = 0.5, K = 16.
        assert abs(d.error) < 0.03
        values[num_docs] = d.monte_carlo
    assert values[10_000] - values[1_000] == pytest.approx(-math.log(10.0), abs=0.02)


def test_uncorrected_log_ratio_breaks_when_the_positive_or_a_confuser_holds_the_mass():
    num_docs, num_negatives = 1_000, 16
    # The positive holds the mass: Z_S ~ Z, the deficit vanishes instead of being -log((N-1)/K).
    positive = normalizer_deficit(_spread_negatives(num_docs, 12.0), 0, num_negatives, np.ones(num_docs),
                                  False, num_samples=20_000, key=jax.random.key(8))
    assert abs(positive.monte_carlo) < 0.01 and positive.error < -3.0
    # One confuser holds 90% of the mass: most samples miss it, the deficit is far deeper.
    scores_N = _spread_negatives(num_docs, -2.0)
    scores_N[1] = math.log(9.0 * np.exp(np.delete(scores_N, 1)).sum())
    confuser = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), False, num_samples=20_000,
                                  key=jax.random.key(9))
    assert confuser.error > 1.0


def test_delta_method_matches_monte_carlo_in_its_regime_and_breaks_outside():
    num_docs, num_negatives = 1_000, 16
    scores_N = _spread_negatives(num_docs, 0.0)
    d = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), True, num_samples=20_000,
                           key=jax.random.key(10))
    p_N = scipy.special.softmax(scores_N)
    closed = -((num_docs - 1) * np.sum(p_N[1:] ** 2) - (1 - p_N[0]) ** 2) / (2 * num_negatives)
    assert d.approximation == pytest.approx(closed, rel=1e-10)
    assert d.monte_carlo < -5 * d.standard_error  # a real, resolved deficit
    assert abs(d.error) <= 4 * d.standard_error + 0.1 * abs(d.approximation)
    # Trained regime: one confuser holds half the mass, N/K large; the expansion explodes
    # (it predicts ~ -(N-1)/(8K)) while the true deficit is bounded below by log p+.
    scores_N[1] = math.log(np.exp(np.delete(scores_N, 1)).sum())
    trained = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), True, num_samples=20_000,
                                 key=jax.random.key(11))
    assert trained.approximation < -5.0
    assert trained.monte_carlo > math.log(scipy.special.softmax(scores_N)[0]) - 1e-12
    assert trained.error < -3.0


@pytest.mark.parametrize("replace", [True, False])
def test_confuser_coverage_matches_enumeration(replace):
    num_docs, num_negatives, num_confusers = 8, 3, 2
    pool = range(num_docs - 1)   # the N-1 non-positive documents; confusers are 0 .. k-1
    draws = (itertools.product(pool, repeat=num_negatives) if replace
             else itertools.combinations(pool, num_negatives))
    hits = [any(j < num_confusers for j in draw) for draw in draws]
    exact = confuser_coverage(num_docs, num_negatives, num_confusers, replace=replace).exact
    assert exact == pytest.approx(np.mean(hits), abs=1e-14)


def test_confuser_coverage_approximation_holds_when_sparse_and_breaks_when_not():
    sparse = confuser_coverage(100_000, 16, 5)
    assert sparse.approximation == pytest.approx(sparse.exact, rel=2e-3)
    dense = confuser_coverage(100, 16, 10)
    assert dense.approximation > 1.0 > dense.exact


def test_global_fixed_point_recovers_log_p_up_to_a_shift():
    p_N = np.random.default_rng(12).dirichlet(np.ones(30) * 0.5)
    fp = population_fixed_point(p_N)
    centred_N = fp.scores - np.log(p_N)
    assert fp.converged and np.ptp(centred_N) < 1e-6 and fp.kl_to_truth < 1e-12
    assert fp.spearman == pytest.approx(1.0)


@pytest.mark.parametrize("corrected", [False, True])
def test_sample_average_fixed_point_matches_the_enumerated_population_objective(corrected):
    """N = 4, K = 2: minimise the exact E_{d+} E_S[l_L] (every ordered sample) in the test itself."""
    p_N, proposal_N = np.array([0.5, 0.25, 0.15, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
    num_docs, num_negatives = 4, 2
    samples = []
    for pos in range(num_docs):
        q_N = _sampling_q(proposal_N, pos, "exclude")
        for sample in itertools.product(range(num_docs), repeat=num_negatives):
            if pos not in sample:
                offsets = [math.log(num_negatives * q_N[j]) if corrected else 0.0 for j in sample]
                samples.append((pos, list(sample), offsets, p_N[pos] * np.prod(q_N[list(sample)])))

    def objective(s_N):
        return sum(w * (scipy.special.logsumexp([s_N[d]] + [s_N[j] - c for j, c in zip(neg, off)]) - s_N[d])
                   for d, neg, off, w in samples)

    s_N = scipy.optimize.minimize(objective, np.zeros(num_docs), method="BFGS", options=dict(gtol=1e-10)).x
    reference_N = s_N - scipy.special.logsumexp(s_N)
    fp = population_fixed_point(p_N, num_negatives, proposal_N, corrected, num_samples=20_000,
                                key=jax.random.key(13))
    assert fp.converged
    np.testing.assert_allclose(fp.scores, reference_N, atol=0.02)


def _kl(log_a_N, log_b_N):
    return float(np.sum(np.exp(log_a_N) * (log_a_N - log_b_N)))


@pytest.fixture(scope="module")
def popular():
    p_N = _zipf(50)
    q_N = np.random.default_rng(14).permutation(np.sqrt(p_N))
    return p_N, q_N / q_N.sum()


def test_corrected_fixed_point_approaches_log_p_as_k_grows(popular):
    p_N, q_N = popular
    kls = [population_fixed_point(p_N, k, q_N, True, num_samples=4096 // k, key=jax.random.key(15)).kl_to_truth
           for k in (4, 64)]
    assert kls[1] < 0.01 < 0.1 < kls[0]


def test_uncorrected_popularity_fixed_point_sits_at_the_pmi_target(popular):
    """Far from log p*, close to log p* - log q at every K. The residual at large K is O(max p*):
    the positive is never its own negative, so the K -> infinity limit is PMI only to that order."""
    p_N, q_N = popular
    target_N = np.asarray(pmi_target(p_N, q_N))
    assert _kl(target_N, np.log(p_N)) > 0.05
    for k in (4, 64):
        fp = population_fixed_point(p_N, k, q_N, False, num_samples=4096 // k, key=jax.random.key(16))
        assert _kl(target_N, fp.scores) < 0.01
        assert _kl(target_N, fp.scores) < 0.1 * fp.kl_to_truth


def test_pmi_target_closed_forms():
    p_N = _zipf(10)
    np.testing.assert_allclose(pmi_target(p_N, p_N), np.full(10, -math.log(10)), atol=1e-12)
    np.testing.assert_allclose(pmi_target(p_N, np.full(10, 0.1)), np.log(p_N), atol=1e-12)


def test_validation_messages_name_the_argument():
    with pytest.raises(ValueError, match="pos"):
        expected_sampled_grad(np.zeros(3), 5, 1, np.ones(3), False, exact=True)
    with pytest.raises(ValueError, match="key"):
        expected_sampled_grad(np.zeros(3), 0, 1, np.ones(3), False)
    with pytest.raises(ValueError, match="proposal_N"):
        normalizer_deficit(np.zeros(3), 0, 1, np.array([1.0, 0.0, 0.0]), False, exact=True)
    with pytest.raises(ValueError, match="exact enumeration"):
        expected_sampled_grad(np.zeros(50), 0, 8, np.ones(50), False, exact=True)
    with pytest.raises(ValueError, match="p_true_N"):
        population_fixed_point(np.array([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="num_confusers"):
        confuser_coverage(10, 2, 10)
