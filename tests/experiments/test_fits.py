"""Scaling-law fits as data: planted laws are recovered from stored records, gaps are reported."""
import numpy as np
import pandas as pd
import pytest

from grdr.experiments.sweep import store
from grdr.experiments.fits import COLUMNS, Fit, fit_rows, fit_table, format_fits, oos_summary, write_fits

PLANTED = {"dr_local_uniform": (3.0, 0.5, 0.2), "seq_gr": (2.0, 0.6, 0.05)}  # a, alpha, c
XS = (100, 300, 1_000, 3_000, 10_000)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    for model, (a, alpha, c) in PLANTED.items():
        for n in XS:
            for seed in range(3):
                y = a * n ** -alpha + c + 0.002 * rng.standard_normal()
                store.write_record(out, "drift_corpus", {"model": model, "n_docs": n, "seed": seed},
                                   {"kl_true": y, "Success@1": 1 - y}, 0.0)
    # A curve with two distinct x cannot carry a three-parameter law.
    for n in (100, 1_000):
        for seed in range(3):
            store.write_record(out, "drift_corpus", {"model": "atomic_gr", "n_docs": n, "seed": seed},
                               {"kl_true": 0.1 + 0.01 * seed, "Success@1": 0.5}, 0.0)
    return out


def test_planted_laws_are_recovered_within_their_intervals(out):
    table = fit_table(out, "drift_corpus", bootstrap=300)
    assert list(table.columns) == COLUMNS
    for model, (a, alpha, c) in PLANTED.items():
        row = table[(table["model"] == model) & (table["metric"] == "kl_true")].iloc[0]
        assert row["converged"] and row["n_points"] == len(XS) * 3 and row["r2"] > 0.95
        # 95% intervals: the planted value within one interval width of the estimate (about 4 standard
        # errors) holds with near certainty, while a biased fit or a collapsed interval fails it.
        for name, planted in (("alpha", alpha), ("c", c)):
            width = row[f"{name}_high"] - row[f"{name}_low"]
            assert 0 < width and abs(row[name] - planted) <= width
        assert row["alpha"] == pytest.approx(alpha, rel=0.2)
        # Success@1 = 1 - y is the same law with a -> -a and c -> 1 - c.
        row = table[(table["model"] == model) & (table["metric"] == "Success@1")].iloc[0]
        assert row["a"] == pytest.approx(-a, rel=0.15) and row["c"] == pytest.approx(1 - c, abs=0.01)


def test_unfittable_curve_is_a_row_with_the_reason(out):
    table = fit_table(out, "drift_corpus", bootstrap=0)
    row = table[(table["model"] == "atomic_gr") & (table["metric"] == "kl_true")].iloc[0]
    assert not row["converged"] and np.isnan(row["alpha"]) and "distinct x" in row["message"]


def test_missing_experiments_are_skipped_and_grouping_names_the_curve(out, tmp_path):
    assert fit_table(tmp_path).empty  # no records at all
    assert set(fit_table(out, bootstrap=0)["experiment"]) == {"drift_corpus"}  # model_scale etc. absent
    for zipf in (0.0, 1.0):
        for n in XS:
            store.write_record(tmp_path, "negatives", {"model": "dr_local_popularity", "corpus_zipf": zipf, "n_docs": n,
                                                       "seed": 0}, {"kl_true": 2.0 * n ** -0.3 + zipf}, 0.0)
    table = fit_table(tmp_path, fits=(Fit("negatives", "n_docs", "kl_true", by=("model", "corpus_zipf")),),
                      bootstrap=0)
    assert sorted(table["model"]) == ["dr_local_popularity (corpus_zipf=0.0)", "dr_local_popularity (corpus_zipf=1.0)"]
    np.testing.assert_allclose(table["alpha"], 0.3, rtol=1e-4)
    np.testing.assert_allclose(sorted(table["c"]), [0.0, 1.0], atol=1e-4)


def test_write_fits_round_trips_and_formats(out):
    path = write_fits(out, bootstrap=0)
    assert path == out / "fits.csv"
    back = pd.read_csv(path)
    assert list(back.columns) == COLUMNS and len(back) == 3 * 2  # 3 models x 2 metrics
    text = format_fits(back)
    assert text.count("\n") == len(back) + 1 and "| drift_corpus | seq_gr | kl_true vs n_docs |" in text


def test_fit_needs_a_curve_name():
    with pytest.raises(ValueError, match="Fit.by"):
        Fit("drift_corpus", "n_docs", "kl_true", by=())


