"""sim.metrics against ir_measures (the reference), hand-derived cases and a dense KL."""
import math

import hypothesis.strategies as st
import ir_measures
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings

from grdr.sim.metrics import StreamingKL, evaluate, parse_measure, ranking_metrics

MEASURES = ["Success@1", "Success@3", "P@1", "P@5", "R@2", "R@10", "RR", "RR@3", "RR@10",
            "AP", "AP@3", "nDCG", "nDCG@1", "nDCG@5"]
PYTREC_MEASURES = [m for m in MEASURES if not m.startswith("RR@")]  # RR@k is msmarco's


def reference(run, qrels, measures=MEASURES):
    """ir_measures per-query values {name: {qid: value}} and aggregates {name: value}."""
    parsed = [ir_measures.parse_measure(m) for m in measures]
    aggregate, metrics = ir_measures.calc(parsed, qrels, run)
    per_query = {m: {} for m in measures}
    for metric in metrics:
        per_query[str(metric.measure)][metric.query_id] = metric.value
    return per_query, {str(m): v for m, v in aggregate.items()}


def to_arrays(run, qrels, qids, num_docs):
    """Dense arrays of document indices (docid = str(index)) for the array API."""
    k = max([len(run.get(q, {})) for q in qids] + [1])
    r = max([len(qrels.get(q, {})) for q in qids] + [1])
    ranked = np.full((len(qids), k), -1)
    scores = np.zeros((len(qids), k))
    qdocs = np.full((len(qids), r), -1)
    gains = np.zeros((len(qids), r), np.int64)
    for m, qid in enumerate(qids):
        for j, (d, s) in enumerate(run.get(qid, {}).items()):
            ranked[m, j], scores[m, j] = int(d), s
        for j, (d, g) in enumerate(qrels.get(qid, {}).items()):
            qdocs[m, j], gains[m, j] = int(d), g
    # The array API must not depend on the input order: shuffle each row.
    rng = np.random.default_rng(len(qids) + num_docs)
    perm = np.argsort(rng.random(ranked.shape), axis=1)
    return np.take_along_axis(ranked, perm, 1), np.take_along_axis(scores, perm, 1), qdocs, gains


@st.composite
def runs_and_qrels(draw):
    """Runs with many tied scores, docids whose string order differs from numeric order,
    empty rankings, queries without relevant documents, and run-only / qrels-only queries."""
    num_docs = draw(st.integers(1, 25))
    docs = st.sampled_from([str(i) for i in range(num_docs)])
    num_queries = draw(st.integers(1, 6))
    tied = draw(st.booleans())
    score = st.sampled_from([0.0, 1.0, 2.0]) if tied else st.floats(-3, 3, width=32)
    run, qrels = {}, {}
    for m in range(num_queries):
        qid = f"q{m}"
        side = draw(st.sampled_from(["both", "both", "both", "run", "qrels"]))
        if side != "qrels":
            run[qid] = draw(st.dictionaries(docs, score, max_size=12))
        if side != "run":
            judged = draw(st.dictionaries(docs, st.sampled_from([-1, 0, 1, 1, 2, 3]), min_size=1, max_size=6))
            if max(judged.values()) < 0:  # see test_all_negative_judgments
                judged[next(iter(judged))] = 0
            qrels[qid] = judged
    return run, qrels, num_docs


@settings(max_examples=80, deadline=None)
@given(runs_and_qrels())
def test_evaluate_equals_ir_measures(case):
    run, qrels, _ = case
    ref_per_query, ref_mean = reference(run, qrels)
    ours_per_query = evaluate(qrels=qrels, run=run, measures=MEASURES, per_query=True)
    ours_mean = evaluate(qrels=qrels, run=run, measures=MEASURES)
    for name in MEASURES:
        assert ours_per_query[name] == pytest.approx(ref_per_query[name], abs=1e-12, nan_ok=True), name
        assert ours_mean[name] == pytest.approx(ref_mean[name], abs=1e-12, nan_ok=True), name


