"""TREC run and qrels files: round trips, trec_eval order, and malformed lines."""
from pathlib import Path

import ir_measures
import numpy as np
import pytest
from ir_measures import RR, nDCG

from grdr import realdata
from grdr.realdata import (FormatError, read_collection, read_qrels, read_run,
                              run_from_topk, write_qrels, write_run)

FIXTURES = Path(realdata.__file__).parent / "fixtures"


def test_run_is_written_by_score_then_docid_descending(tmp_path):
    run = {"q2": {"a": 0.5, "b": 2.0, "c": 0.5, "d": -1.0}, "q1": {"x": 1.0}}
    write_run(tmp_path / "run.txt", run, tag="bm25")
    lines = (tmp_path / "run.txt").read_text().splitlines()
    assert [line.split() for line in lines] == [
        ["q2", "Q0", "b", "1", "2.0", "bm25"], ["q2", "Q0", "c", "2", "0.5", "bm25"],
        ["q2", "Q0", "a", "3", "0.5", "bm25"], ["q2", "Q0", "d", "4", "-1.0", "bm25"],
        ["q1", "Q0", "x", "1", "1.0", "bm25"]]
    assert read_run(tmp_path / "run.txt") == run
    # ir_measures reads our file as the run it was written from
    assert {(s.query_id, s.doc_id, s.score) for s in ir_measures.read_trec_run(
        str(tmp_path / "run.txt"))} == {(q, d, s) for q, r in run.items() for d, s in r.items()}


def test_scores_round_trip_exactly(tmp_path):
    scores = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    run = {"q": {f"d{i}": float(s) for i, s in enumerate(scores)}}
    write_run(tmp_path / "r", run, tag="t")
    assert read_run(tmp_path / "r") == run


def test_metrics_on_a_written_run_equal_those_on_the_dict(tmp_path):
    c = read_collection("msmarco", FIXTURES / "msmarco")
    rng = np.random.default_rng(1)
    scores_MxK = np.round(rng.random((c.n_queries, 20)), 1)  # rounding makes ties
    idx_MxK = np.stack([rng.choice(c.n_docs, 20, replace=False) for _ in range(c.n_queries)])
    run = run_from_topk(c.query_ids, c.doc_ids, idx_MxK, scores_MxK)
    write_run(tmp_path / "run", run, tag="rand")
    write_qrels(tmp_path / "qrels", c.qrels)
    measures = [nDCG @ 10, RR @ 10]
    from_files = ir_measures.calc_aggregate(
        measures, ir_measures.read_trec_qrels(str(tmp_path / "qrels")),
        ir_measures.read_trec_run(str(tmp_path / "run")))
    assert from_files == ir_measures.calc_aggregate(measures, c.qrels, run)


def test_qrels_round_trip_and_msmarco_file(tmp_path):
    c = read_collection("beir", FIXTURES / "beir")
    write_qrels(tmp_path / "q", c.qrels)
    assert read_qrels(tmp_path / "q") == c.qrels
    ms = read_collection("msmarco", FIXTURES / "msmarco")
    assert read_qrels(FIXTURES / "msmarco" / "qrels.dev.tsv") == ms.qrels


def test_run_from_topk_checks_shapes():
    run = run_from_topk(["q"], ["a", "b", "c"], np.array([[2, 0]]), np.array([[0.5, 0.25]]))
    assert run == {"q": {"c": 0.5, "a": 0.25}}
    with pytest.raises(ValueError, match="idx_MxK"):
        run_from_topk(["q"], ["a"], np.zeros((1, 2), int), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="query_ids"):
        run_from_topk(["q", "r"], ["a"], np.zeros((1, 1), int), np.zeros((1, 1)))


def test_ids_with_whitespace_and_bad_scores_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tag"):
        write_run(tmp_path / "r", {"q": {"a": 1.0}}, tag="my run")
    with pytest.raises(ValueError, match="document id"):
        write_run(tmp_path / "r", {"q": {"a b": 1.0}}, tag="t")
    with pytest.raises(ValueError, match="not finite"):
        write_run(tmp_path / "r", {"q": {"a": float("nan")}}, tag="t")
    with pytest.raises(ValueError, match="query id"):
        write_qrels(tmp_path / "q", {"": {"a": 1}})
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("line,found", [
    ("q Q0 d 1 0.5", "5 whitespace-separated columns"),
    ("q Q0 d one 0.5 t", "rank 'one'"),
    ("q Q0 d 1 high t", "score 'high'"),
    ("q Q0 d 1 nan t", "score 'nan'"),
    ("q Q0 a 2 0.1 t", "document 'a' again for query 'q' (first on line 1)"),
])
def test_malformed_run_lines(tmp_path, line, found):
    (tmp_path / "run").write_text(f"q Q0 a 1 0.9 t\n{line}\n")
    with pytest.raises(FormatError, match="run:2: found ") as info:
        read_run(tmp_path / "run")
    assert found in str(info.value) and info.value.line == 2


def test_trec_id_escapes_whitespace_one_to_one():
    from urllib.parse import unquote

    from hypothesis import given, strategies as st

    from grdr.realdata.trec import trec_id

    @given(st.text(min_size=1))
    def check(value):
        escaped = trec_id(value)
        assert escaped and not any(c.isspace() for c in escaped)
        assert unquote(escaped, errors="strict") == value

    check()
    assert trec_id("Geneva Durben") == "Geneva%20Durben" and trec_id("7%") == "7%25"
    assert trec_id("D0c-1_x") == "D0c-1_x"  # the ids of MS MARCO, NQ320k and BEIR pass unchanged
