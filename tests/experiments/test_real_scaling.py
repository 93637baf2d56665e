"""real_scaling end to end on a fixture and on LIMIT-small: record schema, TREC runs that
ir_measures scores as the records say, rerun skipping, the figure and the report."""
import dataclasses
import json
import math
import re
from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pytest

from grdr.experiments import real_scaling
from grdr.experiments.real_scaling.points import real_point
from grdr.experiments.real_scaling.report import measure_label, run_depth
from grdr.experiments.sweep import store
from grdr.experiments.sweep.runner import run_experiment
from grdr.realdata import read_qrels, read_run
from grdr.figures import real_scaling as figure
from grdr.sim.models import scorer_fields

SMOKE = real_scaling.PRESETS["smoke"]
# The smoke preset cut to BM25 on the MS MARCO fixture and one trained model, SeqGR (semantic
# docids, beam search), on LIMIT-small, since compiling dominates; test_real_cli trains DR.
CFGS = (dataclasses.replace(SMOKE, models=(), sizes=(100, 285), dim_collections=()),
        dataclasses.replace(SMOKE, models=("seq_gr",), collections=(), dims=(4,),
                            train=dataclasses.replace(SMOKE.train, steps=5)))


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
    assert sum(s["skipped"] for s in summaries) == len(list((out / real_scaling.NAME).glob("*.json")))
    assert {p: p.stat().st_mtime_ns for p in (out / real_scaling.NAME).rglob("*") if p.is_file()} == before


def test_per_query_files_hold_what_ir_measures_iter_calc_gives(out, records):
    folder = out / real_scaling.NAME
    measures = [ir_measures.parse_measure(m) for m in real_scaling.MEASURES]
    for r in records:
        assert r["train"]["perquery_file"] == f"perquery/{r['run_id']}.csv"
        table = pd.read_csv(folder / r["train"]["perquery_file"], dtype={"query_id": str}, keep_default_na=False)
        assert list(table.columns) == ["query_id", "measure", "value"]
        qrels = read_qrels(folder / r["train"]["qrels_file"])
        ours = {(q, m): v for q, m, v in table.itertuples(index=False)}
        assert len(ours) == len(table) == len(qrels) * len(measures)  # every judged query, every measure
        theirs = {(x.query_id, str(x.measure)): x.value
                  for x in ir_measures.iter_calc(measures, qrels, read_run(folder / r["train"]["run_file"]))}
        for key, value in ours.items():
            assert value == pytest.approx(theirs.get(key, 0.0), abs=1e-12), (r["config"]["model"], key)
        for m in real_scaling.MEASURES:  # and the record's mean is their mean
            assert table.loc[table["measure"] == m, "value"].mean() == pytest.approx(r["metrics"][m], abs=1e-12)


def test_run_files_are_named_by_collection_model_size_width_and_seed(records):
    names = {Path(r["train"]["run_file"]).name: r for r in records}
    assert len(names) == len(records)
    for name, r in names.items():
        c = r["config"]
        expected = {("limit-small", "seq_gr"): "limit-small-test-seq_gr-N46-H4-seed0",
                    ("limit-small", "bm25"): "limit-small-test-bm25-N46",
                    ("msmarco", "bm25"): f"msmarco-dev-bm25-N{c['n_docs']}"}[c["collection"], c["model"]]
        assert name == f"{expected}-{r['run_id'][:8]}.trec"


def test_measures_deeper_than_the_run_are_named_for_what_they_are(out):
    assert measure_label("R@100", [20, math.inf]) == "R@100 (run depth 20)"
    assert measure_label("R@100", [math.inf, 100]) == "R@100"
    assert measure_label("nDCG@10", [20]) == "nDCG@10"
    assert run_depth({"kind": "bm25", "k": 20, "n_docs": 285}) == 20
    assert run_depth({"kind": "dr", "k": 100, "n_docs": 46}) == math.inf  # the whole corpus
    assert run_depth({"kind": "run", "k": 1000, "n_docs": 46}) == 1000
    # the smoke preset ranks 20 documents per query: its records' R@100 is recall within the top 20
    text = real_scaling.report(store.load(out, real_scaling.NAME))
    assert "R@100 (run depth 20): BM25" in text


def test_figure_and_report_read_the_records(out):
    df = store.load(out, real_scaling.NAME)
    fig = figure.plot(df)
    assert len(fig.axes) == 6  # a row against N (msmarco) and a row against D / H (LIMIT-small)
    assert figure.LIMIT_CREDIT in fig.get_suptitle()
    text = real_scaling.report(df)
    assert "R@2" in text and "Weller" in text and "BM25" in text