@settings(max_examples=80, deadline=None)
@given(runs_and_qrels())
def test_array_api_equals_ir_measures(case):
    run, qrels, num_docs = case
    qids = sorted(set(run) | set(qrels))
    arrays = to_arrays(run, qrels, qids, num_docs)
    ref_per_query, ref_mean = reference(run, qrels)
    ours_mean = ranking_metrics(*arrays, MEASURES)
    ours_per_query = ranking_metrics(*arrays, MEASURES, per_query=True)
    # Rows already sorted by score (as topk returns them) take a no-sort path: same values.
    ranked, scores, qdocs, gains = arrays
    by_score = np.argsort(np.where(ranked >= 0, -scores, np.inf), axis=1, kind="stable")
    presorted = ranking_metrics(np.take_along_axis(ranked, by_score, 1), np.take_along_axis(scores, by_score, 1),
                                qdocs, gains, MEASURES, per_query=True)
    for name in MEASURES:
        np.testing.assert_array_equal(presorted[name], ours_per_query[name])
    for name in MEASURES:
        assert ours_mean[name] == pytest.approx(ref_mean[name], abs=1e-12, nan_ok=True), name
        for m, qid in enumerate(qids):
            expected = ref_per_query[name].get(qid, math.nan)  # run-only queries: not averaged
            assert ours_per_query[name][m] == pytest.approx(expected, abs=1e-12, nan_ok=True), (name, qid)


@settings(max_examples=40, deadline=None)
@given(runs_and_qrels())
def test_average_over_run_equals_pytrec_eval_mean(case):
    """trec_eval without -c: the mean over the queries pytrec_eval itself returns."""
    run, qrels, num_docs = case
    names = {"Success@1": "success_1", "P@5": "P_5", "R@10": "recall_10", "RR": "recip_rank",
             "AP": "map", "nDCG@5": "ndcg_cut_5"}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(names.values()))
    raw = evaluator.evaluate(run)
    ours = evaluate(qrels=qrels, run=run, measures=list(names), average_over="run")
    qids = sorted(set(run) | set(qrels))
    ours_arrays = ranking_metrics(*to_arrays(run, qrels, qids, num_docs), list(names), average_over="run")
    for name, trec_name in names.items():
        expected = np.mean([v[trec_name] for v in raw.values()]) if raw else math.nan
        assert ours[name] == pytest.approx(expected, abs=1e-12, nan_ok=True), name
        # the array API cannot tell "in the run, empty" from "not in the run"
        nonempty = [q for q, v in raw.items() if run[q]]
        expected_arrays = np.mean([raw[q][trec_name] for q in nonempty]) if nonempty else math.nan
        assert ours_arrays[name] == pytest.approx(expected_arrays, abs=1e-12, nan_ok=True), name


@settings(max_examples=40, deadline=None)
@given(runs_and_qrels())
def test_average_over_all_counts_run_only_queries_as_zero(case):
    run, qrels, _ = case
    # ir_measures counts a qrels query whose only judgment is an unranked 0: the same thing.
    padded = {**{q: {"unranked": 0} for q in run}, **qrels}
    _, ref_mean = reference(run, padded)
    ours = evaluate(qrels=qrels, run=run, measures=MEASURES, average_over="all")
    for name in MEASURES:
        assert ours[name] == pytest.approx(ref_mean[name], abs=1e-12, nan_ok=True), name


def test_tie_rules_hand_derived():
    """Tied "10", "2", "9": trec_eval ranks 9, 2, 10; the msmarco RR@k ranks 10, 2, 9."""
    ranked = np.array([[10, 2, 9], [10, 2, 9], [10, 2, 9]])
    qdocs = np.array([[9], [10], [2]])
    out = ranking_metrics(ranked, np.ones((3, 3)), qdocs, np.ones((3, 1), np.int64),
                          ["RR", "RR@10", "Success@1"], per_query=True)
    np.testing.assert_allclose(out["RR"], [1, 1 / 3, 1 / 2])
    np.testing.assert_allclose(out["RR@10"], [1 / 3, 1, 1 / 2])
    np.testing.assert_allclose(out["Success@1"], [1, 0, 0])


