"""negatives end to end at the smoke preset, and its theory quantities against independent references."""
import dataclasses
import json
import math

import numpy as np
import pytest
import scipy.special

from experiments import negatives, store
from experiments.runner import run_experiment
from sim.corpus import CorpusSpec, make_corpus
from sim.evaluate import evaluate_model
from sim.models import ModelConfig, make_model

SMOKE = negatives.PRESETS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    counts = run_experiment(negatives, SMOKE, out, progress=False)
    assert counts["ran"] == len(list(negatives.sweep(SMOKE)))
    return out


def test_records_have_the_contract_and_theory_fields(out):
    df = store.load(out, "negatives")
    assert len(df) == len(SMOKE.n_docs) * len(SMOKE.zipf) * len(SMOKE.samplers) * len(SMOKE.logq) * len(SMOKE.seeds)
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


def test_corrected_log_partition_never_exceeds_log_z(out):
    """Jensen: with logQ correction E Z_S = Z, so E log Z_S - log Z <= 0 (up to Monte Carlo error)."""
    df = store.load(out, "negatives")
    corrected = df[df["logq"]]
    assert len(corrected) > 0
    assert (corrected["deficit_mc"] <= 3 * corrected["deficit_se"] + 1e-6).all()


def test_rerun_skips_and_figure_and_report_read_the_records(out):
    from figures.negatives import plot

    assert run_experiment(negatives, SMOKE, out, progress=False)["ran"] == 0
    df = store.load(out, "negatives")
    fig = plot(df)
    assert len(fig.axes) == 3 * len(SMOKE.zipf)
    text = negatives.report(df)
    assert "logQ correction lowers KL" in text and "fixed point" in text
    assert any(w in text for w in ("**held**", "**did not hold**", "**inconclusive**"))


@pytest.fixture(scope="module")
def tiny():
    # The smoke preset's sizes, so that the compiled Monte Carlo and evaluation are reused.
    spec = CorpusSpec(n_docs=SMOKE.n_docs[0], n_train_queries=200, n_test_queries=6, latent_rank=SMOKE.latent_rank,
                      zipf=1.0, seed=3)
    corpus = make_corpus(spec)
    model = make_model(ModelConfig(kind="dr", dim=SMOKE.dim, hidden=SMOKE.hidden, depth=SMOKE.depth),
                       n_docs=spec.n_docs, feature_dim=spec.feature_dim, seed=0)
    return corpus, model


def test_sample_kl_on_all_test_queries_equals_the_evaluators(tiny):
    corpus, model = tiny
    cfg = dataclasses.replace(SMOKE, theory_queries=corpus.test.size, fp_queries=0, hard_pool=8)
    got = negatives.theory_metrics(model, corpus, "uniform", False, cfg, 0, {})
    assert got["kl_sample"] == pytest.approx(evaluate_model(model, corpus)["kl_true"], rel=1e-4, abs=1e-5)
    assert math.isnan(got["fixed_point_kl"])


def test_uniform_closed_forms(tiny):
    """Uniform proposal, hits of d+ dropped: the uncorrected deficit's closed form is log(K/N), and the
    uniform coverage of k confusers is 1 - (1 - k/(N-1))^K for the k the records store."""
    corpus, model = tiny
    cfg = dataclasses.replace(SMOKE, theory_queries=1, fp_queries=0, hard_pool=8)
    got = negatives.theory_metrics(model, corpus, "uniform", False, cfg, 0, {})
    N, K, k = corpus.n_docs, cfg.num_negatives, got["confusers"]
    assert got["deficit_approx"] == pytest.approx(math.log(K / N), abs=1e-9)
    assert got["coverage_uniform"] == pytest.approx(1 - (1 - k / (N - 1)) ** K, rel=1e-9)


def test_confusers_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.normal(size=30) * 3
        pos = int(rng.integers(30))
        k, _ = negatives._confusers(s.copy(), pos)
        p = scipy.special.softmax(s)
        off = np.delete(p, pos)
        # the smallest k whose top-k negatives reach half the mass off d+
        ref = next(j for j in range(1, 30) if np.sort(off)[::-1][:j].sum() >= 0.5 * off.sum() - 1e-15)
        assert k == ref


def test_proposals_match_the_sampler_definitions():
    s = np.array([0.0, 3.0, 1.0, 2.0, -1.0, 0.5])
    pop = np.array([0.4, 0.0, 0.1, 0.2, 0.2, 0.1])
    P, N = 2, 6
    np.testing.assert_allclose(negatives._proposal("uniform", s, P, pop), np.full(N, 1 / N))
    np.testing.assert_allclose(negatives._proposal("popularity", s, P, pop), pop)
    np.testing.assert_allclose(negatives._proposal("hard", s, P, pop), [0, 0.5, 0, 0.5, 0, 0])  # top-2: docs 1, 3
    mixed = negatives._proposal("mixed", s, P, pop)
    np.testing.assert_allclose(mixed, 0.5 / N + 0.5 * np.array([0, 0.5, 0, 0.5, 0, 0]))
    assert mixed.sum() == pytest.approx(1.0)


def test_fixed_point_draws_reach_the_rarest_document():
    q = np.array([0.5, 0.3, 0.18, 0.02])
    s = negatives.fp_samples(SMOKE, q)
    assert (len(q) - 1) * SMOKE.num_negatives * q.min() * s >= negatives._MIN_DRAWS
    assert (len(q) - 1) * SMOKE.num_negatives * q.min() * (s - 1) < negatives._MIN_DRAWS
    assert negatives.fp_samples(SMOKE, np.ones(4)) == SMOKE.fp_samples


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="samplers"):
        negatives.Config(samplers=("nope",))
    with pytest.raises(ValueError, match="fp_samplers"):
        negatives.Config(fp_samplers=("hard",))
    with pytest.raises(ValueError, match="n_docs"):
        negatives.Config(n_docs=(10,))


def test_hard_negatives_have_no_fixed_point_but_every_other_quantity(tiny):
    corpus, model = tiny
    cfg = dataclasses.replace(SMOKE, theory_queries=1, fp_queries=1, hard_pool=8)
    got = negatives.theory_metrics(model, corpus, "hard", True, cfg, 0, {})
    assert math.isnan(got["fixed_point_kl"]) and math.isnan(got["fixed_point_samples"])
    others = {k: v for k, v in got.items() if not k.startswith("fixed_point") and k != "kl_fp_queries"}
    assert all(math.isfinite(v) for v in others.values()), others
