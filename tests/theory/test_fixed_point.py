"""Population fixed points: the global optimum, the sample-average fixed point under both sampling
models against an enumerated population objective, the logQ limit in K and the PMI target."""
import functools
import itertools
import math

import jax
import numpy as np
import pytest
import scipy.optimize
import scipy.special

from theory.fixed_point import pmi_target, population_fixed_point


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
def _enumerated_fixed_point(num_negatives, corrected, sampling, keep_hits=False):
    """Minimise the exact E_{d+ ~ p*} E_S[l_L] over every ordered sample of K negatives (N = 4),
    written out: "exclude" draws from q restricted to d != d+ (renormalised); "mask" draws from the
    whole q and drops the draws that hit d+ (the logQ offset then uses the whole q). keep_hits
    keeps them instead, as a negative copy of d+: a bug the tests must tell apart."""
    p_N, num_docs = _TINY_P, len(_TINY_P)
    pos_T, neg_TxK, offset_TxK, weight_T = [], [], [], []
    for pos in range(num_docs):
        q_N = _sampling_q(_TINY_Q, pos, sampling)
        for sample in itertools.product(range(num_docs), repeat=num_negatives):
            weight = p_N[pos] * np.prod(q_N[list(sample)])
            if weight == 0.0:
                continue
            kept = [keep_hits or j != pos for j in sample]
            pos_T.append(pos)
            neg_TxK.append(sample)
            offset_TxK.append([(math.log(num_negatives * q_N[j]) if corrected else 0.0) if keep else math.inf
                               for j, keep in zip(sample, kept)])
            weight_T.append(weight)
    pos_T, neg_TxK, offset_TxK, weight_T = map(np.array, (pos_T, neg_TxK, offset_TxK, weight_T))

    def objective(s_N):
        logits_TxK1 = np.concatenate([s_N[pos_T][:, None], s_N[neg_TxK] - offset_TxK], axis=1)
        return float(weight_T @ (scipy.special.logsumexp(logits_TxK1, axis=1) - s_N[pos_T]))

    s_N = scipy.optimize.minimize(objective, np.zeros(num_docs), method="BFGS", options=dict(gtol=1e-10)).x
    return s_N - scipy.special.logsumexp(s_N)


@pytest.mark.parametrize("corrected", [False, True])
@pytest.mark.parametrize("sampling", ["exclude", "mask"])
def test_sample_average_fixed_point_matches_the_enumerated_population_objective(corrected, sampling):
    """N = 4, K = 2: the sample-average fixed point against the exact population minimiser."""
    reference_N = _enumerated_fixed_point(2, corrected, sampling)
    fp = population_fixed_point(_TINY_P, 2, _TINY_Q, corrected, num_samples=20_000, key=jax.random.key(13),
                                sampling=sampling)
    assert fp.converged
    np.testing.assert_allclose(fp.scores, reference_N, atol=_SAA_TOL)


@pytest.mark.parametrize("corrected", [False, True])
def test_mask_fixed_point_is_told_apart_from_plausible_mistakes(corrected):
    """The "mask" references differ from the "exclude" ones (the two agree only up to O(K q(d+))) and
    from "mask" with the hits of d+ kept by more than twice the tolerance, so a fixed point within
    the tolerance of the wrong one fails the test above: it catches either mistake."""
    mask_N = _enumerated_fixed_point(2, corrected, "mask")
    for mistake_N in (_enumerated_fixed_point(2, corrected, "exclude"),
                      _enumerated_fixed_point(2, corrected, "mask", keep_hits=True)):
        assert np.max(np.abs(mask_N - mistake_N)) > 2 * _SAA_TOL


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
    with pytest.raises(ValueError, match="p_true_N"):
        population_fixed_point(np.array([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="sampling"):
        population_fixed_point(_TINY_P, 2, _TINY_Q, key=jax.random.key(0), sampling="replace")
