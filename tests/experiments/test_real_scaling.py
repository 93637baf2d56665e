"""real_scaling end to end on a fixture and on LIMIT-small: record schema, TREC runs that
ir_measures scores as the records say, rerun skipping, the figure and the report."""
import dataclasses
import json
from pathlib import Path

import ir_measures
import numpy as np
import pytest

from experiments import real_scaling, store
from experiments.runner import run_experiment
from realdata import read_qrels, read_run
from figures import real_scaling as figure

SMOKE = real_scaling.PRESETS["smoke"]
# The smoke preset cut to BM25 on the MS MARCO fixture and one trained model, SeqGR (semantic
# docids, beam search), on LIMIT-small, since compiling dominates; test_real_cli trains DR.
CFGS = (dataclasses.replace(SMOKE, models=(), sizes=(100, 285), dim_collections=()),
        dataclasses.replace(SMOKE, models=("seq_gr",), collections=(), dims=(4,), steps=5))


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    for cfg in CFGS:
        summary = run_experiment(real_scaling, cfg, out, progress=False)
        assert summary["ran"] == len(list(real_scaling.sweep(cfg))) and summary["skipped"] == 0
    return out


@pytest.fixture(scope="module")
def records(out):
    return [json.loads(p.read_text()) for p in sorted((out / real_scaling.NAME).glob("*.json"))]


def test_the_grid_has_every_size_of_the_fixture_and_every_width_on_limit_small(records):
    points = {(r["config"]["collection"], r["config"]["sweep"], r["config"]["model"], r["config"]["n_docs"],
               r["config"].get("dim")) for r in records}
    assert points == {
        ("msmarco", "baseline", "bm25", 100, None), ("msmarco", "baseline", "bm25", 285, None),
        ("limit-small", "baseline", "bm25", 46, None), ("limit-small", "dim", "seq_gr", 46, 4),
    }


def test_records_carry_the_schema(records):
    for r in records:
        c = r["config"]
        assert r["experiment"] == "real_scaling" and r["run_id"] == store.run_id("real_scaling", {
            k: v for k, v in c.items() if k != "params"})
        for key in ("format", "path", "features", "train_on", "n_docs", "model", "seed", "n_train_pairs",
                    "n_queries", "split", "feature_dim"):
            assert key in c, key
        assert set(r["metrics"]) == set(real_scaling.MEASURES)
        assert all(0.0 <= v <= 1.0 for v in r["metrics"].values())
        assert c["train_on"] == ("test" if c["collection"] == "limit-small" else "train")
        assert Path(c["path"]).is_absolute() and c["features"] == "hash"
        if c["model"] != "bm25":
            assert r["config"]["params"] > 0 and np.isfinite(r["train"]["final_loss"])


def check_files_against_ir_measures(folder, r):
    """The record's run and qrels files parse, and ir_measures on them gives its metrics."""
    measures = [ir_measures.parse_measure(m) for m in real_scaling.MEASURES]
    run = read_run(folder / r["train"]["run_file"])
    qrels = read_qrels(folder / r["train"]["qrels_file"])
    assert len(run) == r["config"]["n_queries"]
    assert all(len(ranked) == min(r["config"]["k"], r["config"]["n_docs"]) for ranked in run.values())
    expected = ir_measures.calc_aggregate(measures, qrels, run)
    for m in measures:
        assert r["metrics"][str(m)] == pytest.approx(expected[m], abs=1e-12), (r["config"]["model"], m)


def test_trec_runs_score_in_ir_measures_as_the_records_say(out, records):
    for r in records:
        check_files_against_ir_measures(out / real_scaling.NAME, r)


def test_limit_small_ids_with_spaces_are_escaped_in_the_files(out, records):
    r = next(r for r in records if r["config"]["collection"] == "limit-small")
    qrels = read_qrels(out / real_scaling.NAME / r["train"]["qrels_file"])
    docs = {d for judged in qrels.values() for d in judged}
    assert len(docs) == 46 and "Geneva%20Durben" in docs
    assert len(qrels) == 1000 and all(len(j) == 2 for j in qrels.values())


def test_bm25_on_limit_small_is_the_near_perfect_lexical_baseline(records):
    # every query names an attribute that only its two relevant documents list
    r = next(r for r in records if r["config"]["model"] == "bm25" and r["config"]["collection"] == "limit-small")
    assert r["metrics"]["R@2"] > 0.95


def test_a_rerun_skips_every_finished_run(out):
    before = {p: p.stat().st_mtime_ns for p in (out / real_scaling.NAME).rglob("*") if p.is_file()}
    summaries = [run_experiment(real_scaling, cfg, out, progress=False) for cfg in CFGS]
    assert sum(s["ran"] for s in summaries) == 0
    assert sum(s["skipped"] for s in summaries) == len(before) - len(list((out / real_scaling.NAME / "runs").iterdir()))
    assert {p: p.stat().st_mtime_ns for p in (out / real_scaling.NAME).rglob("*") if p.is_file()} == before


def test_figure_and_report_read_the_records(out):
    df = store.load(out, real_scaling.NAME)
    fig = figure.plot(df)
    assert len(fig.axes) == 6  # a row against N (msmarco) and a row against D / H (LIMIT-small)
    assert figure.LIMIT_CREDIT in fig.get_suptitle()
    text = real_scaling.report(df)
    assert "R@2" in text and "Weller" in text and "BM25" in text


def test_config_names_the_field_it_rejects():
    with pytest.raises(ValueError, match="Config.models"):
        dataclasses.replace(SMOKE, models=("dr_sideways",))
    with pytest.raises(ValueError, match="Config.collections"):
        dataclasses.replace(SMOKE, collections=("trec:/data",))
    with pytest.raises(ValueError, match="Config.dims"):
        dataclasses.replace(SMOKE, dims=(0,))


def test_presets_grid_sizes():
    assert set(real_scaling.PRESETS) == {"smoke", "quick", "paper"}
    quick = real_scaling.PRESETS["quick"]
    assert quick.steps <= 1500 and quick.dims and quick.dim_collections == (real_scaling.LIMIT_SMALL,)
