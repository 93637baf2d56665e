"""Optimization drift: expected sampled gradients, the sampled log-partition, confusers and their
coverage, each against a brute-force reference, a closed form or Monte Carlo."""
import itertools
import math

import jax
import numpy as np
import pytest
import scipy.special

from grdr.theory.confusers import confuser_coverage, confusers
from grdr.theory.drift import expected_sampled_grad, gradient_bias, normalizer_deficit

SMALL_N, SMALL_K, MC_SAMPLES = 6, 3, 4000


def _sampling_q(proposal_N, pos, sampling):
    q_N = np.array(proposal_N, dtype=np.float64)
    if sampling == "exclude":
        q_N[pos] = 0.0
    return q_N / q_N.sum()


def _brute_force(scores_N, pos, num_negatives, proposal_N, correction, sampling):
    """E_S[grad l_L] and E_S[log Z_S] - log Z (l_L = -s+ + log Z_S) by a plain loop over every ordered sample."""
    num_docs = len(scores_N)
    q_N = _sampling_q(proposal_N, pos, sampling)
    whole_N = np.asarray(proposal_N, np.float64) / np.sum(proposal_N)
    pos_offset = math.log(whole_N[pos]) if correction == "logq" else 0.0
    neg_offset = {"none": lambda j: 0.0, "logq": lambda j: math.log(q_N[j]),
                  "logq_negatives": lambda j: math.log(num_negatives * q_N[j])}[correction]
    grad_N, deficit = np.zeros(num_docs), 0.0
    for sample in itertools.product(range(num_docs), repeat=num_negatives):
        prob = np.prod(q_N[list(sample)])
        if prob == 0.0:
            continue
        kept = [j for j in sample if j != pos or sampling == "keep"]
        logits = [scores_N[pos] - pos_offset] + [scores_N[j] - neg_offset(j) for j in kept]
        weights = np.exp(np.array(logits) - scipy.special.logsumexp(logits))
        grad_N[pos] += prob * (weights[0] - 1.0)
        for j, w in zip(kept, weights[1:]):
            grad_N[j] += prob * w
        loss = scipy.special.logsumexp(logits) - logits[0]
        deficit += prob * (loss + scores_N[pos] - scipy.special.logsumexp(scores_N))
    return grad_N, deficit


@pytest.mark.parametrize("correction", ["none", "logq", "logq_negatives"])
@pytest.mark.parametrize("sampling", ["exclude", "mask", "keep"])
def test_exact_enumeration_matches_brute_force(correction, sampling):
    rng = np.random.default_rng(1)
    scores_N, proposal_N = rng.normal(size=4), rng.dirichlet(np.ones(4))
    grad_N, deficit = _brute_force(scores_N, 1, 2, proposal_N, correction, sampling)
    exact = expected_sampled_grad(scores_N, 1, 2, proposal_N, correction, exact=True, sampling=sampling)
    np.testing.assert_allclose(exact.mean, grad_N, atol=1e-13)
    assert np.all(np.asarray(exact.standard_error) == 0.0)
    enumerated = normalizer_deficit(scores_N, 1, 2, proposal_N, correction, exact=True, sampling=sampling)
    assert enumerated.monte_carlo == pytest.approx(deficit, abs=1e-13)


def test_a_bool_correction_is_refused():
    with pytest.raises(ValueError, match="correction=True"):
        expected_sampled_grad(np.zeros(3), 0, 1, np.ones(3), True, exact=True)


def test_standard_logq_with_a_uniform_proposal_is_plain_sampling():
    """log Q is the same constant on every candidate: it cancels in the softmax."""
    scores_N = np.random.default_rng(9).normal(size=5)
    for sampling in ("mask", "keep"):
        plain = expected_sampled_grad(scores_N, 2, 2, np.ones(5), "none", exact=True, sampling=sampling)
        logq = expected_sampled_grad(scores_N, 2, 2, np.ones(5), "logq", exact=True, sampling=sampling)
        np.testing.assert_allclose(logq.mean, plain.mean, atol=1e-14)


def test_delta_method_of_the_standard_rule_tracks_monte_carlo():
    """Spread scores (var << mu^2): the delta-method deficit of the standard rule agrees with Monte Carlo."""
    rng = np.random.default_rng(10)
    num_docs, num_negatives = 2_000, 16
    scores_N = rng.normal(size=num_docs) * 0.5
    proposal_N = rng.dirichlet(np.ones(num_docs) * 5)
    d = normalizer_deficit(scores_N, 0, num_negatives, proposal_N, "logq", num_samples=20_000,
                           key=jax.random.key(11), sampling="keep")
    assert abs(d.error) <= 4 * d.standard_error + 0.1 * abs(d.approximation)


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(2)
    return rng.normal(size=SMALL_N) * 1.5, rng.dirichlet(np.ones(SMALL_N))


@pytest.mark.parametrize("corrected", ["none", "logq", "logq_negatives"])
def test_monte_carlo_agrees_with_enumeration(small_case, corrected):
    scores_N, proposal_N = small_case
    exact = expected_sampled_grad(scores_N, 0, SMALL_K, proposal_N, corrected, exact=True)
    mc = expected_sampled_grad(scores_N, 0, SMALL_K, proposal_N, corrected, num_samples=MC_SAMPLES,
                               key=jax.random.key(3))
    se_N = np.asarray(mc.standard_error)
    assert np.all(se_N[1:] > 0)
    assert np.all(np.abs(np.asarray(mc.mean) - np.asarray(exact.mean)) <= 4 * se_N + 1e-12)


