"""drift_corpus end to end through the command line, at a size CI runs in seconds."""
import json

import pytest

from grdr.experiments import drift_corpus
from grdr.experiments.sweep import store
from grdr.cli import main

ARGS = ["--preset", "smoke", "--n-docs", "150", "--table-n-docs", "150", "--seeds", "0", "1", "--train.steps", "20",
        "--no-progress"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "drift_corpus", "--out", str(out), *ARGS]) == 0
    return out


def test_one_record_per_run_with_the_contract_fields(out):
    df = store.load(out, "drift_corpus")
    assert len(df) == 1 * 2 * len(drift_corpus.PRESETS["smoke"].models)  # N x seeds x models
    rec = json.loads(next((out / "drift_corpus").glob("*.json")).read_text())
    assert {"experiment", "run_id", "config", "metrics", "seconds", "versions"} <= set(rec)
    for field in ("model", "objective", "sampler", "n_docs", "dim", "hidden", "params", "num_negatives", "seed"):
        assert field in rec["config"], field
    for metric in ("Success@1", "RR@10", "nDCG@10", "R@100", "kl_true", "label_accuracy", "eff_docs", "top_gap",
                   "reference_success1", "reference_success1_se", "reference_kl", "reference_kl_se",
                   "reference_kl_bias", "reference_samples", "pairs_per_doc", "converged"):
        assert metric in rec["metrics"], metric
    assert ((df["Success@1"] >= 0) & (df["Success@1"] <= 1)).all() and (df["kl_true"] >= -1e-4).all()


def test_rerun_skips_finished_runs(out, capsys):
    main(["run", "drift_corpus", "--out", str(out), *ARGS])
    assert f"0 runs done, {2 * len(drift_corpus.PRESETS['smoke'].models)} already stored" in capsys.readouterr().out


def test_figures_and_report(out):
    from grdr.experiments.report import write_report
    from grdr.figures import render_all

    paths = render_all(out)
    assert [p.name for p in paths] == ["drift_corpus.png"] and paths[0].stat().st_size > 10_000
    text = write_report(out, preset="smoke").read_text()
    assert "## drift_corpus" in text and "Success@1" in text and "figures/drift_corpus.png" in text
    # the references are named for what they are: an estimate with its SE, a label accuracy that is no ceiling
    assert "Success@1 / reference" in text and "reference KL (estimate)" in text and "Monte Carlo SE" in text
    for word in ("irreducible", "feasible", "Bayes"):
        assert word not in text, word


def test_unknown_experiment_and_bad_override(out):
    with pytest.raises(SystemExit):
        main(["run", "no_such_experiment"])
    with pytest.raises(SystemExit):
        main(["run", "drift_corpus", "--out", str(out), "--preset", "smoke", "--models", "dr_magic"])


def test_a_swept_field_cannot_be_set_in_its_section():
    with pytest.raises(ValueError, match=r"Config.train.sampler='hard' is set by --models"):
        drift_corpus.Config(train=drift_corpus.TrainConfig(sampler="hard"))


def test_nested_overrides_reach_the_records(tmp_path):
    args = ["run", "drift_corpus", "--out", str(tmp_path), "--preset", "smoke", "--n-docs", "120", "--table-n-docs", "--seeds", "3",
            "--models", "dr_global", "--corpus.beta", "7.5", "--train.steps", "10", "--no-progress"]
    assert main(args) == 0
    df = store.load(tmp_path, "drift_corpus")
    assert list(df["corpus_beta"]) == [7.5] and list(df["steps"]) == [10] and list(df["seed"]) == [3]


def test_each_seed_trains_on_its_own_corpus(out):
    recs = [json.loads(p.read_text()) for p in (out / "drift_corpus").glob("*.json")]
    used = {(r["config"]["model"], r["config"]["seed"]): r["config"]["corpus_seed_used"] for r in recs}
    one = [used[(m, s)] for (m, s) in used if m == "dr_global"]
    assert len(set(one)) == 2  # two seeds, two corpora
    assert len(set(used.values())) == 2  # every model of one seed saw the same corpus
