"""Population fixed points: the global optimum, the exact and the sample-average fixed point of every
correction rule under every sampling model against an enumerated population objective, Fisher
consistency of the standard logQ rule (hits kept), the PMI target and the negatives-only rule's bias."""
import functools
import itertools
import math

import jax
import numpy as np
import pytest
import scipy.optimize
import scipy.special

from grdr.theory.fixed_point import (fixed_point_closed_form, negatives_rule_two_documents, pmi_target,
                                population_fixed_point)


_TINY_P, _TINY_Q = np.array([0.5, 0.25, 0.15, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])
# SAA with 20_000 negative sets per positive: the scores land within 0.007 of the exact minimiser
# (measured, all four cases below).
_SAA_TOL = 0.02


def _zipf(num_docs, exponent=1.0):
    p_N = 1.0 / np.arange(1, num_docs + 1) ** exponent
    return p_N / p_N.sum()


def _sampling_q(proposal_N, pos, sampling):
    q_N = np.array(proposal_N, dtype=np.float64)
    if sampling == "exclude":
        q_N[pos] = 0.0
    return q_N / q_N.sum()


def test_global_fixed_point_recovers_log_p_up_to_a_shift():
    p_N = np.random.default_rng(12).dirichlet(np.ones(30) * 0.5)
    fp = population_fixed_point(p_N)
    centred_N = fp.scores - np.log(p_N)
    assert fp.converged and np.ptp(centred_N) < 1e-6 and fp.kl_to_truth < 1e-12
    assert fp.spearman == pytest.approx(1.0)


@functools.lru_cache(maxsize=None)
def _enumerated_fixed_point(num_negatives, correction, sampling):
    """Minimise the exact E_{d+ ~ p*} E_S[l_L] over every ordered sample of K negatives (N = 4),
    written out: "exclude" draws from q restricted to d != d+ (renormalised); "mask" draws from the
    whole q and drops the draws that hit d+; "keep" keeps them as candidates. The standard rule
    ("logq") offsets every candidate by log q of the distribution it came from (the positive: the
    whole q), the negatives-only rule the negatives by log(K q)."""
    p_N, num_docs = _TINY_P, len(_TINY_P)
    whole_N = _TINY_Q / _TINY_Q.sum()
    pos_T, pos_offset_T, neg_TxK, offset_TxK, weight_T = [], [], [], [], []
    for pos in range(num_docs):
        q_N = _sampling_q(_TINY_Q, pos, sampling)
        for sample in itertools.product(range(num_docs), repeat=num_negatives):
            weight = p_N[pos] * np.prod(q_N[list(sample)])
            if weight == 0.0:
                continue
            kept = [sampling == "keep" or j != pos for j in sample]
            pos_T.append(pos)
            pos_offset_T.append(math.log(whole_N[pos]) if correction == "logq" else 0.0)
            neg_TxK.append(sample)
            offset = {"none": lambda j: 0.0, "logq": lambda j: math.log(q_N[j]),
                      "logq_negatives": lambda j: math.log(num_negatives * q_N[j])}[correction]
            offset_TxK.append([offset(j) if keep else math.inf for j, keep in zip(sample, kept)])
            weight_T.append(weight)
    pos_T, pos_offset_T, neg_TxK, offset_TxK, weight_T = map(np.array, (pos_T, pos_offset_T, neg_TxK, offset_TxK,
                                                                        weight_T))

    def objective(s_N):
        pos_logit_T = s_N[pos_T] - pos_offset_T
        logits_TxK1 = np.concatenate([pos_logit_T[:, None], s_N[neg_TxK] - offset_TxK], axis=1)
        return float(weight_T @ (scipy.special.logsumexp(logits_TxK1, axis=1) - pos_logit_T))

    s_N = scipy.optimize.minimize(objective, np.zeros(num_docs), method="BFGS", options=dict(gtol=1e-12)).x
    return s_N - scipy.special.logsumexp(s_N)


RULES = ["none", "logq", "logq_negatives"]
SAMPLINGS = ["exclude", "mask", "keep"]


@pytest.mark.parametrize("correction", RULES)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_exact_fixed_point_matches_the_written_out_population_objective(correction, sampling):
    reference_N = _enumerated_fixed_point(2, correction, sampling)
    fp = population_fixed_point(_TINY_P, 2, _TINY_Q, correction, exact=True, sampling=sampling)
    assert fp.converged
    np.testing.assert_allclose(fp.scores, reference_N, atol=1e-6)


@pytest.mark.parametrize("correction", RULES)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_sample_average_fixed_point_matches_the_enumerated_population_objective(correction, sampling):
    """N = 4, K = 2: the sample-average fixed point against the exact population minimiser."""
    reference_N = _enumerated_fixed_point(2, correction, sampling)
    fp = population_fixed_point(_TINY_P, 2, _TINY_Q, correction, num_samples=20_000, key=jax.random.key(13),
                                sampling=sampling)
    assert fp.converged
    np.testing.assert_allclose(fp.scores, reference_N, atol=_SAA_TOL)