def test_fitting_one_experiment_keeps_every_other_experiments_rows(out, tmp_path, capsys):
    """`grdr fit model_scale` replaces model_scale's rows of fits.csv and nothing else."""
    import shutil

    from grdr import cli

    shutil.copytree(out / "drift_corpus", tmp_path / "drift_corpus")
    before = pd.read_csv(write_fits(tmp_path, bootstrap=0))
    assert set(before["experiment"]) == {"drift_corpus"}
    for params in (1e3, 3e3, 1e4, 3e4, 1e5):
        for seed in range(2):
            store.write_record(tmp_path, "model_scale", {"model": "seq_gr", "depth": 1, "params": params, "seed": seed},
                               {"kl_true": 5 * params ** -0.4 + 0.01 * seed, "Success@1": 0.5}, 0.0)
    assert cli.main(["fit", "model_scale", "--out", str(tmp_path)]) == 0
    after = pd.read_csv(tmp_path / "fits.csv")
    assert set(after["experiment"]) == {"drift_corpus", "model_scale"}
    pd.testing.assert_frame_equal(after[after["experiment"] == "drift_corpus"].reset_index(drop=True),
                                  before.reset_index(drop=True), check_dtype=False)
    assert "(the rows of drift_corpus kept as they were)" in capsys.readouterr().out
    # a second fit of model_scale replaces its rows, not adds to them
    write_fits(tmp_path, "model_scale", bootstrap=0)
    assert len(pd.read_csv(tmp_path / "fits.csv")) == len(after)


def test_a_fits_csv_that_is_not_a_table_of_fits_is_not_overwritten(out, tmp_path):
    import shutil

    shutil.copytree(out / "drift_corpus", tmp_path / "drift_corpus")
    (tmp_path / "fits.csv").write_text("my,own,notes\n1,2,3\n")
    with pytest.raises(store.StoreError, match="fits.csv: not a table of fits .*not overwritten"):
        write_fits(tmp_path, bootstrap=0)
    assert (tmp_path / "fits.csv").read_text() == "my,own,notes\n1,2,3\n"


def test_the_asymptote_is_kept_in_the_metrics_range(tmp_path):
    """model_scale drew DR's KL fit with c = -0.23 [-inf, 0.68]: a negative KL. A KL falling towards a
    negative value is fitted with c on 0, flagged; Success@1 keeps c within [0, 1]."""
    rng = np.random.default_rng(1)
    for params in (1e3, 3e3, 1e4, 3e4, 1e5):
        for seed in range(2):
            # every value a KL and a Success@1 can take (the store refuses others), on curves whose laws head
            # for a negative KL and a Success@1 above 1
            kl = 1.5 * params ** -0.15 - 0.25 + 0.002 * rng.standard_normal()
            store.write_record(tmp_path, "model_scale", {"model": "dr_global", "depth": 1, "params": params,
                                                         "seed": seed}, {"kl_true": kl, "Success@1": 1.0 - kl / 2}, 0.0)
    table = fit_table(tmp_path, "model_scale", bootstrap=100)
    kl = table[table["metric"] == "kl_true"].iloc[0]
    assert kl["c"] == 0.0 and kl["c_low"] == 0.0 and "c" in kl["at_bound"].split(",")
    success = table[table["metric"] == "Success@1"].iloc[0]
    assert 0.0 <= success["c_low"] <= success["c"] <= success["c_high"] <= 1.0


def test_rows_carry_the_bootstrap_over_seeds_and_the_out_of_sample_check(out):
    table = fit_table(out, "drift_corpus", bootstrap=200)
    for model, (a, alpha, c) in PLANTED.items():
        row = table[(table["model"] == model) & (table["metric"] == "kl_true")].iloc[0]
        assert (row["loss"], row["space"], row["boot_over"]) == ("squared", "linear", "seed")
        assert row["boot_units"] == 3 and row["boot_resamples"] == 200 and 0 < row["boot_converged"] <= 200
        assert row["n_x"] == len(XS) and row["alpha_boot_low"] <= row["alpha"] <= row["alpha_boot_high"]
        assert "3 groups resampled" in row["message"]  # few seeds: the table says the intervals are short
        # drawn from the law: the held-out largest x is predicted
        assert row["oos_x"] == max(XS) and row["oos_units"] == 3 and row["oos_pass"] == True  # noqa: E712
        assert row["oos_pred_low"] <= row["oos_pred"] <= row["oos_pred_high"]
        assert row["oos_measured_low"] <= row["oos_measured"] <= row["oos_measured_high"]


def _records(tmp_path, model, xs, metric_of, seeds=range(4), experiment="drift_corpus"):
    for n in xs:
        for seed in seeds:
            kl = metric_of(n, seed)
            store.write_record(tmp_path, experiment, {"model": model, "n_docs": n, "seed": seed},
                               {"kl_true": kl, "Success@1": 1 - kl}, 0.0)


