"""Paired significance tests (experiments.verdict.significance) against scipy, an exact enumeration of
every sign flip, and hand-worked corrections for multiple comparisons."""
import itertools

import numpy as np
import pytest
from scipy import stats

from grdr.experiments.verdict import significance as sig


@pytest.mark.parametrize("seed, n", [(0, 5), (1, 30), (2, 1000)])
def test_paired_t_equals_scipy_ttest_rel(seed, n):
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    b = np.clip(a + rng.normal(0.05, 0.2, n), 0, 1)
    t, p = sig.paired_t(a, b)
    expected = stats.ttest_rel(a, b)
    assert t == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_paired_t_on_discrete_per_query_values_equals_scipy():
    # Success@1-like values: 0 or 1 per query, many ties
    rng = np.random.default_rng(3)
    a, b = (rng.random(200) < 0.6).astype(float), (rng.random(200) < 0.5).astype(float)
    t, p = sig.paired_t(a, b)
    assert (t, p) == pytest.approx(tuple(stats.ttest_rel(a, b)), rel=1e-12)


def test_paired_t_where_scipy_gives_nan():
    assert sig.paired_t(np.ones(4), np.ones(4)) == (0.0, 1.0)  # identical systems: no evidence
    t, p = sig.paired_t(np.ones(4), np.zeros(4))  # every query better by exactly 1
    assert t == np.inf and p == 0.0
    assert all(np.isnan(sig.paired_t([1.0], [0.0])))


def _exact_p(d):
    """Two-sided p over all 2^n sign vectors (the identity included), by brute force."""
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
    return np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)


@pytest.mark.parametrize("d", [
    np.array([0.3, -0.1, 0.25, 0.4, -0.05, 0.1, 0.2, -0.3, 0.15, 0.05]),   # p near 0.1
    np.array([1, 0, 1, 1, -1, 0, 1, 0, 1, -1], float),                    # Success@1: ties everywhere
    np.array([0.9, 0.8, 0.7, 0.85, 0.95, 0.6, 0.75, 0.65, 0.9, 0.8]),      # all positive: p = 2 / 1024
    np.array([0.02, -0.4, 0.3, -0.1, 0.15, -0.2, 0.05, 0.1, -0.05, 0.1]),  # p near 1
])
def test_randomisation_p_matches_the_exact_enumeration_of_2_to_the_10_flips(d):
    exact = _exact_p(d)
    b = np.zeros_like(d)
    p = sig.paired_randomisation(d, b, permutations=sig.PERMUTATIONS, seed=0)
    tolerance = 4 * np.sqrt(exact * (1 - exact) / sig.PERMUTATIONS) + 2 / sig.PERMUTATIONS
    assert abs(p - exact) <= tolerance, (p, exact)


def test_randomisation_is_repeatable_never_zero_and_one_without_differences():
    rng = np.random.default_rng(5)
    a, b = rng.random(50), rng.random(50) + 0.5
    p = sig.paired_randomisation(a, b)
    assert p == sig.paired_randomisation(a, b) and p >= 1 / (sig.PERMUTATIONS + 1)
    assert sig.paired_randomisation(a, a) == 1.0
    # rows of one call each get what a call of their own would give
    rows = np.stack([a - b, b - a, rng.normal(size=50)])
    assert list(sig.randomisation_pvalues(rows)) == [sig.paired_randomisation(r, np.zeros(50)) for r in rows]


def test_holm_hand_worked():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> max(0.06, 0.04)
    assert sig.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1; NaN is not counted in m: 0.2 x 2 = 0.4, 0.5 x 1 = 0.5
    assert sig.holm([0.5, np.nan, 0.2]) == pytest.approx([0.5, np.nan, 0.4], nan_ok=True)
    assert sig.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_hand_worked():
    # sorted: 0.005 x 4/1 = 0.02, 0.01 x 4/2 = 0.02, 0.03 x 4/3 = 0.04, 0.04 x 4/4 = 0.04
    assert sig.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # the step-up takes the smaller value from above: 0.04 x 2/1 = 0.08 > 0.045 x 2/2
    assert sig.benjamini_hochberg([0.04, 0.045]) == pytest.approx([0.045, 0.045])


def test_comparison_table_pairs_on_shared_queries_and_corrects_over_its_rows():
    values = {"A": {"q1": 1.0, "q2": 0.5, "q3": 0.0, "q4": 1.0},
              "B": {"q1": 0.0, "q2": 0.5, "q3": 0.0, "q4": 0.0, "q5": 1.0},  # q5: B only, left out
              "C": {"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 1.0}}
    table = sig.comparison_table(values, [("A", "B"), ("C", "B"), ("A", "C")], permutations=2000)
    assert list(table["n_queries"]) == [4, 4, 4]
    assert list(table["diff"]) == pytest.approx([0.5, 0.875, -0.375])  # means A 0.625, B 0.125, C 1
    assert list(table["mean_b"]) == pytest.approx([0.125, 0.125, 1.0])
    assert list(table["p_holm"]) == pytest.approx(list(sig.holm(table["p_rand"])))
    a, b = np.array([1.0, 0.5, 0.0, 1.0]), np.array([0.0, 0.5, 0.0, 0.0])
    assert table["p_t"].iloc[0] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # 4 queries, A - B = (1, 0, 0, 1): 8 of the 16 sign vectors reach |sum| = 2
    assert table["p_rand"].iloc[0] == pytest.approx(0.5, abs=0.05)
    assert "| A | B | 0.625 | 0.125 | +0.500 |" in sig.markdown(table)


def test_format_p():
    assert (sig.format_p(0.03456), sig.format_p(5e-7), sig.format_p(float("nan"))) == ("0.0346", "<0.0001", "")
