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


def _planted(k_slope: float) -> pd.DataFrame:
    """Curves with gap(t) = 0.01 (t / T*)^-1/2 against a flat reference, T*(N) = 50 (N/100)^(1 - k_slope) and
    k(N) = 2 (N/100)^k_slope: read at t_N ~ N / (K k) the gap is the same at every N."""
    rows = []
    for seed in range(3):
        for n in (100, 300, 1000):
            steps = np.geomspace(10, 100 * n, 40)   # budgets grow with N, as pairs_per_doc makes them
            gap = 0.01 * (steps / (50.0 * (n / 100) ** (1 - k_slope))) ** -0.5
            k = 2.0 * (n / 100) ** k_slope
            for model, kl in (("dr_local_uniform", 1.0 + gap), ("dr_global", np.ones_like(steps))):
                rows.append({"model": model, "seed": seed, "n_docs": n, "num_negatives": 16, "truth_confusers": k,
                             "curve_step": [0.0, *steps], "curve_kl": [5.0, *kl]})
    return pd.DataFrame(rows)


def test_at_the_collapsed_budget_a_planted_rate_gap_is_flat_and_at_a_fixed_budget_it_grows():
    e = drift_gap.mechanism_effects(_planted(k_slope=0.3), "dr_local_uniform", "dr_global")
    assert len(e) == 3
    np.testing.assert_allclose(e["alpha_theory"], 0.7, atol=1e-9)
    np.testing.assert_allclose(e["slope_collapsed"], 0.0, atol=1e-4)
    assert (e["slope_fixed"] > 0).all()
    # at each N's own budget (100 N steps) the planted gap is 0.01 (100 N / T*(N))^-1/2: its slope per decade
    n = np.array([100.0, 300.0, 1000.0])
    final = 0.01 * (100 * n / (50.0 * (n / 100) ** 0.7)) ** -0.5
    np.testing.assert_allclose(e["slope_matched"], np.polyfit(np.log10(n), final, 1)[0], rtol=1e-6)


def _dilated(alpha: float, k_slope: float = 0.3, seeds: int = 6, budget: float = 100.0, K: int = 64) -> pd.DataFrame:
    """The sampled model's curve is its full-softmax twin's slowed by D(N) = 2 (N/100)^alpha: KL_local(t) =
    KL_global(t / D(N)), KL_global(t) = 1 + (t / 10)^-1/2, so it reaches the twin's KL at t_ref after exactly
    t_ref D(N) steps; k(N) = 2 (N/100)^k_slope makes the theory's alpha 1 - k_slope. Budgets: `budget` N steps,
    so budget / t_ref = 4 N / 100 against the theory's N / (K k): room 4 x 2 K / 100 (N/100)^k_slope (5.1 at
    N = 100 for K = 64, 1.3 for K = 16)."""
    rows = []
    for seed in range(seeds):
        for n in (100, 300, 1000):
            steps = np.geomspace(10, budget * n, 60)
            dilation = 2.0 * (n / 100) ** alpha
            for model, t in (("dr_local_uniform", steps / dilation), ("dr_global", steps)):
                rows.append({"model": model, "seed": seed, "n_docs": n, "num_negatives": K,
                             "truth_confusers": 2.0 * (n / 100) ** k_slope,
                             "curve_step": [0.0, *steps], "curve_kl": [5.0, *(1.0 + (t / 10) ** -0.5)]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("alpha", [0.7, 1.2])
def test_the_rate_law_reads_a_planted_dilation_and_its_exponent_against_the_theorys(alpha):
    df = _dilated(alpha)
    t_ref = drift_gap.BANDS["match_fraction"] * 100.0 * 100   # a quarter of the smallest N's budget
    got = drift_gap.dilations(df, "dr_local_uniform", "dr_global", t_ref)
    for (_, n), d in got.items():
        assert d == pytest.approx(2.0 * (n / 100) ** alpha, rel=2e-3)   # linear in log steps between checkpoints
    e = drift_gap.mechanism_effects(df, "dr_local_uniform", "dr_global")
    np.testing.assert_allclose(e["alpha"], alpha, atol=2e-3)
    np.testing.assert_allclose(e["alpha_theory"], 0.7, atol=1e-9)
    np.testing.assert_allclose(e["room"], 4 * 2 * 64 / 100, rtol=1e-9)   # least at N = 100
    row = next(r for r in dm.predictions(df) if r.quantity.startswith("DR tower"))
    # six seeds all inside (alpha = theory) or all 0.5 outside the band of 0.35: the sign test decides at 5%
    assert row.verdict.word == ("held" if alpha == 0.7 else "did not hold")
    grows = next(f for f in dm.findings(df) if f.claim.startswith("DR tower") and "dilation grows" in f.claim)
    assert grows.verdict.word == "held"


def test_a_design_whose_budgets_cannot_show_the_predicted_dilation_does_not_test_it():
    df = _dilated(0.7, K=16)   # room 1.28 at N = 100, below design_room = 2
    row = next(r for r in dm.predictions(df) if r.quantity.startswith("DR tower"))
    assert row.verdict.word == "not testable here" and "budgets can show a dilation of at most 1.3" in row.verdict.why


def test_a_seed_whose_budget_ends_before_the_level_is_left_out_and_counted():
    """Budgets of 100 N steps, t_ref = 2,500: the dilation 2 (N/100)^1.5 needs 2,500 x 63 steps at N = 1,000,
    beyond its 100,000 (and 2,500 x 10.4 < 30,000 at N = 300): every seed is censored at N = 1,000 only, so no
    exponent is a value and the row cannot decide."""
    df = _dilated(1.5)
    e = drift_gap.mechanism_effects(df, "dr_local_uniform", "dr_global")
    assert (e["reached"] == 2).all() and e["alpha"].isna().all()
    # T = the budget at N = 1,000 (above the mean log N): a lower bound on the exponent, below the planted 1.5
    log_n = np.log([100, 300, 1000])
    bound = np.polyfit(log_n, np.log([2.0, 2 * 3 ** 1.5, 100 * 1000 / 2500]), 1)[0]
    np.testing.assert_allclose(e["alpha_low"], bound, rtol=2e-3)
    assert 0 < bound < 1.5
    row = next(r for r in dm.predictions(df) if r.quantity.startswith("DR tower"))
    assert row.verdict.word == "inconclusive" and "at every N in 0 of 6 seeds" in row.verdict.why
    grows = next(f for f in dm.findings(df) if f.claim.startswith("DR tower") and "dilation grows" in f.claim)
    assert grows.verdict.word == "held" and "6 seed(s) enter with a lower bound" in grows.verdict.why
    table = dm.dilation_table(df, "dr_local_uniform", "dr_global")
    assert "beyond the budget (6 of 6 censored)" in table.loc[1, "N = 1,000"]
    assert float(table.loc[1, "N = 100"]) == pytest.approx(2.0, rel=1e-2)


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
