"""Ranking metrics that agree with ir_measures, and the streamed KL to the true posterior.

docs/design.md, sections 2-3. Two entry points compute the same numbers:
`ranking_metrics` on arrays (simulation: document indices, M up to ~1e4, K up to ~1000) and
`evaluate` on ir_measures-style dicts (real data). Names follow ir_measures spelling:
Success@k, P@k, R@k, RR, RR@k, AP, AP@k, nDCG, nDCG@k (relevance level 1, linear gains).
Every value equals what `ir_measures.calc_aggregate` / `ir_measures.iter_calc` returns on the
same run (ir-measures 0.4.3, default pipeline), found by experiment and held by the tests:

Order within a ranking. A run is a set of scored documents; the order is recomputed from the
scores, never taken from the input order. Equal scores are ordered by docno as a string:
- RR, Success, P, R, AP, nDCG come from pytrec_eval (trec_eval), which puts the *larger*
  docno first (strcmp descending): among tied "10", "2", "9" the order is 9, 2, 10.
- RR@k comes from ir_measures' msmarco provider (pytrec_eval has no RR cutoff), which sorts
  by (-score, docno) and so puts the *smaller* docno first: 10, 2, 9.
So one run can rank a tied document differently for RR and RR@k; we reproduce both. In the
array API the docno of document index i is str(i) unless `docnos` is given.

Gains. A document is relevant when its judgment is >= 1; judgments 0 and negative are
non-relevant (trec_eval reads a negative judgment as "in the pool, unjudged"). nDCG uses the
judgment as a linear gain with negatives counted as 0, discount 1/log2(rank + 1); the ideal
ranking holds every positively judged document (nDCG@k cuts both the run and the ideal at k;
plain nDCG does not cut the ideal at the run length). A query judged only negatively scores
0 on every measure; pytrec_eval itself can hang on such a query (its form_res_rels leaves
num_rel_levels stale, and ndcg then walks uninitialised gain levels).
P@k divides by k even when fewer than k documents are ranked. R@k, AP, AP@k divide by the
number of relevant documents (0 when there are none).

Which queries are averaged (`average_over`):
- "qrels" (default, = ir_measures calc_aggregate, = trec_eval -c): every query that has
  qrels, even one whose judgments are all 0 or negative; a query missing from the run (or
  with an empty ranking) scores 0; run queries absent from qrels are ignored. In the dict
  API that is every key of qrels (even one mapping to no judgment, as ir_measures does); in
  the array API, every row holding at least one judged document.
- "run" (= trec_eval without -c, pytrec_eval's own output): queries that have qrels and are
  in the run (array API: at least one ranked document).
- "all": every query of either side (every row); a missing side scores 0.
Per-query results hold NaN (arrays) or leave out (dicts) the queries not averaged; the mean
over no query is NaN, as in ir_measures.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DEFAULT_MEASURES", "parse_measure", "ranking_metrics", "evaluate", "StreamingKL"]

DEFAULT_MEASURES = ("Success@1", "RR@10", "nDCG@10", "R@100")
_AVERAGE_OVER = ("qrels", "run", "all")
_MEASURE_RE = re.compile(r"^(Success|RR|nDCG|R|P|AP)(?:@([0-9]+))?$")
_NEEDS_CUTOFF = ("Success", "R", "P")


@dataclasses.dataclass(frozen=True)
class Measure:
    """A parsed ir_measures name: family (Success, RR, ...) and cutoff (None = whole ranking)."""

    family: str
    cutoff: int | None

    def __post_init__(self):
        if self.family in _NEEDS_CUTOFF and self.cutoff is None:
            raise ValueError(f"cutoff: {self.family} needs one, e.g. {self.family}@10")
        if self.cutoff is not None and self.cutoff < 1:
            raise ValueError(f"cutoff: must be >= 1, got {self.cutoff}")

    @property
    def name(self) -> str:
        return self.family if self.cutoff is None else f"{self.family}@{self.cutoff}"


def parse_measure(measure) -> Measure:
    """Parses an ir_measures name ("nDCG@10") or measure object (`ir_measures.nDCG@10`).

    >>> parse_measure("RR@10")
    Measure(family='RR', cutoff=10)
    """
    text = str(measure)
    match = _MEASURE_RE.match(text)
    if match is None:
        raise ValueError(
            f"measures: unknown measure {text!r}; supported (ir_measures spelling): "
            "Success@k, P@k, R@k, RR, RR@k, AP, AP@k, nDCG, nDCG@k"
        )
    family, cutoff = match.groups()
    return Measure(family, None if cutoff is None else int(cutoff))


# Lexicographic order of str(i) for 0 <= i < 10**_KEY_DIGITS as an int64 key: pad the digits
# on the right to a fixed width, then let the shorter string win ("1" < "10" < "100" < "11").
_KEY_DIGITS = 17
_POW10 = 10 ** np.arange(_KEY_DIGITS + 1, dtype=np.int64)


def _decimal_docno_key(index: np.ndarray) -> np.ndarray:
    if index.size and int(index.max()) >= 10**_KEY_DIGITS:
        raise ValueError(f"ranked_MxK: document indices must be < 1e{_KEY_DIGITS} without docnos")
    digits = np.maximum(np.searchsorted(_POW10, index, side="right"), 1)
    padded = index * _POW10[_KEY_DIGITS - digits]
    return padded * (_KEY_DIGITS + 1) + digits


def _order(scores_MxK, valid_MxK, key_MxK, larger_docno_first: bool) -> np.ndarray:
    """Per-row permutation into ranking order: score descending, ties by docno, padding last."""
    neg_scores_MxK = np.where(valid_MxK, -scores_MxK, np.inf)
    tie_MxK = -key_MxK if larger_docno_first else key_MxK
    order_MxK = np.broadcast_to(np.arange(scores_MxK.shape[1]), scores_MxK.shape).copy()
    # Rankings from topk usually arrive in order already: sort only the rows that are not.
    a, b = neg_scores_MxK[:, :-1], neg_scores_MxK[:, 1:]
    in_order = ~valid_MxK[:, 1:] | (valid_MxK[:, :-1] & ((a < b) | ((a == b) & (tie_MxK[:, :-1] < tie_MxK[:, 1:]))))
    rows = np.flatnonzero(~in_order.all(axis=1))
    if rows.size:
        # lexsort: last key is primary; padding (-1) goes after every real document.
        keys = (tie_MxK[rows], neg_scores_MxK[rows], ~valid_MxK[rows])
        order_MxK[rows] = np.lexsort(keys, axis=-1)
    return order_MxK


def _lookup_gains(ranked_MxK, qrel_docs_MxR, qrel_gains_MxR) -> np.ndarray:
    """Judgment of every ranked document (0 when unjudged), by one flat searchsorted."""
    num_queries = ranked_MxK.shape[0]
    stride = int(max(ranked_MxK.max(initial=0), qrel_docs_MxR.max(initial=0))) + 2
    row_M1 = np.arange(num_queries, dtype=np.int64)[:, None] * stride
    judged_MxR = qrel_docs_MxR >= 0
    flat_keys = (row_M1 + qrel_docs_MxR)[judged_MxR]
    flat_gains = qrel_gains_MxR[judged_MxR]
    order = np.argsort(flat_keys, kind="stable")
    flat_keys, flat_gains = flat_keys[order], flat_gains[order]
    if np.any(flat_keys[1:] == flat_keys[:-1]):
        raise ValueError("qrel_docs_MxR: a document is judged twice for one query")
    query_MxK = row_M1 + ranked_MxK
    pos_MxK = np.minimum(np.searchsorted(flat_keys, query_MxK), max(flat_keys.size - 1, 0))
    if flat_keys.size == 0:
        return np.zeros(ranked_MxK.shape, np.int64)
    hit_MxK = (flat_keys[pos_MxK] == query_MxK) & (ranked_MxK >= 0)
    return np.where(hit_MxK, flat_gains[pos_MxK], 0)


def _first_hit_rr(rel_MxK: np.ndarray) -> np.ndarray:
    first_M = np.argmax(rel_MxK, axis=1)
    return np.where(rel_MxK.any(axis=1), 1.0 / (first_M + 1.0), 0.0)


def _per_query(measures, ranked_MxK, scores_MxK, qrel_docs_MxR, qrel_gains_MxR, key_MxK):
    """Per-query values of every measure for every row (float64, shape M)."""
    valid_MxK = ranked_MxK >= 0
    if np.any(np.isnan(scores_MxK) & valid_MxK):
        raise ValueError("scores_MxK: NaN score for a ranked document")
    _check_unique_rows(ranked_MxK, "ranked_MxK")
    gains_MxK = _lookup_gains(ranked_MxK, qrel_docs_MxR, qrel_gains_MxR)
    judged_MxR = qrel_docs_MxR >= 0
    num_rel_M = np.sum(judged_MxR & (qrel_gains_MxR >= 1), axis=1)
    safe_rel_M = np.maximum(num_rel_M, 1)
    trec = np.take_along_axis(gains_MxK, _order(scores_MxK, valid_MxK, key_MxK, True), axis=1)
    rel_MxK = trec >= 1
    ranks_K = np.arange(1, ranked_MxK.shape[1] + 1, dtype=np.float64)
    discount_K = 1.0 / np.log2(ranks_K + 1.0)
    ideal_MxR = -np.sort(-np.where(judged_MxR, np.maximum(qrel_gains_MxR, 0), 0), axis=1)
    discount_R = 1.0 / np.log2(np.arange(2, ideal_MxR.shape[1] + 2, dtype=np.float64))
    out = {}
    for measure in measures:
        cut = measure.cutoff
        top_MxK = rel_MxK[:, :cut]
        if measure.family == "Success":
            value = top_MxK.any(axis=1).astype(np.float64)
        elif measure.family == "P":
            value = top_MxK.sum(axis=1) / cut
        elif measure.family == "R":
            value = np.where(num_rel_M > 0, top_MxK.sum(axis=1) / safe_rel_M, 0.0)
        elif measure.family == "RR" and cut is None:
            value = _first_hit_rr(rel_MxK)
        elif measure.family == "RR":
            msmarco_order = _order(scores_MxK, valid_MxK, key_MxK, False)
            value = _first_hit_rr(np.take_along_axis(gains_MxK, msmarco_order, axis=1)[:, :cut] >= 1)
        elif measure.family == "AP":
            precision_MxK = np.cumsum(top_MxK, axis=1) / ranks_K[: top_MxK.shape[1]]
            value = np.where(top_MxK, precision_MxK, 0.0).sum(axis=1) / safe_rel_M
        else:  # nDCG
            dcg_M = (np.maximum(trec[:, :cut], 0) * discount_K[:cut]).sum(axis=1)
            idcg_M = (ideal_MxR[:, :cut] * discount_R[:cut]).sum(axis=1)
            value = np.where(idcg_M > 0, dcg_M / np.where(idcg_M > 0, idcg_M, 1.0), 0.0)
        out[measure.name] = value
    return out


def _check_unique_rows(index_MxK: np.ndarray, field: str):
    sorted_MxK = np.sort(index_MxK, axis=1)
    if np.any((sorted_MxK[:, 1:] == sorted_MxK[:, :-1]) & (sorted_MxK[:, 1:] >= 0)):
        raise ValueError(f"{field}: a document appears twice in one query's ranking")


def _aggregate(values, include_M, per_query):
    if per_query:
        return {name: np.where(include_M, v, np.nan) for name, v in values.items()}
    count = int(include_M.sum())
    if count == 0:  # as ir_measures: the mean of no queries is NaN
        return {name: float("nan") for name in values}
    return {name: float(np.where(include_M, v, 0.0).sum() / count) for name, v in values.items()}


def ranking_metrics(
    ranked_MxK,
    scores_MxK,
    qrel_docs_MxR,
    qrel_gains_MxR,
    measures: Sequence = DEFAULT_MEASURES,
    per_query: bool = False,
    *,
    docnos: Sequence[str] | None = None,
    average_over: str = "qrels",
) -> dict[str, float] | dict[str, np.ndarray]:
    """ir_measures-equal metrics of M ranked lists of document indices.

    Args:
      ranked_MxK: document indices, -1 = padding (a shorter or empty ranking). Order is
        ignored: the ranking is recomputed from scores with the tie rules of the module doc.
      scores_MxK: their scores (compared in float64).
      qrel_docs_MxR: judged document indices per query, -1 = padding.
      qrel_gains_MxR: integer judgments (>= 1 relevant; 0 or negative non-relevant).
      measures: ir_measures names or measure objects.
      per_query: return per-query arrays (NaN for queries not averaged) instead of means.
      docnos: docno string of each document index, used only to order tied scores;
        default str(index).
      average_over: "qrels" (default, ir_measures), "run" or "all"; see the module doc.

    Returns:
      dict name -> mean over the averaged queries (NaN when there are none), or per-query array.

    >>> import numpy as np
    >>> ranking_metrics(np.array([[2, 9, 10]]), np.ones((1, 3)), np.array([[9]]),
    ...                 np.array([[1]]), ["RR", "RR@10"])  # tie: trec_eval 9, 2, 10; msmarco 10, 2, 9
    {'RR': 1.0, 'RR@10': 0.333...}
    """
    parsed = [parse_measure(m) for m in measures]
    if average_over not in _AVERAGE_OVER:
        raise ValueError(f"average_over: must be one of {_AVERAGE_OVER}, got {average_over!r}")
    ranked_MxK = np.asarray(ranked_MxK, dtype=np.int64)
    scores_MxK = np.asarray(scores_MxK, dtype=np.float64)
    qrel_docs_MxR = np.asarray(qrel_docs_MxR, dtype=np.int64)
    qrel_gains_MxR = np.asarray(qrel_gains_MxR)
    if ranked_MxK.ndim != 2 or scores_MxK.shape != ranked_MxK.shape:
        raise ValueError(f"scores_MxK: shape {scores_MxK.shape} must equal ranked_MxK {ranked_MxK.shape}")
    if qrel_docs_MxR.ndim != 2 or qrel_docs_MxR.shape[0] != ranked_MxK.shape[0]:
        raise ValueError(f"qrel_docs_MxR: shape {qrel_docs_MxR.shape} needs {ranked_MxK.shape[0]} rows")
    if qrel_gains_MxR.shape != qrel_docs_MxR.shape or not np.issubdtype(qrel_gains_MxR.dtype, np.integer):
        raise ValueError("qrel_gains_MxR: must be integers shaped like qrel_docs_MxR")
    if docnos is None:
        key_MxK = _decimal_docno_key(np.maximum(ranked_MxK, 0))
    else:
        docnos = np.asarray(docnos, dtype=str)
        rank_N = np.empty(docnos.shape[0], np.int64)
        rank_N[np.argsort(docnos, kind="stable")] = np.arange(docnos.shape[0])
        key_MxK = rank_N[np.maximum(ranked_MxK, 0)]
    values = _per_query(parsed, ranked_MxK, scores_MxK, qrel_docs_MxR, qrel_gains_MxR.astype(np.int64), key_MxK)
    has_qrels_M = np.any(qrel_docs_MxR >= 0, axis=1)
    include_M = {
        "qrels": has_qrels_M,
        "run": has_qrels_M & np.any(ranked_MxK >= 0, axis=1),
        "all": np.ones_like(has_qrels_M),
    }[average_over]
    return _aggregate(values, include_M, per_query)


def evaluate(
    *args,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    run: Mapping[str, Mapping[str, float]] | None = None,
    measures: Sequence = DEFAULT_MEASURES,
    per_query: bool = False,
    average_over: str = "qrels",
) -> dict[str, float] | dict[str, dict[str, float]]:
    """`ranking_metrics` on ir_measures-style dicts {qid: {docid: rel}} and {qid: {docid: score}}.

    Arguments are keyword-only: ir_measures takes `calc_aggregate(measures, qrels, run)`, and a
    positional (run, qrels) order would read one for the other without a word. Grades must be
    integers (as pytrec_eval requires); a float such as a run's score in the qrels is an error.

    Args:
      qrels: query id -> document id -> integer relevance grade.
      run: query id -> document id -> score.
      measures: ir_measures names ("nDCG@10") or measure objects.
      per_query: return each averaged query's value instead of the mean.
      average_over: "qrels", "run" or "all" (module docstring).

    Returns:
      dict name -> mean over the averaged queries, or name -> {qid: value} for those queries.

    Raises:
      TypeError: positional arguments, or qrels or run missing.
      ValueError: a grade that is not an integer, naming its query and document.

    >>> evaluate(qrels={"q": {"d2": 1}}, run={"q": {"d1": 2.0, "d2": 1.0}}, measures=["RR"])
    {'RR': 0.5}
    """
    if args:
        raise TypeError(f"evaluate() takes keyword arguments only, got {len(args)} positional: call "
                        "evaluate(qrels=..., run=..., measures=...) (ir_measures' order is "
                        "calc_aggregate(measures, qrels, run); a positional order is easy to swap)")
    if qrels is None or run is None:
        raise TypeError("evaluate() needs both qrels= and run=")
    for qid, judged in qrels.items():
        for docid, grade in judged.items():
            if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)):
                raise ValueError(f"qrels: grade {grade!r} of document {docid!r} for query {qid!r} is "
                                 "not an integer (relevance grades are integers; were qrels and run swapped?)")
    if average_over not in _AVERAGE_OVER:
        raise ValueError(f"average_over: must be one of {_AVERAGE_OVER}, got {average_over!r}")
    if average_over == "qrels":
        qids = list(qrels)
    elif average_over == "run":
        qids = [qid for qid in qrels if qid in run]
    else:
        qids = list(dict.fromkeys([*qrels, *run]))
    rankings = [run.get(qid, {}) for qid in qids]
    judgments = [qrels.get(qid, {}) for qid in qids]
    # Index documents in docno order, so that the index itself is the tie-break key.
    docids = sorted({str(d) for r in rankings for d in r} | {str(d) for j in judgments for d in j})
    index = {docid: i for i, docid in enumerate(docids)}
    num_ranked = max([len(r) for r in rankings], default=0)
    num_judged = max([len(j) for j in judgments], default=0)
    ranked_MxK = np.full((len(qids), max(num_ranked, 1)), -1, np.int64)
    scores_MxK = np.zeros(ranked_MxK.shape)
    qrel_docs_MxR = np.full((len(qids), max(num_judged, 1)), -1, np.int64)
    qrel_gains_MxR = np.zeros(qrel_docs_MxR.shape, np.int64)
    for m, (ranking, judged) in enumerate(zip(rankings, judgments)):
        ranked_MxK[m, : len(ranking)] = [index[str(d)] for d in ranking]
        scores_MxK[m, : len(ranking)] = [float(s) for s in ranking.values()]
        qrel_docs_MxR[m, : len(judged)] = [index[str(d)] for d in judged]
        qrel_gains_MxR[m, : len(judged)] = [int(g) for g in judged.values()]
    parsed = [parse_measure(m) for m in measures]
    values = _per_query(parsed, ranked_MxK, scores_MxK, qrel_docs_MxR, qrel_gains_MxR, ranked_MxK)
    if per_query:
        return {name: dict(zip(qids, map(float, v))) for name, v in values.items()}
    return _aggregate(values, np.ones(len(qids), bool), per_query=False)


class StreamingKL(NamedTuple):
    """KL(p* || softmax(s)) per query, accumulated over document chunks (no M x N matrix).

    KL = sum_d p*(log p* - s) + logsumexp_d s. Both sums are kept relative to the running
    maximum score m (an online logsumexp), which avoids the cancellation of two O(|s|) terms:
      rel_M = sum p* (log p* - (s - m)),  mass_M = sum p*,  sumexp_M = sum exp(s - m),
    so KL = rel + log(sumexp) + m (1 - mass). p* = 0 contributes 0 (0 log 0 = 0); p* > 0 on a
    document scored -inf makes KL = +inf. A pytree: usable as a `lax.scan` carry, jit-friendly.

    >>> import jax.numpy as jnp
    >>> kl = StreamingKL.init(1).update(jnp.log(jnp.array([[0.5, 0.5]])), jnp.zeros((1, 2)))
    >>> float(kl.finalize()[0])
    0.0
    """

    max_M: jax.Array
    sumexp_M: jax.Array
    rel_M: jax.Array
    mass_M: jax.Array

    @classmethod
    def init(cls, num_queries: int, dtype=jnp.float32) -> StreamingKL:
        """The empty accumulator for M queries."""
        zeros_M = jnp.zeros((num_queries,), dtype)
        return cls(jnp.full((num_queries,), -jnp.inf, dtype), zeros_M, zeros_M, zeros_M)

    def update(self, log_p_true_MxC: jax.Array, scores_MxC: jax.Array) -> StreamingKL:
        """Adds one chunk of C documents: log p*(d|q) (may be -inf) and model scores s(q, d)."""
        new_max_M = jnp.maximum(self.max_M, jnp.max(scores_MxC, axis=1))
        finite_M = jnp.isfinite(new_max_M)
        anchor_M = jnp.where(finite_M, new_max_M, 0.0)
        # Old terms were relative to max_M; shifting to new_max_M adds (new - old) * mass.
        shift_M = jnp.where(jnp.isfinite(self.max_M), new_max_M - self.max_M, 0.0)
        rel_M = self.rel_M + jnp.where(self.mass_M > 0, shift_M * self.mass_M, 0.0)
        sumexp_M = self.sumexp_M * jnp.exp(jnp.where(jnp.isfinite(self.max_M), -shift_M, -jnp.inf))
        centred_MxC = scores_MxC - anchor_M[:, None]
        p_MxC = jnp.exp(log_p_true_MxC)
        support_MxC = p_MxC > 0
        terms_MxC = jnp.where(support_MxC, p_MxC * (log_p_true_MxC - centred_MxC), 0.0)
        return StreamingKL(
            max_M=new_max_M,
            sumexp_M=sumexp_M + jnp.sum(jnp.exp(centred_MxC), axis=1),
            rel_M=rel_M + jnp.sum(terms_MxC, axis=1),
            mass_M=self.mass_M + jnp.sum(p_MxC, axis=1),
        )

    def finalize(self) -> jax.Array:
        """KL per query, shape (M,); +inf where p* has mass on documents the model excludes."""
        kl_M = self.rel_M + jnp.log(self.sumexp_M) + self.max_M * (1.0 - self.mass_M)
        return jnp.where(jnp.isfinite(self.max_M), kl_M, jnp.inf)