def test_graded_gains_and_negative_judgments_hand_derived():
    # ranking b(-1), c(0), e(1), a(3), x(unjudged); judged d(2) never retrieved
    run = {"q": {"b": 5.0, "c": 4.0, "e": 3.0, "a": 2.0, "x": 1.5}}
    qrels = {"q": {"a": 3, "b": -1, "c": 0, "d": 2, "e": 1}}
    out = evaluate(qrels=qrels, run=run, measures=["nDCG", "nDCG@3", "AP", "P@5", "R@2", "RR", "AP@3"])
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert out["nDCG"] == pytest.approx((1 / math.log2(4) + 3 / math.log2(5)) / idcg)
    assert out["nDCG@3"] == pytest.approx((1 / math.log2(4)) / idcg)  # negative gain counts 0
    assert out["AP"] == pytest.approx((1 / 3 + 2 / 4) / 3)
    assert out["AP@3"] == pytest.approx((1 / 3) / 3)
    assert out["P@5"] == pytest.approx(2 / 5)
    assert out["R@2"] == 0.0
    assert out["RR"] == pytest.approx(1 / 3)


def test_all_negative_judgments():
    """A query judged only negatively has no relevant document: every measure is 0.

    Not compared with ir_measures: trec_eval's form_res_rels leaves num_rel_levels stale for
    such a query, and its ndcg then reads uninitialised gain levels and can loop for hours."""
    out = evaluate(qrels={"q": {"a": -1, "c": -2}}, run={"q": {"a": 1.0, "b": 0.5}},
                   measures=["nDCG", "AP", "RR", "P@1"])
    assert out == {"nDCG": 0.0, "AP": 0.0, "RR": 0.0, "P@1": 0.0}


def test_short_and_empty_rankings_and_queries_without_relevant():
    ranked = np.array([[3, -1, -1], [-1, -1, -1], [4, 5, -1], [1, 2, 3]])
    scores = np.array([[1.0, 0, 0], [0, 0, 0], [2.0, 1.0, 0], [3.0, 2.0, 1.0]])
    qdocs = np.array([[3, -1], [1, -1], [5, 7], [-1, -1]])  # last row: not in qrels
    gains = np.array([[1, 0], [1, 0], [0, -1], [0, 0]])
    out = ranking_metrics(ranked, scores, qdocs, gains, ["P@3", "nDCG@10", "R@100"], per_query=True)
    np.testing.assert_allclose(out["P@3"], [1 / 3, 0, 0, np.nan])
    np.testing.assert_allclose(out["nDCG@10"], [1, 0, 0, np.nan])
    mean = ranking_metrics(ranked, scores, qdocs, gains, ["P@3", "R@100"])
    assert mean == pytest.approx({"P@3": 1 / 9, "R@100": 1 / 3})
    assert ranking_metrics(ranked, scores, qdocs, gains, ["R@100"], average_over="run") == {"R@100": 0.5}
    assert ranking_metrics(ranked, scores, qdocs, gains, ["R@100"], average_over="all") == {"R@100": 0.25}


def test_docnos_order_ties_like_the_dict_api():
    docnos = ["zeta", "alpha", "mid", "beta"]
    rng = np.random.default_rng(0)
    ranked = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    scores = rng.integers(0, 2, size=ranked.shape).astype(float)
    qdocs, gains = np.array([[2, 0], [1, 3]]), np.array([[1, 2], [1, 1]])
    ours = ranking_metrics(ranked, scores, qdocs, gains, MEASURES, docnos=docnos)
    run = {f"q{m}": {docnos[d]: s for d, s in zip(ranked[m], scores[m])} for m in range(2)}
    qrels = {f"q{m}": {docnos[d]: int(g) for d, g in zip(qdocs[m], gains[m])} for m in range(2)}
    assert ours == pytest.approx(reference(run, qrels)[1], abs=1e-12)


def test_parse_and_errors():
    assert parse_measure(ir_measures.nDCG @ 10).name == "nDCG@10"
    assert parse_measure("AP").cutoff is None
    with pytest.raises(ValueError, match="unknown measure 'MRR@10'"):
        parse_measure("MRR@10")
    with pytest.raises(ValueError, match="cutoff"):
        parse_measure("P")
    with pytest.raises(ValueError, match="average_over"):
        evaluate(qrels={}, run={}, average_over="everything")
    with pytest.raises(ValueError, match="ranked_MxK"):
        ranking_metrics(np.array([[1, 1]]), np.zeros((1, 2)), np.array([[1]]), np.array([[1]]))
    with pytest.raises(ValueError, match="qrel_docs_MxR"):
        ranking_metrics(np.array([[1]]), np.zeros((1, 1)), np.array([[1, 1]]), np.array([[1, 1]]))