def _outside_runs(folder: Path, qrels: dict) -> dict:
    """A perfect run (every query's relevant documents on top) and a shuffled one (ten judged documents
    drawn at random), made from the qrels as written."""
    from grdr.realdata import write_run

    rng = np.random.default_rng(0)
    pool = sorted({d for judged in qrels.values() for d in judged})
    perfect = {q: {d: 10.0 - i for i, d in enumerate(sorted(j))} for q, j in qrels.items()}
    shuffled = {q: {d: 10.0 - i for i, d in enumerate(rng.permutation(pool)[:10])} for q in qrels}
    paths = {"perfect": folder / "perfect.trec", "shuffled": folder / "shuffled.trec"}
    write_run(paths["perfect"], perfect, tag="perfect")
    write_run(paths["shuffled"], shuffled, tag="shuffled")
    return paths


def test_outside_runs_are_scored_as_ir_measures_scores_them_and_join_the_tests(out, records, tmp_path):
    limit = next(r for r in records if r["config"]["collection"] == "limit-small")
    qrels = read_qrels(out / real_scaling.NAME / limit["train"]["qrels_file"])
    paths = _outside_runs(tmp_path, qrels)
    cfg = dataclasses.replace(SMOKE, models=(), collections=(), dims=(4,),
                              baseline_runs=tuple(f"{k}={v}" for k, v in paths.items()))
    results = tmp_path / "results"
    assert run_experiment(real_scaling, cfg, results, progress=False)["ran"] == 3  # BM25 and the two runs
    got = {json.loads(p.read_text())["config"]["model"]: json.loads(p.read_text())
           for p in (results / real_scaling.NAME).glob("*.json")}
    assert set(got) == {"bm25", "run:perfect", "run:shuffled"}
    measures = [ir_measures.parse_measure(m) for m in real_scaling.MEASURES]
    for name, path in paths.items():
        r = got[f"run:{name}"]
        assert r["config"]["n_docs"] == 46 and r["config"]["k"] == (2 if name == "perfect" else 10)
        assert r["train"]["run_file"] == str(path)
        expected = ir_measures.calc_aggregate(measures, qrels, read_run(path))
        for m in measures:
            assert r["metrics"][str(m)] == pytest.approx(expected[m], abs=1e-12), (name, m)
    assert got["run:perfect"]["metrics"]["R@2"] == 1.0 and got["run:shuffled"]["metrics"]["R@2"] < 0.2
    df = store.load(results, real_scaling.NAME)
    text = real_scaling.report(df, out=results)
    table = pd.read_csv(results / real_scaling.NAME / "significance.csv")
    pairs = set(zip(table["system_a"], table["system_b"], table["measure"]))
    assert {("run:perfect", "BM25", "nDCG@10"), ("run:shuffled", "BM25", "Success@1"),
            ("run:perfect", "run:shuffled", "nDCG@10")} <= pairs
    row = table[(table["system_a"] == "run:perfect") & (table["system_b"] == "run:shuffled")
                & (table["measure"] == "nDCG@10")].iloc[0]
    assert row["n_queries"] == 1000 and row["diff"] > 0.5 and row["p_rand"] < 0.001
    assert row["measure_label"] == "nDCG@10 (run depth 2)"
    assert "| run:perfect | run:shuffled |" in text and "randomisation p" in text
    fig = figure.plot(df)
    assert {"run:perfect", "run:shuffled"} <= {line.get_label() for line in fig.axes[0].get_lines()}


def test_config_refuses_outside_runs_that_are_not_name_eq_path():
    for bad in (("perfect.trec",), ("=x.trec",), ("a b=x.trec",), ("a=",), ("a=x", "a=y")):
        with pytest.raises(ValueError, match=r"Config.baseline_runs=.*: expected NAME=PATH"):
            dataclasses.replace(SMOKE, collections=(), baseline_runs=bad)
    with pytest.raises(ValueError, match="for exactly one collection"):
        dataclasses.replace(SMOKE, baseline_runs=("a=x.trec",))  # the MS MARCO fixture and LIMIT-small
    with pytest.raises(ValueError, match=r"Config.baseline_runs=.*: no such file /no/such.trec"):
        dataclasses.replace(SMOKE, collections=(), baseline_runs=("a=/no/such.trec",))


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
    assert quick.train.steps <= 1500 and quick.dims and quick.dim_collections == (real_scaling.LIMIT_SMALL,)


# The fields every real_scaling record of a trained model has carried; a point at the Config's defaults
# has exactly these (and the collection's), so the run_ids of stored records stay what they were.
LEGACY = {"schema", "model", "kind", "objective", "sampler", "logq", "dim", "hidden", "depth", "doc_side",
          "num_negatives", "steps", "batch_size", "learning_rate", "index_pairs", "docids", "docid_vocab",
          "docid_dims", "sweep", "n_docs", "k", "seed"}
DATA = {"collection": "c", "corpus_seed": 3}


