"""`grdr real` (cmd_real) on each format's fixture: records, TREC runs, the figure, reruns, and
the message of a malformed collection."""
import json
import shutil
from pathlib import Path

import dataclasses

import ir_measures
import numpy as np
import pandas as pd
import pytest

from grdr import realdata
from grdr.experiments import real_scaling
from grdr.experiments.sweep import store
from grdr import cli
from grdr.realdata import read_qrels, read_run, write_run
from grdr.realdata.trec import trec_id
from grdr.cli import cmd_real

FIXTURES = Path(realdata.__file__).parent / "fixtures"
# BM25 alone (no training) unless a test names a model; the fixtures' judged documents plus 40
# training pairs fit in 100 documents.
FAST = dict(preset="smoke", models=(), max_train_pairs=40, progress=False)


def check_files_against_ir_measures(folder, r):
    """The record's run and qrels files parse, and ir_measures on them gives its metrics."""
    measures = [ir_measures.parse_measure(m) for m in real_scaling.MEASURES]
    run = read_run(folder / r["train"]["run_file"])
    expected = ir_measures.calc_aggregate(measures, read_qrels(folder / r["train"]["qrels_file"]), run)
    assert len(run) == r["config"]["n_queries"]
    for m in measures:
        assert r["metrics"][str(m)] == pytest.approx(expected[m], abs=1e-12), (r["config"]["model"], m)


def _records(out):
    return [json.loads(p.read_text()) for p in sorted((out / "real_scaling").glob("*.json"))]


@pytest.mark.parametrize("fmt, name, sizes", [("msmarco", "msmarco", (100, 285)), ("nq320k", "nq320k", (100, 200))])
def test_each_format_gives_records_runs_and_a_figure(tmp_path, fmt, name, sizes):
    assert cmd_real(fmt, FIXTURES / name, sizes=sizes, out=tmp_path, **FAST) == 0
    records = _records(tmp_path)
    assert sorted(r["config"]["n_docs"] for r in records) == list(sizes)
    for r in records:
        c = r["config"]
        assert (c["format"], c["model"], c["train_on"], c["split"]) == (fmt, "bm25", "train", "dev")
        run = read_run(tmp_path / "real_scaling" / r["train"]["run_file"])
        assert len(run) == c["n_queries"] and set(r["metrics"]) >= {"Success@1", "RR@10", "nDCG@10"}
    assert (tmp_path / "figures" / "real_scaling.png").stat().st_size > 0


def test_a_trained_model_on_beir_and_the_rerun_that_skips_it(tmp_path, capsys):
    args = dict(FAST, models=("dr_global",), seeds=(0, 1), sizes=(275,),
                train=dataclasses.replace(real_scaling.PRESETS["smoke"].train, steps=5))
    assert cmd_real("beir", FIXTURES / "beir", out=tmp_path, **args) == 0
    records = _records(tmp_path)
    assert sorted((r["config"]["model"], r["config"]["seed"]) for r in records) == [
        ("bm25", 0), ("dr_global", 0), ("dr_global", 1)]
    assert {r["config"]["train_on"] for r in records} == {"train"}
    assert {r["config"]["steps"] for r in records if r["config"]["model"] == "dr_global"} == {5}
    for r in records:
        check_files_against_ir_measures(tmp_path / "real_scaling", r)
    capsys.readouterr()
    assert cmd_real("beir", FIXTURES / "beir", out=tmp_path, **args) == 0
    assert f"0 runs done, {len(records)} already stored" in capsys.readouterr().out
    assert len(_records(tmp_path)) == len(records)
    # the paired tests compare the per-query mean over the two seeds: its mean is the seeds' mean
    table = pd.read_csv(tmp_path / "real_scaling" / "significance.csv")
    row = table[(table["system_a"] == "DR, global") & (table["system_b"] == "BM25")
                & (table["measure"] == "nDCG@10")].iloc[0]
    assert (row["seeds_a"], row["seeds_b"], row["n_docs"]) == (2, 1, 275)
    seeds = [r["metrics"]["nDCG@10"] for r in records if r["config"]["model"] == "dr_global"]
    assert row["mean_a"] == pytest.approx(np.mean(seeds), abs=1e-12)


def test_the_command_line_parses_into_cmd_real(tmp_path):
    argv = ["real", "--format", "beir", "--path", str(FIXTURES / "limit-small"), "--out", str(tmp_path),
            "--preset", "smoke", "--models", "--no-progress"]
    assert cli.main(argv) == 0
    (record,) = _records(tmp_path)
    assert record["config"]["collection"] == "limit-small" and record["config"]["train_on"] == "test"
    assert record["metrics"]["R@2"] > 0.95  # BM25 on LIMIT-small
    assert not store.load(tmp_path, "real_scaling").empty


