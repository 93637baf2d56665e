"""The two-level profile (theory.two_level): its binomial sums against theory.drift's enumeration, the
closed forms against theory's, the limits the theory_curves report reads, and the delta method's
boundary rule on cases with a known answer. Float64 (tests/theory/conftest.py)."""
import math

import jax
import numpy as np
import pytest

import grdr.theory.two_level as tl
from grdr.theory import gradient_bias, normalizer_deficit


# ---------------------------------------------------------------------------------------------
# Exact values and closed forms against theory.drift, in float64.


@pytest.mark.parametrize("num_docs,num_negatives,share,confusers", [
    (6, 3, 0.4, 1), (7, 2, 0.7, 2), (5, 4, None, 1)])
def test_binomial_sums_equal_theorys_enumeration(num_docs, num_negatives, share, confusers):
    scores_N = tl.two_level_scores(num_docs, share, confusers)
    with jax.enable_x64(True):
        for corrected in (False, True):
            rule = "logq_negatives" if corrected else "none"   # two_level's "corrected": the importance-weighted Z_S
            enumerated = normalizer_deficit(scores_N, 0, num_negatives, np.ones(num_docs), rule, exact=True)
            exact = tl.exact_deficit(num_docs, num_negatives, share, confusers, corrected)
            assert exact == pytest.approx(enumerated.monte_carlo, abs=1e-12)
            closed = tl.closed_forms(num_docs, num_negatives, share, confusers)[int(corrected)]
            assert closed == pytest.approx(enumerated.approximation, rel=1e-12, abs=1e-14)
            bias = gradient_bias(scores_N, 0, num_negatives, np.ones(num_docs), rule, exact=True)
            assert tl.exact_gradient_bias(num_docs, num_negatives, share, confusers, corrected) == pytest.approx(
                bias.norm, rel=1e-10, abs=1e-13)


def test_the_profile_puts_the_share_on_the_confusers():
    p_N = np.exp(tl.two_level_scores(1_000, 0.3, 4))
    p_N /= p_N.sum()
    assert p_N[1:5].sum() / p_N[1:].sum() == pytest.approx(0.3, rel=1e-12)
    assert p_N[0] == pytest.approx(1 / 1_000, rel=1e-12)   # d+ has the mean weight
    assert np.ptp(np.exp(tl.two_level_scores(50, None))) == 0.0   # flat


def test_the_deficit_limits_that_the_report_reads():
    # Flat, uncorrected: Z_S = (K+1) w always, so the deficit is log((K+1)/N) exactly; with logQ Z_S = Z.
    assert tl.exact_deficit(1_000, 16, None, 1, False) == pytest.approx(math.log(17 / 1_000), rel=1e-13)
    assert tl.exact_deficit(1_000, 16, None, 1, True) == pytest.approx(0.0, abs=1e-15)
    # Peaked, N >> K: a sample almost never holds the confuser, so log(Z_S / Z) -> log(1 - m) with logQ,
    # while the delta method grows like N m^2 / (2K): far past the 10% boundary.
    m = 0.5
    assert tl.exact_deficit(1_000_000, 4, m, 1, True) == pytest.approx(math.log(1 - m), abs=1e-4)
    assert tl.closed_forms(1_000_000, 4, m, 1)[1] < -1e4
    assert tl.delta_relative_error(1_000_000, 4, m, 1) > 1e3
    # A light confuser (c << K): the delta method's relative error is its next (third-cumulant) term,
    # about (2/3) c / K, so it grows with c / K and stays below it.
    for n in (2_000, 5_000, 20_000):
        c_over_k = tl.two_level_weights(n, 0.001, 1)[0] / 256
        assert 0.3 * c_over_k < tl.delta_relative_error(n, 256, 0.001, 1) < c_over_k


# ---------------------------------------------------------------------------------------------
# The boundary rule.


