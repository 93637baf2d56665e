"""negatives end to end at the smoke preset (its theory quantities: tests/experiments/test_predictions.py)."""
import json

import pytest

from grdr.experiments import negatives
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import run_experiment

SMOKE = negatives.PRESETS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    counts = run_experiment(negatives, SMOKE, out, progress=False)
    assert counts["ran"] == len(list(negatives.sweep(SMOKE)))
    return out


def test_records_have_the_contract_and_theory_fields(out):
    df = store.load(out, "negatives")
    assert len(df) == len(list(negatives.sweep(SMOKE)))
    rec = json.loads(next((out / "negatives").glob("*.json")).read_text())
    assert {"experiment", "run_id", "config", "metrics", "seconds", "versions"} <= set(rec)
    for field in ("model", "objective", "sampler", "logq", "n_docs", "corpus_zipf", "dim", "params", "num_negatives",
                  "seed"):
        assert field in rec["config"], field
    for metric in ("Success@1", "kl_true", "kl_sample", "fixed_point_kl", "grad_bias_norm", "grad_bias_cosine",
                   "deficit_mc", "deficit_approx", "confusers", "coverage_uniform", "coverage_proposal"):
        assert metric in rec["metrics"], metric
    assert df["Success@1"].between(0, 1).all() and (df["kl_true"] >= -1e-4).all()
    assert (df["fixed_point_kl"] >= -1e-8).all() and (df["grad_bias_norm"] >= 0).all()
    assert df["coverage_uniform"].between(0, 1).all() and df["coverage_proposal"].between(0, 1).all()
    assert (df["confusers"] >= 1).all() and (df["grad_bias_cosine"].abs() <= 1 + 1e-6).all()


def test_smoke_records_a_curve_long_enough_for_the_convergence_check(out):
    """At least 3 checkpoints per run, so `converged` is read (0 or 1), never NaN: a level claim is then
    decided or not testable because of what the curve shows, not because it is too short to show it."""
    df = store.load(out, "negatives")
    assert (df["curve_step"].map(len) >= 3).all() and df["converged"].isin([0.0, 1.0]).all()


def test_fixed_points_are_the_theorys_closed_forms(out):
    """Hits kept: the logQ-corrected popularity run's fixed point is log p* (KL 0 exactly); the plain one's is
    the PMI target, away from p* on a Zipf corpus; both carry the PMI slope of the trained model."""
    df = store.load(out, "negatives")
    pop = df[df["sampler"] == "popularity"]
    assert (pop.loc[pop["logq"], "fixed_point_kl"].abs() < 1e-12).all()
    assert (pop.loc[~pop["logq"], "fixed_point_kl"] > 1e-3).all()
    assert pop["pmi_slope"].notna().all()


def test_rerun_skips_and_figure_and_report_read_the_records(out):
    from grdr.figures.negatives import plot

    assert run_experiment(negatives, SMOKE, out, progress=False)["ran"] == 0
    df = store.load(out, "negatives")
    fig = plot(df)
    assert len(fig.axes) == 3 * len(SMOKE.zipfs)
    text = negatives.report(df)
    assert "logQ lowers popularity-sampled DR's KL" in text and "fixed point" in text and "PMI slope" in text
    # 30 steps: each claim is decided (or inconclusive) from converged runs, or says which runs were still falling
    found = negatives.findings(df)
    assert len(found) == 2 and all(f"- {f.claim}: {f.verdict}" in text for f in found)
    for f in found:
        assert f.verdict.word in ("held", "did not hold", "inconclusive") or \
            f.verdict.why.startswith("had not converged: popularity")


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="samplers"):
        negatives.Config(samplers=("nope",))
    with pytest.raises(ValueError, match="n_docs"):
        negatives.Config(n_docs=(10,))
    with pytest.raises(ValueError, match="train.sampler='hard' is set by --samplers"):
        negatives.Config(train=negatives.TrainConfig(sampler="hard"))
