"""drift_mechanism: the curve readers against planted curves, and the experiment end to end at smoke."""
import numpy as np
import pandas as pd
import pytest

from grdr.experiments import drift_gap
from grdr.experiments import drift_mechanism as dm
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import run_experiment


def test_first_reach_and_at_step_interpolate_in_log_steps():
    steps = np.array([10.0, 100.0, 1000.0])
    gap = np.array([0.4, 0.2, 0.0])
    assert drift_gap.first_reach(steps, gap, 0.1) == pytest.approx(10 ** 2.5)   # halfway in log steps
    assert drift_gap.first_reach(steps, gap, 0.5) == 10.0
    assert np.isnan(drift_gap.first_reach(steps, gap, -0.1))
    assert drift_gap.at_step(steps, gap, 10 ** 1.5) == pytest.approx(0.3)
    assert np.isnan(drift_gap.at_step(steps, gap, 5.0))


def test_extrapolated_gap_recovers_a_planted_limit():
    steps = np.geomspace(10, 10_000, 16)
    a, b = 0.004, 0.9
    got, slope = drift_gap.extrapolated_gap(steps, a + b * steps ** -0.5)
    assert got == pytest.approx(a, abs=1e-12) and slope < 0


def _planted(alpha_extra: float, k_slope: float) -> pd.DataFrame:
    """Curves with gap(t) = (t / T*)^-1/2 x reach, T*(N) = 50 (N/100)^(1 - k_slope + alpha_extra) and
    k(N) = 2 (N/100)^k_slope: the rate law holds with alpha = theory + alpha_extra."""
    rows = []
    for seed in range(3):
        for n in (100, 300, 1000):
            steps = np.geomspace(10, 100 * n, 40)   # budgets grow with N, as pairs_per_doc makes them
            t_star = 50.0 * (n / 100) ** (1 - k_slope + alpha_extra)
            gap = drift_gap.BANDS["reach"] * (steps / t_star) ** -0.5
            k = 2.0 * (n / 100) ** k_slope
            for model, kl in (("dr_local_uniform", 1.0 + gap), ("dr_global", np.ones_like(steps))):
                rows.append({"model": model, "seed": seed, "n_docs": n, "num_negatives": 16, "truth_confusers": k,
                             "curve_step": [0.0, *steps], "curve_kl": [5.0, *kl]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("extra", [0.0, 0.5])
def test_the_rate_law_exponent_is_read_against_the_theorys(extra):
    e = drift_gap.mechanism_effects(_planted(extra, k_slope=0.3), "dr_local_uniform", "dr_global")
    assert len(e) == 3
    np.testing.assert_allclose(e["alpha_theory"], 0.7, atol=1e-9)
    np.testing.assert_allclose(e["alpha"], 0.7 + extra, atol=5e-3)   # linear interpolation between checkpoints
    # at the collapsed budget t_N ~ N / (K k) the gap is the same at every N when the theory holds
    if extra == 0.0:
        np.testing.assert_allclose(e["slope_collapsed"], 0.0, atol=1e-4)
        assert (e["slope_fixed"] > 0).all()


def test_a_rate_law_the_budget_cannot_reach_says_how_far_the_gap_got():
    """Budgets cut to 1/100 of T*: the gap never reaches the band, and the row says so with the least gap
    at each N, the median over seeds of reach x (T* / last step)^1/2 by the planted law."""
    df = _planted(0.0, k_slope=0.3)
    df["curve_step"] = [s[: 2 + int(np.searchsorted(s[1:], 0.01 * 50.0 * (n / 100) ** 0.7))]
                        for s, n in zip(df["curve_step"], df["n_docs"])]
    df["curve_kl"] = [k[: len(s)] for k, s in zip(df["curve_kl"], df["curve_step"])]
    row = next(r for r in dm.predictions(df) if r.quantity.startswith("DR tower"))
    assert row.verdict.word == "inconclusive" and "in 0 of 3 seeds" in row.verdict.why
    for n in (100, 300, 1000):
        steps = np.asarray(df.loc[(df["n_docs"] == n) & (df["seed"] == 0), "curve_step"].iloc[0][1:])
        least = drift_gap.BANDS["reach"] * (steps[-1] / (50.0 * (n / 100) ** 0.7)) ** -0.5
        assert f"{least:.3f} nats at N = {n:,}" in row.verdict.why


SMOKE = dm.PRESETS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    counts = run_experiment(dm, SMOKE, out, progress=False)
    assert counts["ran"] == len(list(dm.sweep(SMOKE)))
    return out


def test_end_to_end_records_curves_report_and_figure(out):
    from grdr.figures.drift_mechanism import plot

    df = store.load(out, "drift_mechanism")
    assert (df["corpus_target_eff_docs"] > 0).all() and df["beta_used"].notna().all()
    assert all(len(s) >= 5 and s[0] == 0 for s in df["curve_step"])
    assert df["truth_confusers"].notna().all()
    text = dm.report(df)
    assert "per seed" in text and "gap no longer grows with log N" in text
    rows = dm.predictions(df)
    assert [r.quantity.split(":")[0] for r in rows] == ["DR tower", "DR free table"]
    assert len(plot(df).axes) == 2


def test_cosine_is_refused_because_its_curve_is_not_a_budget_sweep():
    with pytest.raises(ValueError, match="cosine"):
        dm.Config(train=dm.TrainConfig(schedule="cosine", curve_points=16))