def test_a_law_needs_four_distinct_x_and_says_which_it_found(tmp_path):
    """Three distinct x fit a three-parameter law but leave nothing to hold out: no numbers, and the
    message names the x found; a fourth x makes the law fitted and checked at it."""
    law = lambda n, seed: 2.0 * n ** -0.5 + 0.1 + 0.001 * seed  # noqa: E731
    _records(tmp_path, "dr_global", (100, 300, 1_000), law)
    row = fit_table(tmp_path, "drift_corpus", bootstrap=50).query("metric == 'kl_true'").iloc[0]
    assert not row["converged"] and row["n_x"] == 3 and row["n_points"] == 12
    assert row[["a", "alpha", "c", "alpha_boot_low", "oos_pred"]].isna().all() and pd.isna(row["oos_pass"])
    assert "needs at least 4 distinct x" in row["message"] and "n_docs takes 3: 100, 300, 1000" in row["message"]
    _records(tmp_path, "dr_global", (3_000,), law)
    row = fit_table(tmp_path, "drift_corpus", bootstrap=50).query("metric == 'kl_true'").iloc[0]
    assert row["n_x"] == 4 and row["oos_x"] == 3_000 and np.isfinite(row["alpha"]) and row["oos_pass"] in (True, False)


def test_a_law_that_breaks_at_the_largest_x_fails_out_of_sample_and_the_table_says_so(tmp_path):
    """KL that follows a law up to N = 3,000 and then jumps by 0.05 (25 times its seed-to-seed SD)."""
    rng = np.random.default_rng(3)
    _records(tmp_path, "dr_global", XS, lambda n, seed: 2.0 * n ** -0.5 + 0.1 + 0.002 * rng.standard_normal()
             + 0.05 * (n == max(XS)))
    _records(tmp_path, "seq_gr", XS, lambda n, seed: 2.0 * n ** -0.5 + 0.1 + 0.002 * rng.standard_normal())
    table = fit_table(tmp_path, "drift_corpus", fits=(Fit("drift_corpus", "n_docs", "kl_true"),), bootstrap=200)
    broken, fine = (table[table["model"] == m].iloc[0] for m in ("dr_global", "seq_gr"))
    # == rather than is: the column holds numpy booleans, or NaN where a law was not checked
    assert broken["oos_pass"] == False and broken["oos_measured_low"] > broken["oos_pred_high"]  # noqa: E712
    assert fine["oos_pass"] == True  # noqa: E712
    text = format_fits(table)
    assert "| FAIL at 10000: predicted" in text and "| pass at 10000: predicted" in text
    assert oos_summary(table).startswith("out of sample (each law fitted without its largest x): 1 pass, 1 fail "
                                         "(drift_corpus dr_global kl_true), 0 not checked, 0 not fitted")


def test_records_without_a_seed_column_resample_points_and_say_so():
    rows = [{"model": "seq_gr", "params": p, "kl_true": 4.0 * (p / 1e3) ** -0.8 + 0.2 + 0.001 * k}
            for p in (1e3, 3e3, 1e4, 3e4, 1e5) for k in range(2)]
    row = fit_rows(Fit("model_scale", "params", "kl_true"), pd.DataFrame(rows), bootstrap=100)[0]
    assert row["boot_over"] == "point" and row["boot_units"] == 10
    assert "no seed column: the bootstrap resamples points" in row["message"]


def test_huber_in_log_space_from_the_command_line_is_recorded_in_fits_csv(out, tmp_path, capsys):
    import shutil

    from grdr import cli

    shutil.copytree(out / "drift_corpus", tmp_path / "drift_corpus")
    assert cli.main(["fit", "drift_corpus", "--out", str(tmp_path), "--loss", "huber", "--resamples", "30"]) == 0
    table = pd.read_csv(tmp_path / "fits.csv")
    fitted = table[table["alpha"].notna()]
    assert set(fitted["loss"]) == {"huber"} and set(fitted["space"]) == {"log"} and set(fitted["boot_resamples"]) == {30}
    assert fitted["alpha_low"].isna().all()  # profile intervals belong to least squares on y
    printed = capsys.readouterr().out
    assert "| huber (log) |" in printed and "out of sample (each law fitted without its largest x): 4 pass" in printed


def test_a_fits_csv_written_before_the_bootstrap_keeps_its_rows(out, tmp_path):
    import shutil

    shutil.copytree(out / "drift_corpus", tmp_path / "drift_corpus")
    earlier = ["experiment", "model", "x", "metric", "a", "a_low", "a_high", "alpha", "alpha_low", "alpha_high",
               "c", "c_low", "c_high", "r2", "n_points", "converged", "at_bound", "message"]
    pd.DataFrame([["model_scale", "seq_gr", "params", "kl_true", 5.0, 4.0, 6.0, 0.4, 0.3, 0.5, 0.1, 0.0, 0.2, 0.99, 10,
                   True, "", "ok"]], columns=earlier).to_csv(tmp_path / "fits.csv", index=False)
    table = pd.read_csv(write_fits(tmp_path, "drift_corpus", bootstrap=0))
    assert list(table.columns) == COLUMNS
    kept = table[table["experiment"] == "model_scale"].iloc[0]
    assert kept["alpha"] == 0.4 and pd.isna(kept["alpha_boot_low"]) and pd.isna(kept["oos_pass"])


