"""The verdict rule and seed summaries against closed forms and planted data."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from experiments.stats import (converged, effect_verdict, metric_range, not_testable, one_config_per_cell,
                               seed_summary, slope_effects)


def test_verdict_reads_the_t_interval():
    d = np.array([0.30, 0.25, 0.35, 0.28, 0.32])
    v = effect_verdict(d)
    half = scipy_stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert v.word == "held" and v.low == pytest.approx(d.mean() - half) and v.high == pytest.approx(d.mean() + half)
    assert effect_verdict(-d).word == "did not hold"
    assert effect_verdict([0.3, -0.2, 0.1, -0.25, 0.05]).word == "inconclusive"


def test_an_interval_inside_the_negligible_band_did_not_hold():
    tiny = np.array([0.001, -0.002, 0.0015, 0.0, -0.001])
    assert effect_verdict(tiny).word == "inconclusive"
    assert effect_verdict(tiny, negligible=0.02).word == "did not hold"


def test_inconclusive_states_its_minimum_detectable_effect_and_the_seeds_that_would_resolve_it():
    d = np.array([0.10, -0.05, 0.12, 0.02, 0.06])
    v = effect_verdict(d)
    sd, n = d.std(ddof=1), len(d)
    expected = (scipy_stats.t.ppf(0.975, n - 1) + scipy_stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
    assert v.word == "inconclusive" and v.mde == pytest.approx(expected)
    m = v.seeds_needed
    power = lambda k: (scipy_stats.t.ppf(0.975, k - 1) + scipy_stats.t.ppf(0.8, k - 1)) * sd / np.sqrt(k)  # noqa: E731
    assert power(m) <= abs(d.mean()) < power(m - 1)
    assert "minimum detectable effect" in str(v)


def test_an_estimate_too_close_to_zero_for_any_seed_count_says_so():
    d = np.array([0.020, -0.019, 0.021, -0.020, 0.0005, -0.001])  # mean 0.0001, sd about 0.018
    v = effect_verdict(d)
    sd = d.std(ddof=1)
    power_1000 = (scipy_stats.t.ppf(0.975, 999) + scipy_stats.t.ppf(0.8, 999)) * sd / np.sqrt(1000)
    assert power_1000 > abs(d.mean())  # so no seed count up to 1,000 detects it
    assert v.word == "inconclusive" and v.seeds_needed is None
    assert "no number of seeds up to 1,000 would resolve" in str(v) and "larger effect" in v.resolution()


def test_slope_effects_recover_a_planted_slope_per_seed():
    rows = [{"seed": s, "n_docs": n, "gap": 0.1 * s + (0.05 + 0.01 * s) * np.log10(n)}
            for s in range(3) for n in (100, 300, 1000, 3000)]
    got = slope_effects(pd.DataFrame(rows), "n_docs")
    np.testing.assert_allclose(got.to_numpy(), [0.05, 0.06, 0.07], atol=1e-12)


def test_seed_summary_clips_to_the_metric_range_and_has_no_interval_for_one_seed():
    df = pd.DataFrame({"model": ["a"] * 3 + ["b"], "Success@1": [0.0, 1.0, 0.98, 0.5]})
    s = seed_summary(df, ["model"], "Success@1").set_index("model")
    assert s.loc["a", "low"] >= 0 and s.loc["a", "high"] <= 1 and s.loc["a", "ci"] > 0.5
    assert np.isnan(s.loc["b", "ci"]) and np.isnan(s.loc["b", "low"]) and s.loc["b", "n"] == 1
    assert metric_range("kl_true") == (0.0, np.inf) and metric_range("nDCG@10") == (0.0, 1.0)


def test_seeds_pool_only_within_one_configuration():
    df = pd.DataFrame({"model": ["m"] * 4, "n_docs": [100] * 4, "seed": [0, 1, 2, 3],
                       "config_id": ["steps60", "steps60", "steps5", "steps5"], "mtime": [1, 2, 3, 4]})
    kept, dropped = one_config_per_cell(df, ["model", "n_docs"])
    assert list(kept["seed"]) == [2, 3] and dropped == 2


def test_convergence_is_the_last_quarters_share_of_the_fall():
    assert converged(0.04, 1.0) == 1.0 and converged(0.06, 1.0) == 0.0
    assert converged(0.0, -0.1) == 1.0 and np.isnan(converged(float("nan"), 1.0))
    assert not_testable("why").word == "not testable here"