def test_a_malformed_collection_is_reported_with_file_and_line(tmp_path, capsys):
    broken = tmp_path / "msmarco"
    shutil.copytree(FIXTURES / "msmarco", broken)
    lines = (broken / "qrels.dev.tsv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("\t1\n", "\tyes\n").replace(" 1\n", " yes\n")
    (broken / "qrels.dev.tsv").write_text("".join(lines))
    assert cmd_real("msmarco", broken, out=tmp_path / "out", **FAST) == 1
    err = capsys.readouterr().err
    assert f"{broken / 'qrels.dev.tsv'}:4: found" in err and "yes" in err
    assert not (tmp_path / "out" / "real_scaling").exists()


def test_sizes_below_the_judged_documents_are_refused(tmp_path, capsys):
    assert cmd_real("msmarco", FIXTURES / "msmarco", sizes=(10,), out=tmp_path, **FAST) == 1
    assert "sizes: 10 is below the" in capsys.readouterr().err


def _limit_runs(folder: Path) -> dict:
    """A perfect and a shuffled TREC run of LIMIT-small's queries, made from its qrels."""
    qrels = {}
    for line in (FIXTURES / "limit-small" / "qrels.jsonl").read_text().splitlines():
        r = json.loads(line)
        qrels.setdefault(trec_id(r["query-id"]), {})[trec_id(r["corpus-id"])] = int(r["score"])
    pool = sorted({d for judged in qrels.values() for d in judged})
    rng = np.random.default_rng(1)
    runs = {"perfect": {q: {d: 2.0 - i for i, d in enumerate(sorted(j))} for q, j in qrels.items()},
            "shuffled": {q: {d: 5.0 - i for i, d in enumerate(rng.permutation(pool)[:5])} for q in qrels}}
    paths = {}
    for name, run in runs.items():
        paths[name] = folder / f"{name}.trec"
        write_run(paths[name], run, tag=name)
    return paths


def test_baseline_runs_join_the_metrics_the_tests_the_figure_and_the_report(tmp_path, capsys):
    paths = _limit_runs(tmp_path)
    argv = ["real", "--format", "beir", "--path", str(FIXTURES / "limit-small"), "--out", str(tmp_path / "out"),
            "--preset", "smoke", "--models", "--no-progress",
            "--baseline-run", f"perfect={paths['perfect']}", "--baseline-run", f"shuffled={paths['shuffled']}"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    records = {r["config"]["model"]: r for r in _records(tmp_path / "out")}
    assert set(records) == {"bm25", "run:perfect", "run:shuffled"}
    for r in records.values():
        check_files_against_ir_measures(tmp_path / "out" / "real_scaling", r)
    assert records["run:perfect"]["metrics"]["nDCG@10"] == 1.0
    table = pd.read_csv(tmp_path / "out" / "real_scaling" / "significance.csv")
    assert {("run:perfect", "BM25"), ("run:shuffled", "BM25"), ("run:perfect", "run:shuffled")} <= set(
        zip(table["system_a"], table["system_b"]))
    assert "| run:shuffled | BM25 |" in printed and "Holm p" in printed
    for suffix in (".png", ".pdf"):
        assert (tmp_path / "out" / "figures" / f"real_scaling{suffix}").stat().st_size > 0


@pytest.mark.parametrize("entry, says", [
    ("perfect", "--baseline-run perfect: expected NAME=PATH"),
    ("=RUN", "expected NAME=PATH"),
    ("perfect=MISSING", "no such file"),
    ("broken=BROKEN", "broken.trec:3: found rank 'third'; expected an integer rank"),
    ("twice=TWICE", "twice.trec:2: found document"),
])
def test_a_bad_baseline_run_is_refused_in_one_line(tmp_path, capsys, entry, says):
    paths = _limit_runs(tmp_path)
    lines = paths["perfect"].read_text().splitlines(keepends=True)
    (tmp_path / "broken.trec").write_text("".join(lines[:2] + [lines[2].replace(" 1 ", " third ", 1)] + lines[3:]))
    (tmp_path / "twice.trec").write_text(lines[0] + lines[0])
    files = {"RUN": paths["perfect"], "MISSING": tmp_path / "missing.trec", "BROKEN": tmp_path / "broken.trec",
             "TWICE": tmp_path / "twice.trec"}
    entry = next((entry.replace(k, str(v)) for k, v in files.items() if entry.endswith(k)), entry)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["real", "--format", "beir", "--path", str(FIXTURES / "limit-small"), "--out", str(tmp_path / "out"),
                  "--preset", "smoke", "--baseline-run", entry])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("grdr real: ") and says in err, err
    assert not (tmp_path / "out" / "real_scaling").exists()


def test_the_sections_default_to_the_presets_and_each_flag_changes_one_field():
    """`grdr real --preset P` parses the models, the training and the docids as real_scaling's Config
    sections at P's values; a flag changes one field, and DR's scorer comes with its own section."""
    smoke = real_scaling.PRESETS["smoke"]
    call = cli.parse(["real", "--format", "beir", "--path", str(FIXTURES / "limit-small"), "--preset", "smoke",
                      "--train.steps", "7", "--model.dim", "5", "--model.scorer", "maxsim",
                      "--model.maxsim.vectors", "3", "--docids.vocab", "4"])
    got = call.keywords
    assert got["train"] == dataclasses.replace(smoke.train, steps=7)
    assert (got["model"].dim, got["model"].hidden, got["model"].scorer, got["model"].maxsim.vectors) == (
        5, smoke.model.hidden, "maxsim", 3)
    assert got["docids"] == dataclasses.replace(smoke.docids, vocab=4)
    quick = cli.parse(["real", "--format", "beir", "--path", str(FIXTURES / "limit-small")]).keywords
    assert (quick["model"], quick["train"]) == (real_scaling.PRESETS["quick"].model, real_scaling.PRESETS["quick"].train)
    assert smoke.train.steps != real_scaling.PRESETS["quick"].train.steps  # so that the two defaults are told apart