def dense_kl(log_p_MxN, scores_MxN):
    p = np.exp(log_p_MxN)
    log_model = scores_MxN - np.logaddexp.reduce(scores_MxN, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (log_p_MxN - log_model), 0.0)
    return terms.sum(axis=1)


@pytest.mark.parametrize("chunk", [1, 3, 7, 20])
def test_streaming_kl_equals_dense_kl_for_any_chunking(chunk):
    rng = np.random.default_rng(chunk)
    num_queries, num_docs = 4, 20
    logits = rng.normal(size=(num_queries, num_docs)) * 3
    logits[0, :5] = -np.inf  # p* = 0 on part of the corpus
    log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    scores = rng.normal(size=(num_queries, num_docs)) * 5 + 40  # large offset: cancellation test
    scores[1, [2, 11]] = -np.inf  # model excludes documents where p* = 0 would be needed
    log_p[1, [2, 11]] = -np.inf
    log_p[1] -= np.logaddexp.reduce(log_p[1])
    with jax.enable_x64(True):
        state = StreamingKL.init(num_queries, jnp.float64)
        for start in range(0, num_docs, chunk):
            state = jax.jit(StreamingKL.update)(state, log_p[:, start:start + chunk], scores[:, start:start + chunk])
        np.testing.assert_allclose(state.finalize(), dense_kl(log_p, scores), rtol=1e-10, atol=1e-12)


def test_streaming_kl_edge_cases_and_scan():
    with np.errstate(divide="ignore"):
        log_p = np.log(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]))
    scores = np.array([[-np.inf, 0.0, 0.0], [-np.inf, -np.inf, -np.inf], [0.0, 0.0, 0.0]])
    with jax.enable_x64(True):
        def body(state, chunk):
            return state.update(*chunk), None
        chunks = (log_p.T[:, :, None], scores.T[:, :, None])  # 3 chunks of one document
        state, _ = jax.lax.scan(body, StreamingKL.init(3, jnp.float64), chunks)
        kl = np.asarray(state.finalize())
    assert kl[0] == np.inf and kl[1] == np.inf  # p* on a -inf score; every score -inf
    uniform = np.log(1 / 3)
    assert kl[2] == pytest.approx(np.sum(np.exp(log_p[2]) * (log_p[2] - uniform)), abs=1e-12)


def test_evaluate_cannot_be_called_with_qrels_and_run_swapped():
    """Keyword-only, integer grades: the ir_measures order, the old (run, qrels) order and a
    swapped keyword call all fail loudly, while the keyword call agrees with ir_measures."""
    qrels = {"q1": {"d1": 2, "d3": 1}, "q2": {"d2": 1}}
    run = {"q1": {"d1": 0.5, "d2": 2.0, "d3": 1.5}, "q2": {"d2": 3.0, "d4": 1.0}}
    expected = ir_measures.calc_aggregate([ir_measures.nDCG @ 10, ir_measures.RR], qrels, run)
    ours = evaluate(qrels=qrels, run=run, measures=["nDCG@10", "RR"])
    assert ours == pytest.approx({str(m): v for m, v in expected.items()}, abs=1e-12)
    with pytest.raises(TypeError, match="keyword arguments only"):
        evaluate(["nDCG@10"], qrels, run)  # ir_measures.calc_aggregate's order
    with pytest.raises(TypeError, match="keyword arguments only"):
        evaluate(run, qrels)  # the order evaluate used to take
    with pytest.raises(ValueError, match=r"grade 0\.5 of document 'd1' for query 'q1'"):
        evaluate(qrels=run, run=qrels)
    with pytest.raises(ValueError, match=r"grade 0\.5 of document 'b' for query 'q'"):
        evaluate(qrels={"q": {"a": 1, "b": 0.5}}, run={"q": {"a": 1.0}})
    with pytest.raises(ValueError, match="grade 1.0 of document 'a'"):
        evaluate(qrels={"q": {"a": 1.0}}, run={"q": {"a": 1.0}})
    assert evaluate(qrels={"q": {"a": np.int64(1)}}, run={"q": {"a": 1.0}}, measures=["RR"]) == {"RR": 1.0}