@pytest.mark.parametrize("correction", ["none", "logq_negatives"])
def test_sampling_models_are_told_apart(correction):
    """The three sampling models' references differ by more than twice the tolerance, so a fixed point
    within the tolerance of the wrong one fails the test above: it catches a mix-up."""
    refs = {m: _enumerated_fixed_point(2, correction, m) for m in SAMPLINGS}
    for a, b in itertools.combinations(SAMPLINGS, 2):
        assert np.max(np.abs(refs[a] - refs[b])) > 2 * _SAA_TOL, (a, b)


@pytest.mark.parametrize("num_negatives", [1, 2, 3])
def test_standard_logq_is_fisher_consistent_for_any_proposal_and_k(num_negatives):
    """Hits kept: the exact fixed point of the standard rule is log p*, to 1e-10, for random proposals."""
    rng = np.random.default_rng(20 + num_negatives)
    p_N = rng.dirichlet(np.ones(6))
    for _ in range(3):
        q_N = rng.dirichlet(np.ones(6) * 0.5) + 1e-3
        fp = population_fixed_point(p_N, num_negatives, q_N, "logq", exact=True)
        np.testing.assert_allclose(fp.scores, np.log(p_N), atol=1e-10)
        plain = population_fixed_point(p_N, num_negatives, q_N, "none", exact=True)
        np.testing.assert_allclose(plain.scores, np.asarray(pmi_target(p_N, q_N)), atol=1e-10)
        np.testing.assert_allclose(plain.scores, fixed_point_closed_form(p_N, q_N, "none"), atol=1e-10)


def test_dropping_the_hits_biases_the_consistent_rule_by_order_k_over_n():
    """Masking breaks the ranking-NCE argument: a bias that grows with K and shrinks with N."""
    kl = {}
    for n in (5, 10):
        p_N = _zipf(n)
        for k in (2, 3):
            kl[n, k] = population_fixed_point(p_N, k, np.ones(n), "logq", exact=True, sampling="mask").kl_to_truth
    assert kl[5, 3] > kl[5, 2] > 1e-6 and kl[10, 3] > kl[10, 2] > 1e-6
    assert kl[10, 2] < kl[5, 2] and kl[10, 3] < kl[5, 3]


@pytest.mark.parametrize("p_first, q_first", [(0.8, 0.5), (0.6, 0.3), (0.9, 0.8)])
def test_negatives_only_rule_matches_its_two_document_closed_form(p_first, q_first):
    fp = population_fixed_point(np.array([p_first, 1 - p_first]), 1, np.array([q_first, 1 - q_first]),
                                "logq_negatives", exact=True)
    assert math.exp(fp.scores[1] - fp.scores[0]) == pytest.approx(negatives_rule_two_documents(p_first, q_first),
                                                                   abs=1e-10)


def test_negatives_only_closed_form_solves_the_quadratic_of_the_issue():
    r = negatives_rule_two_documents(0.8)
    assert 0.8 * r * r + 1.2 * r - 0.2 == pytest.approx(0.0, abs=1e-12)
    assert r < 0.25   # the consistent ratio p_2 / p_1: the rule under-ranks the second document


def _kl(log_a_N, log_b_N):
    return float(np.sum(np.exp(log_a_N) * (log_a_N - log_b_N)))


@pytest.fixture(scope="module")
def popular():
    p_N = _zipf(50)
    q_N = np.random.default_rng(14).permutation(np.sqrt(p_N))
    return p_N, q_N / q_N.sum()


def test_negatives_only_fixed_point_approaches_log_p_only_as_k_grows(popular):
    p_N, q_N = popular
    kls = [population_fixed_point(p_N, k, q_N, "logq_negatives", num_samples=4096 // k, key=jax.random.key(15),
                                  sampling="exclude").kl_to_truth for k in (4, 64)]
    assert kls[1] < 0.01 < 0.1 < kls[0]


def test_uncorrected_popularity_fixed_point_sits_at_the_pmi_target(popular):
    """Hits dropped ("exclude"): far from log p*, close to log p* - log q at every K. The residual at
    large K is O(max p*): the positive is never its own negative, so the K -> infinity limit is PMI
    only to that order (with hits kept it is exact at every K: the test above)."""
    p_N, q_N = popular
    target_N = np.asarray(pmi_target(p_N, q_N))
    assert _kl(target_N, np.log(p_N)) > 0.05
    for k in (4, 64):
        fp = population_fixed_point(p_N, k, q_N, "none", num_samples=4096 // k, key=jax.random.key(16),
                                    sampling="exclude")
        assert _kl(target_N, fp.scores) < 0.01
        assert _kl(target_N, fp.scores) < 0.1 * fp.kl_to_truth


def test_pmi_target_closed_forms():
    p_N = _zipf(10)
    np.testing.assert_allclose(pmi_target(p_N, p_N), np.full(10, -math.log(10)), atol=1e-12)
    np.testing.assert_allclose(pmi_target(p_N, np.full(10, 0.1)), np.log(p_N), atol=1e-12)


def test_validation_messages_name_the_argument():
    with pytest.raises(ValueError, match="p_true_N"):
        population_fixed_point(np.array([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="sampling"):
        population_fixed_point(_TINY_P, 2, _TINY_Q, key=jax.random.key(0), sampling="replace")
    with pytest.raises(ValueError, match="correction"):
        population_fixed_point(_TINY_P, 2, _TINY_Q, True, key=jax.random.key(0))
    with pytest.raises(ValueError, match="exact=True"):
        population_fixed_point(np.ones(40), 4, np.ones(40), exact=True)
