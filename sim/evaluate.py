"""Evaluation on a synthetic corpus: exact retrieval, ir_measures metrics, and KL to the truth.

DR and AtomicGR rank by exact top-k over all N documents (chunked, by the model's scorer, sim.scorers); SeqGR by trie-constrained
beam search. `kl_true` is the mean over test queries of KL(p*(.|q) || p_model(.|q)), computed in
document chunks (DR, AtomicGR) or query blocks (SeqGR), never as a full M x N matrix.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from sim.beam import all_doc_log_probs, beam_search
from sim.corpus import Corpus, log_posterior_chunks, log_posterior_rows
from sim.docids import Docids
from sim.metrics import DEFAULT_MEASURES, StreamingKL, ranking_metrics
from sim.models import SeqGR
from sim.scorers import scorer_of

__all__ = ["evaluate_model", "retrieve"]


def retrieve(model, query_features_MxF, doc_features_NxF, k: int, *, docids: Docids | None = None, beam: int | None = None):
    """(docs_MxK, scores_MxK) of any model: exact top-k, or beam search for SeqGR."""
    q = model.encode_queries(jnp.asarray(query_features_MxF))
    if isinstance(model, SeqGR):
        return beam_search(model, q, docids, k, beam)
    emb_NxD, bias_N = model.doc_table(None, jnp.asarray(doc_features_NxF))
    scores, idx = scorer_of(model).topk(q, emb_NxD, min(k, emb_NxD.shape[0]), bias_N)
    return np.asarray(idx), np.asarray(scores)


def _kl_true(model, corpus: Corpus, docids: Docids | None, chunk_size: int) -> float:
    queries = corpus.test
    q = model.encode_queries(jnp.asarray(queries.features_MxF))
    if isinstance(model, SeqGR):
        kl = []
        for s, logq_mxN in all_doc_log_probs(model, q, docids):
            logp_mxN = log_posterior_rows(corpus, queries, s, s + logq_mxN.shape[0])
            p = np.exp(logp_mxN)
            kl.append(np.sum(np.where(p > 0, p * (logp_mxN - logq_mxN), 0.0), axis=1))
        return float(np.mean(np.concatenate(kl)))
    emb_NxD, bias_N = model.doc_table(None, jnp.asarray(corpus.doc_features_NxF))
    scorer = scorer_of(model)
    acc = StreamingKL.init(queries.size)
    for s, logp_MxC in log_posterior_chunks(corpus, queries, chunk_size):
        e = s + logp_MxC.shape[1]
        acc = acc.update(jnp.asarray(logp_MxC), scorer.scores(q, emb_NxD[s:e]) + bias_N[None, s:e])
    return float(jnp.mean(acc.finalize()))


def evaluate_model(
    model,
    corpus: Corpus,
    *,
    docids: Docids | None = None,
    k: int = 100,
    measures: Sequence[str] = DEFAULT_MEASURES,
    beam: int | None = None,
    chunk_size: int = 8192,
) -> dict[str, float]:
    """ir_measures-named metrics on the test queries (qrels = top documents of p*) plus kl_true."""
    queries = corpus.test
    docs, scores = retrieve(model, queries.features_MxF, corpus.doc_features_NxF, k, docids=docids, beam=beam)
    qrels = queries.qrels_MxQ
    metrics = ranking_metrics(docs, scores, qrels, np.ones_like(qrels), measures)
    metrics["kl_true"] = _kl_true(model, corpus, docids, chunk_size)
    return metrics