def _boundary_with(monkeypatch, rel):
    monkeypatch.setattr(tl, "delta_relative_error", lambda n, K, share, k: rel(n))
    return tl.delta_boundary(4, 0.5, 1, 0.1, 1_000_000, 16)


def test_boundary_of_a_power_law_is_where_it_crosses(monkeypatch):
    # rel = N / 1000 crosses 0.1 at N = 100; log-linear interpolation is exact for a power law.
    b = _boundary_with(monkeypatch, lambda n: n / 1_000)
    assert b["boundary_n"] == pytest.approx(100.0, rel=1e-9)
    assert (b["censored_low"], b["censored_high"], b["segments"]) == (0.0, 0.0, 1.0)
    assert b["n_min"] == 4.0   # N >= 1 + k/m = 3 and N >= k + 3 = 4: where the confuser is the heaviest


def test_boundary_is_censored_at_either_end(monkeypatch):
    never = _boundary_with(monkeypatch, lambda n: 0.05)
    assert math.isnan(never["boundary_n"]) and never["censored_high"] == 1.0
    always = _boundary_with(monkeypatch, lambda n: 0.5)
    assert always["boundary_n"] == always["n_min"] and always["censored_low"] == 1.0


def test_boundary_takes_the_last_upward_crossing(monkeypatch):
    # Above the threshold at small N, below it in between, above again from N = 1000 on.
    b = _boundary_with(monkeypatch, lambda n: 0.2 if n < 10 else (0.01 if n < 1_000 else 0.3))
    assert b["segments"] == 2.0
    assert 1_000 / 1.2 < b["boundary_n"] < 1_000 * 1.2   # within the grid step (16 per decade) around the jump


def test_boundary_of_the_real_profile_moves_out_as_the_confuser_gets_lighter():
    # The confuser weighs c = m (N-2) / (1-m): the lighter its share, the larger N before the delta
    # method breaks; for a light confuser the boundary sits at c of order K/6 (see the report).
    b = {m: tl.delta_boundary(64, m, 1, 0.1, 1_000_000, 16)["boundary_n"] for m in (0.003, 0.03, 0.3)}
    assert b[0.003] > b[0.03] > b[0.3]
    c_over_k = (b[0.003] - 2) * 0.003 / 0.997 / 64
    assert 0.05 < c_over_k < 0.5


# ---------------------------------------------------------------------------------------------
# The helpers beside the exact values.


def test_global_gradient_is_theorys_on_the_profile():
    from grdr.theory import global_grad

    scores_N = tl.two_level_scores(200, 0.3, 3)
    grad_N = np.asarray(global_grad(jax.numpy.asarray(scores_N)[None], jax.numpy.array([0]))[0])
    norm, push = tl.global_gradient(200, 0.3, 3)
    assert norm == pytest.approx(np.linalg.norm(grad_N), rel=1e-12)
    assert push == pytest.approx(grad_N[1:4].sum(), rel=1e-12)


def test_hit_probability_and_its_simulation_match_confuser_coverage():
    from grdr.theory import confuser_coverage

    for n, K, k in ((30, 16, 4), (1_000, 16, 1), (10 ** 9, 4, 1)):
        assert tl.hit_probability(n, K, k) == pytest.approx(confuser_coverage(n, K, k).exact, rel=1e-6)
    rate, se = tl.simulated_coverage(100, 8, 3, 20_000, seed=0)
    assert abs(rate - confuser_coverage(100, 8, 3).exact) <= 5 * se
    assert tl.simulated_coverage(100, 8, 3, 20_000, seed=0) == (rate, se)   # seeded


def test_norm_error_of_an_exact_bias_is_zero():
    assert tl.norm_error(np.array([3.0, 4.0]), np.zeros(2), 5.0) == (0.0, 0.0)
    se, noise = tl.norm_error(np.array([3.0, 0.0]), np.array([0.0, 0.4]), 3.0)
    assert noise == pytest.approx(0.4) and se == pytest.approx(0.16 / 3)