def test_bias_vanishes_with_the_models_own_softmax_as_proposal(small_case):
    """Q = softmax(s) restricted to d != d+, negatives-only rule: every corrected negative logit equals
    log(Z (1 - p+) / K), so Z_S = Z on every sample and E_S[grad l_L] = grad l_G exactly."""
    scores_N, _ = small_case
    own_N = np.exp(scores_N)
    exact = gradient_bias(scores_N, 0, SMALL_K, own_N, "logq_negatives", exact=True)
    assert exact.norm < 1e-12
    mc = gradient_bias(scores_N, 0, SMALL_K, own_N, "logq_negatives", num_samples=MC_SAMPLES, key=jax.random.key(4))
    assert np.all(np.abs(np.asarray(mc.bias)) <= 4 * np.asarray(mc.standard_error) + 1e-12)


@pytest.mark.parametrize("corrected", ["none", "logq_negatives"])
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
        d = normalizer_deficit(_spread_negatives(num_docs, -2.0), 0, num_negatives, np.ones(num_docs), "none",
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
                                  "none", num_samples=20_000, key=jax.random.key(8))
    assert abs(positive.monte_carlo) < 0.01 and positive.error < -3.0
    # One confuser holds 90% of the mass: most samples miss it, the deficit is far deeper.
    scores_N = _spread_negatives(num_docs, -2.0)
    scores_N[1] = math.log(9.0 * np.exp(np.delete(scores_N, 1)).sum())
    confuser = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), "none", num_samples=20_000,
                                  key=jax.random.key(9))
    assert confuser.error > 1.0


def test_delta_method_matches_monte_carlo_in_its_regime_and_breaks_outside():
    num_docs, num_negatives = 1_000, 16
    scores_N = _spread_negatives(num_docs, 0.0)
    d = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), "logq_negatives", num_samples=20_000,
                           key=jax.random.key(10))
    p_N = scipy.special.softmax(scores_N)
    closed = -((num_docs - 1) * np.sum(p_N[1:] ** 2) - (1 - p_N[0]) ** 2) / (2 * num_negatives)
    assert d.approximation == pytest.approx(closed, rel=1e-10)
    assert d.monte_carlo < -5 * d.standard_error  # a real, resolved deficit
    assert abs(d.error) <= 4 * d.standard_error + 0.1 * abs(d.approximation)
    # Trained regime: one confuser holds half the mass, N/K large; the expansion explodes
    # (it predicts ~ -(N-1)/(8K)) while the true deficit is bounded below by log p+.
    scores_N[1] = math.log(np.exp(np.delete(scores_N, 1)).sum())
    trained = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), "logq_negatives", num_samples=20_000,
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


def _brute_force_confusers(p_N, pos, mass):
    """Fewest documents other than pos whose probability sums to mass * (1 - p_pos): every subset, by size."""
    others = [j for j in range(len(p_N)) if j != pos]
    target = mass * sum(p_N[j] for j in others)
    for size in range(1, len(others) + 1):
        if any(sum(p_N[j] for j in subset) >= target for subset in itertools.combinations(others, size)):
            return size
    raise AssertionError("unreachable: all others hold the mass")


@pytest.mark.parametrize("num_docs", [2, 5, 7])
@pytest.mark.parametrize("mass", [0.5, 0.3, 0.9, 1.0])
def test_confusers_match_enumeration_over_subsets(num_docs, mass):
    rng = np.random.default_rng(num_docs)
    for trial in range(20):
        scores_N = rng.normal(size=num_docs) * (0.5 + trial / 4)   # flat to peaked
        pos = int(rng.integers(num_docs))
        p_N = scipy.special.softmax(scores_N)
        k, order_N1 = confusers(scores_N, pos, mass)
        assert sorted(order_N1.tolist()) == [j for j in range(num_docs) if j != pos]
        assert np.all(np.diff(p_N[order_N1]) <= 0)
        # Away from exact ties with the target, rounding cannot move the subset count.
        assert k == _brute_force_confusers(p_N, pos, mass)


def test_confusers_break_ties_by_index_and_survive_a_dominant_positive():
    k, order_N1 = confusers(np.zeros(5), 2)   # four documents at 1/4 each: half needs two
    assert k == 2 and order_N1.tolist() == [0, 1, 3, 4]
    # p+ = 1 in float64: the off-d+ shares are still 0.9 : 0.1 (d = 1 unreachable at -inf).
    k, order_N1 = confusers(np.array([800.0, -np.inf, math.log(9.0), 0.0]), 0)
    assert k == 1 and order_N1.tolist() == [2, 3, 1]
    assert confusers(np.array([800.0, -np.inf, math.log(9.0), 0.0]), 0, mass=0.95)[0] == 2


def test_validation_messages_name_the_argument():
    with pytest.raises(ValueError, match="pos"):
        expected_sampled_grad(np.zeros(3), 5, 1, np.ones(3), "none", exact=True)
    with pytest.raises(ValueError, match="key"):
        expected_sampled_grad(np.zeros(3), 0, 1, np.ones(3), "none")
    with pytest.raises(ValueError, match="proposal_N"):
        normalizer_deficit(np.zeros(3), 0, 1, np.array([1.0, 0.0, 0.0]), "none", exact=True)
    with pytest.raises(ValueError, match="exact enumeration"):
        expected_sampled_grad(np.zeros(50), 0, 8, np.ones(50), "none", exact=True)
    with pytest.raises(ValueError, match="num_confusers"):
        confuser_coverage(10, 2, 10)
    with pytest.raises(ValueError, match="mass"):
        confusers(np.zeros(3), 0, mass=0.0)
    with pytest.raises(ValueError, match="pos"):
        confusers(np.zeros(3), 3)
    with pytest.raises(ValueError, match="scores_N"):
        confusers(np.array([0.0, -np.inf]), 0)