def test_the_paired_gaps_law_recovers_a_planted_exponent_that_the_unpaired_curves_hide(tmp_path):
    """drift_corpus's paired gap KL(sampled) - KL(full) against N, tower and table: each seed's corpus
    shifts both models' KL alike (a seed effect of 0.3 nats, 50x the noise), which the pairing cancels,
    and both share a trend in N. The planted gaps are g(N) = a N^-alpha + c with a < 0 (growing,
    saturating): the fitted alpha is within its intervals' width of the planted one, c is close, the
    hold-out check passes, and the sampled model's own (unpaired) law has another exponent."""
    from grdr.experiments.registry import DRIFT_PAIRS, FITS

    planted = {"dr_local_uniform - dr_global": (-2.0, 0.5, 0.3), "dr_table_local_uniform - dr_table_global": (
        -4.0, 0.8, 0.5)}  # a, alpha, c: gap = a N^-alpha + c
    rng = np.random.default_rng(1)
    xs, seeds = (100, 300, 1_000, 3_000, 10_000), range(8)
    for (local, ref), (a, alpha, c) in zip(DRIFT_PAIRS, planted.values()):
        for seed in seeds:
            shift = 0.3 * rng.standard_normal()  # the seed's corpus: harder or easier for both models
            for n in xs:
                base = 0.4 + 0.1 * np.log10(n) + shift
                gap = a * n ** -alpha + c
                for model, kl in ((ref, base), (local, base + gap)):
                    store.write_record(tmp_path, "drift_corpus", {"model": model, "n_docs": n, "seed": seed},
                                       {"kl_true": kl + 0.006 * rng.standard_normal(), "Success@1": 0.5}, 0.0)
    gap_fits = [f for f in FITS if f.experiment == "drift_corpus" and f.pairs]
    assert len(gap_fits) == 1 and gap_fits[0].pairs == DRIFT_PAIRS
    table = fit_table(tmp_path, "drift_corpus", bootstrap=400)
    gaps = table[table["metric"] == "kl_true_gap"].set_index("model")
    assert sorted(gaps.index) == sorted(planted)
    for name, (a, alpha, c) in planted.items():
        row = gaps.loc[name]
        assert row["converged"] and row["n_points"] == len(xs) * len(seeds) and row["boot_over"] == "seed"
        # as for the planted laws above: within one interval width of the estimate (about 4 standard errors),
        # for the profile interval and for the bootstrap over seeds
        for low, high in (("alpha_low", "alpha_high"), ("alpha_boot_low", "alpha_boot_high")):
            assert 0 < row[high] - row[low] and abs(row["alpha"] - alpha) <= row[high] - row[low]
        assert row["alpha"] == pytest.approx(alpha, rel=0.2) and row["c"] == pytest.approx(c, abs=0.03)
        assert row["oos_x"] == xs[-1] and row["oos_pass"] == True  # noqa: E712
        assert row["oos_measured"] == pytest.approx(a * xs[-1] ** -alpha + c, abs=0.01)
    # the sampled model's own law mixes the gap with the trend both models share: its exponent is not the gap's
    unpaired = table[(table["metric"] == "kl_true") & (table["model"] == "dr_local_uniform")].iloc[0]
    paired = gaps.loc["dr_local_uniform - dr_global"]
    assert not paired["alpha_boot_low"] <= unpaired["alpha"] <= paired["alpha_boot_high"]


def test_paired_gaps_pair_by_seed_and_leave_out_what_has_no_partner():
    from grdr.experiments.fits import paired_gaps

    df = pd.DataFrame({"model": ["a", "a", "b", "b", "a", "c"], "n_docs": [10, 10, 10, 10, 20, 10],
                       "seed": [0, 1, 0, 1, 0, 0], "kl_true": [1.0, 2.0, 0.25, 0.5, 3.0, 9.0]})
    gaps = paired_gaps(Fit("x", "n_docs", "kl_true", pairs=(("a", "b"), ("c", "d"))), df)
    assert sorted(gaps.itertuples(index=False, name=None)) == [(10, 0, 0.75, "a - b"), (10, 1, 1.5, "a - b")]
    with pytest.raises(ValueError, match="pairs"):
        Fit("x", "n_docs", "kl_true", pairs=(("a", "a"),))
