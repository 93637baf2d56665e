"""capacity_dim end to end at the smoke preset: record schema, the Eckart-Young theorem on every
trained model, the floor against a plain numpy SVD, the figure and the report."""
import json

import numpy as np
import pytest
from scipy.special import logsumexp

from grdr.experiments import capacity_dim
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import run_experiment
from grdr.figures import capacity_dim as capacity_figure
from grdr.experiments.points import corpus_spec_of
from grdr.sim.corpus import log_posterior_rows, make_corpus

CFG = capacity_dim.PRESETS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    summary = run_experiment(capacity_dim, CFG, out, progress=False)
    assert summary["ran"] == len(list(capacity_dim.sweep(CFG)))
    return out


@pytest.fixture(scope="module")
def df(out):
    return store.load(out, "capacity_dim")


def test_one_record_per_run_with_the_contract_fields(out, df):
    assert len(df) == len(CFG.latent_ranks) * len(CFG.zipfs) * len(CFG.dims) * len(CFG.models) * len(CFG.seeds)
    assert (df["corpus_seed_used"].nunique()) == len(CFG.seeds)  # each seed its own corpus
    recs = [json.loads(p.read_text()) for p in (out / "capacity_dim").glob("*.json")]
    rec = next(r for r in recs if r["config"]["kind"] == "dr")
    assert {"experiment", "run_id", "config", "metrics", "seconds", "versions"} <= set(rec)
    for field in ("model", "objective", "n_docs", "dim", "hidden", "params", "seed", "corpus_latent_rank", "doc_side"):
        assert field in rec["config"], field
    for metric in ("Success@1", "kl_true", "rowshift_sq_err", "ey_floor", "ey_floor_dim", "rank_bound"):
        assert metric in rec["metrics"], metric
    assert (df.loc[df["kind"] != "dr", "hidden"] == df.loc[df["kind"] != "dr", "dim"]).all()  # GR at H = D


def test_smoke_records_a_curve_long_enough_for_the_convergence_check(df):
    """At least 3 checkpoints per run, so `converged` is read (0 or 1), never NaN."""
    assert (df["curve_step"].map(len) >= 3).all() and df["converged"].isin([0.0, 1.0]).all()


def test_measured_error_is_never_below_the_eckart_young_floor(df):
    # The theorem: a scorer whose log-probabilities have rank <= r up to row shifts cannot fit the
    # row-centred log p* better than the tail of its singular values beyond r. Slack covers float32 scores.
    slack = 1e-5 * df["rowshift_sq_err"].max()
    assert (df["rowshift_sq_err"] >= df["ey_floor"] - slack).all()
    # The bound is not vacuous below the true rank: DR at D = 2 < R has a positive floor.
    assert (df.loc[(df["kind"] == "dr") & (df["dim"] < df["corpus_latent_rank"]), "ey_floor"] > 1.0).all()


def test_floor_matches_a_numpy_svd_of_the_true_log_posterior(df):
    row = df.iloc[0]
    spec = corpus_spec_of(row)
    corpus = make_corpus(spec)
    target_MxN = log_posterior_rows(corpus, corpus.test, 0, corpus.test.size).astype(np.float64)
    centred_MxN = target_MxN - target_MxN.mean(axis=1, keepdims=True)
    sigma = np.linalg.svd(centred_MxN, compute_uv=False)
    M = target_MxN.shape[0]
    mine = df[df["corpus_seed_used"] == row["corpus_seed_used"]]
    for dim, floor in mine.groupby("dim")["ey_floor_dim"].first().items():
        assert floor == pytest.approx(np.sum(sigma[dim:] ** 2) / M, rel=1e-6, abs=1e-9)
    # True rank R (no popularity in the smoke corpus): the floor vanishes from D = R on.
    assert np.sum(sigma[spec.latent_rank:] ** 2) <= 1e-8 * np.sum(sigma ** 2)


def test_model_log_probs_are_normalised_over_the_corpus():
    from grdr.experiments.pipeline import corpus_for, docids_for
    from grdr.sim.logprobs import model_log_probs
    from grdr.sim.models import ModelConfig, make_model

    spec = next(capacity_dim.sweep(CFG)).corpus_spec()
    corpus = corpus_for(spec)
    docids = docids_for(CFG.docids, spec)
    for kind in ("dr", "atomic_gr", "seq_gr"):
        model = make_model(ModelConfig(kind=kind, dim=3, hidden=4, depth=1), n_docs=corpus.n_docs,
                           feature_dim=corpus.doc_features_NxF.shape[1], docids=docids)
        logp_MxN = model_log_probs(model, corpus, docids if kind == "seq_gr" else None)
        assert logp_MxN.shape == (corpus.test.size, corpus.n_docs)
        np.testing.assert_allclose(logsumexp(logp_MxN, axis=1), 0.0, atol=1e-4)


def test_rerun_skips_finished_runs(out):
    assert run_experiment(capacity_dim, CFG, out, progress=False)["ran"] == 0


def test_figure_and_report(df, tmp_path):
    fig = capacity_figure.plot(df)
    assert len(fig.axes) == 3 * len(CFG.latent_ranks) * len(CFG.zipfs)
    path = tmp_path / "capacity_dim.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000
    text = capacity_dim.report(df)
    assert "Eckart-Young floor at its rank" in text and "**held**" in text and "KL(p* || model)" in text


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="models"):
        capacity_dim.Config(models=("dr_magic",))
    with pytest.raises(ValueError, match="corpus.n_docs"):
        capacity_dim.Config(corpus=capacity_dim.CorpusSpec(n_docs=100_000))


def test_dimensions_trained_inside_a_shared_padded_width_give_the_unpadded_records(tmp_path, monkeypatch):
    """The runner trains DR's D = 2 and 3 (and AtomicGR's H = D) inside D = 8 (sim.widths): every record
    and metric, the Eckart-Young floors included, equals the one trained at its own D (float tolerance)."""
    import dataclasses

    from grdr.experiments.sweep.runner import groups

    cfg = dataclasses.replace(CFG, dims=(2, 3), models=("dr_table_global", "dr_global", "atomic_gr"))
    widths = {(g[0].model, capacity_dim.padded_model(cfg, g).dim,
               capacity_dim.padded_model(cfg, g).hidden) for g in groups(capacity_dim, cfg)}
    assert widths == {("dr_table_global", 8, CFG.model.hidden), ("dr_global", 8, CFG.model.hidden),
                      ("atomic_gr", 8, 8)}  # AtomicGR reads no D: the one the sweep sets is unified too
    run_experiment(capacity_dim, cfg, tmp_path / "padded", progress=False)
    monkeypatch.delattr(capacity_dim, "padded_model")
    run_experiment(capacity_dim, cfg, tmp_path / "plain", progress=False)
    records = [{r["run_id"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / d / "capacity_dim").glob("*.json"))}
               for d in ("padded", "plain")]
    assert records[0].keys() == records[1].keys() and len(records[0]) == 3 * 2 * len(cfg.seeds)
    for rid, rec in records[1].items():
        ours = records[0][rid]
        assert ours["config"] == rec["config"]
        for metric, value in rec["metrics"].items():
            assert ours["metrics"][metric] == pytest.approx(value, rel=1e-4, abs=1e-5, nan_ok=True), (rid, metric)