def _record(cfg=SMOKE, name="dr_local_uniform", width=None, n_docs=100):
    return real_point(cfg, name, DATA, "dim" if width else "size", n_docs, width, 0).record()


def test_a_point_trains_under_the_configs_sections_with_what_the_sweep_sets():
    cfg = dataclasses.replace(SMOKE, model=dataclasses.replace(SMOKE.model, dim=12, hidden=20, depth=2),
                              train=dataclasses.replace(SMOKE.train, steps=7, learning_rate=0.5, num_negatives=3),
                              docids=dataclasses.replace(SMOKE.docids, vocab=5))
    pt = real_point(cfg, "dr_table_local_uniform", DATA, "size", 100, None, 1)
    assert (pt.model_cfg.kind, pt.model_cfg.doc_side, pt.model_cfg.dim, pt.model_cfg.hidden, pt.model_cfg.depth) == (
        "dr", "table", 12, 20, 2)
    assert (pt.train.objective, pt.train.sampler, pt.train.steps, pt.train.learning_rate, pt.train.num_negatives) == (
        "local", "uniform", 7, 0.5, 3)
    assert (pt.docids.vocab, pt.docids.seed) == (5, 3)  # the k-means of semantic docids runs under the corpus seed
    # on a D / H sweep the width is DR's D and GR's H
    dr, gr = (real_point(cfg, m, DATA, "dim", 100, 6, 0) for m in ("dr_global", "seq_gr"))
    assert (dr.model_cfg.dim, dr.model_cfg.hidden) == (6, 20) and gr.model_cfg.hidden == 6
    assert (dr.record()["dim"], gr.record()["dim"], gr.record()["hidden"]) == (6, 6, 6)
    assert real_point(cfg, "seq_gr", DATA, "size", 100, None, 0).record()["docids"] == "semantic"
    assert pt.record()["docids"] == "atomic"


def test_a_point_at_the_defaults_records_the_fields_real_scaling_always_recorded():
    for name in ("dr_local_uniform", "dr_global", "atomic_gr", "seq_gr"):
        assert set(_record(name=name)) == LEGACY | set(DATA), name


@pytest.mark.parametrize("section, change, recorded", [
    ("model", scorer_fields("maxsim", vectors=2), {"scorer": "maxsim", "vectors": 2, "doc_vectors": 2}),
    ("model", scorer_fields("lowrank", rank=3), {"scorer": "lowrank", "scorer_rank": 3}),
    ("model", {"temperature": 0.05}, {"temperature": 0.05}),
    ("train", {"schedule": "cosine"}, {"schedule": "cosine"}),
    ("train", {"weight_decay": 0.01}, {"weight_decay": 0.01}),
    ("train", {"accidental_hits": "mask"}, {"accidental_hits": "mask"}),
])
def test_a_setting_away_from_its_default_enters_the_record_and_its_run_id(section, change, recorded):
    cfg = dataclasses.replace(SMOKE, **{section: dataclasses.replace(getattr(SMOKE, section), **change)})
    rec = _record(cfg)
    assert {k: rec[k] for k in recorded} == recorded and set(rec) == LEGACY | set(DATA) | set(recorded)
    assert store.run_id(real_scaling.NAME, rec) != store.run_id(real_scaling.NAME, _record())


def test_a_scorer_is_a_dr_setting_and_a_pool_sampler_records_its_pool_capped_at_n():
    cfg = dataclasses.replace(SMOKE, model=dataclasses.replace(SMOKE.model, **scorer_fields("cosine")))
    assert _record(cfg)["scorer"] == "cosine" and "scorer" not in _record(cfg, name="atomic_gr")
    pool = dataclasses.replace(SMOKE, train=dataclasses.replace(SMOKE.train, hard_pool=64))
    assert _record(pool, name="dr_local_hard", n_docs=40)["hard_pool"] == 40
    assert _record(pool, name="dr_local_hard", n_docs=100)["hard_pool"] == 64
    assert "hard_pool" not in _record(pool)  # the uniform proposal reads no pool


@pytest.mark.parametrize("section, change, says", [
    ("model", {"kind": "seq_gr"}, "Config.model.kind='seq_gr' is set by --models"),
    ("model", {"doc_side": "table"}, "Config.model.doc_side='table' is set by --models"),
    ("train", {"objective": "local"}, "Config.train.objective='local' is set by --models"),
    ("train", {"sampler": "popularity"}, "Config.train.sampler='popularity' is set by --models"),
    ("docids", {"seed": 2}, "Config.docids.seed=2 is set by the corpus seed"),
])
def test_a_section_field_the_sweep_sets_per_point_is_refused(section, change, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        dataclasses.replace(SMOKE, **{section: dataclasses.replace(getattr(SMOKE, section), **change)})
