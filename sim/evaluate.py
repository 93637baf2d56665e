"""Evaluation on a synthetic corpus: exact retrieval, ir_measures metrics, and KL to the truth.

DR and AtomicGR rank by exact top-k over all N documents (chunked, by the model's scorer, sim.scorers); SeqGR by trie-constrained
beam search. `kl_true` is the mean over test queries of KL(p*(.|q) || p_model(.|q)), computed in
document chunks (DR, AtomicGR) or query blocks (SeqGR), never as a full M x N matrix.

DR and AtomicGR are evaluated by one compiled program (query and document representations, top-k
and the streamed KL) over documents padded to their bucket of N (sim.buckets: the padding scored
-inf by the model and by p*), so every N of a bucket shares it; SeqGR's trie tables are padded
likewise (sim.beam).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from grdr.sim.beam import all_doc_log_probs, beam_search
from grdr.sim.buckets import bucket, mask_bias_N, pad_rows
from grdr.sim.corpus import Corpus, log_posterior_rows
from grdr.sim.docids import Docids
from grdr.sim.metrics import DEFAULT_MEASURES, StreamingKL, ranking_metrics
from grdr.sim.models import SeqGR, map_doc_rows
from grdr.sim.scorers import scorer_of

__all__ = ["evaluate_model", "retrieve", "model_scores", "query_states"]


def _padded(model, n_pad: int):
    """(graphdef, parameters) of a DR or AtomicGR model with its document rows zero-padded to n_pad
    (on the host: an eager pad would compile once per N)."""
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, map_doc_rows(params, model.cfg.kind, lambda x: jax.device_put(pad_rows(np.asarray(x), n_pad)))


def _representations(graphdef, params, query_features_MxF, doc_features_NxF, n_docs):
    """(model, queries, document table, biases with the padding at -inf), inside a compiled program."""
    model = nnx.merge(graphdef, params)
    emb_NxD, bias_N = model.doc_table(None, doc_features_NxF)
    bias_N = bias_N + mask_bias_N(n_docs, bias_N.shape[0], bias_N.dtype)
    return model, model.encode_queries(query_features_MxF), emb_NxD, bias_N


@partial(jax.jit, static_argnames=("graphdef", "k"))
def _dense_topk(graphdef, params, query_features_MxF, doc_features_NxF, n_docs, *, k):
    model, q, emb_NxD, bias_N = _representations(graphdef, params, query_features_MxF, doc_features_NxF, n_docs)
    return scorer_of(model).topk(q, emb_NxD, k, bias_N)


@partial(jax.jit, static_argnames=("graphdef", "k", "chunk"))
def _dense_eval(graphdef, params, query_features_MxF, doc_features_NxF, n_docs, beta_u_MxR, doc_latents_NxR,
                doc_log_prior_N, log_normalizer_M, *, k, chunk):
    """(top-k scores and documents, KL(p* || model) per query) of a DR or AtomicGR model, in one program.

    The KL streams over chunks of documents (sim.metrics.StreamingKL); log p* = beta u.z + log prior - log Z,
    computed as sim.corpus.log_posterior_chunks does. Padded documents carry a -inf prior and score."""
    model, q, emb_NxD, bias_N = _representations(graphdef, params, query_features_MxF, doc_features_NxF, n_docs)
    scorer = scorer_of(model)
    top = scorer.topk(q, emb_NxD, k, bias_N)
    n_chunks = -(-bias_N.shape[0] // chunk)

    def chunks(x, fill):
        x = jnp.pad(x, [(0, n_chunks * chunk - x.shape[0])] + [(0, 0)] * (x.ndim - 1), constant_values=fill)
        return x.reshape((n_chunks, chunk) + x.shape[1:])

    def body(acc, xs):
        emb_Cx_, bias_C, z_CxR, prior_C = xs
        logp_MxC = beta_u_MxR @ z_CxR.T + prior_C[None, :] - log_normalizer_M[:, None]
        return acc.update(logp_MxC, scorer.scores(q, emb_Cx_) + bias_C[None, :]), None

    xs = (chunks(emb_NxD, 0), chunks(bias_N, -jnp.inf), chunks(doc_latents_NxR, 0), chunks(doc_log_prior_N, -jnp.inf))
    acc, _ = jax.lax.scan(body, StreamingKL.init(q.shape[0]), xs)
    return top, acc.finalize()


@partial(jax.jit, static_argnames=("graphdef",))
def _encode(graphdef, params, query_features_MxF):
    return nnx.merge(graphdef, params).encode_queries(query_features_MxF)


def query_states(model, query_features_MxF) -> jax.Array:
    """model.encode_queries by one compiled program (eager, every layer's ops would compile one by one)."""
    return _encode(*nnx.split(model, nnx.Param), jax.device_put(np.asarray(query_features_MxF)))


@partial(jax.jit, static_argnames=("graphdef",))
def _dense_scores(graphdef, params, query_features_MxF, doc_features_NxF, n_docs):
    model, q, emb_NxD, bias_N = _representations(graphdef, params, query_features_MxF, doc_features_NxF, n_docs)
    return scorer_of(model).scores(q, emb_NxD) + bias_N[None, :]


def model_scores(model, query_features_MxF, doc_features_NxF) -> np.ndarray:
    """s(q, d) + b_d of a DR or AtomicGR model for every query and document (M x N, float32), by one
    compiled program per bucket of N: for small corpora, where the whole matrix is wanted."""
    n_docs = doc_features_NxF.shape[0]
    n_pad = bucket(n_docs)
    graphdef, params = _padded(model, n_pad)
    scores_MxN = _dense_scores(graphdef, params, jax.device_put(np.asarray(query_features_MxF)),
                               jax.device_put(pad_rows(np.asarray(doc_features_NxF), n_pad)), np.int32(n_docs))
    return np.asarray(scores_MxN)[:, :n_docs]


def retrieve(model, query_features_MxF, doc_features_NxF, k: int, *, docids: Docids | None = None, beam: int | None = None):
    """(docs_MxK, scores_MxK) of any model: exact top-k, or beam search for SeqGR."""
    if isinstance(model, SeqGR):
        return beam_search(model, query_states(model, query_features_MxF), docids, k, beam)
    n_docs = doc_features_NxF.shape[0]
    n_pad = bucket(n_docs)
    graphdef, params = _padded(model, n_pad)
    scores, idx = _dense_topk(graphdef, params, jax.device_put(np.asarray(query_features_MxF)),
                              jax.device_put(pad_rows(np.asarray(doc_features_NxF), n_pad)), np.int32(n_docs),
                              k=min(k, n_docs))
    return np.asarray(idx), np.asarray(scores)


def _seq_gr_kl(model, corpus: Corpus, docids: Docids) -> float:
    queries = corpus.test
    q = query_states(model, queries.features_MxF)
    kl = []
    for s, logq_mxN in all_doc_log_probs(model, q, docids):
        logp_mxN = log_posterior_rows(corpus, queries, s, s + logq_mxN.shape[0])
        p = np.exp(logp_mxN)
        kl.append(np.sum(np.where(p > 0, p * (logp_mxN - logq_mxN), 0.0), axis=1))
    return float(np.mean(np.concatenate(kl)))


def _dense_metrics(model, corpus: Corpus, k: int, chunk_size: int, pad_docs: int | None = None):
    """(docs, scores, KL per query) of a DR or AtomicGR model on the corpus's test queries."""
    queries, n_docs = corpus.test, corpus.n_docs
    n_pad = bucket(max(n_docs, pad_docs or 0))
    graphdef, params = _padded(model, n_pad)
    padded = {name: jax.device_put(pad_rows(np.asarray(x), n_pad, fill)) for name, x, fill in (
        ("doc_features", corpus.doc_features_NxF, 0), ("latents", corpus.doc_latents_NxR, 0),
        ("prior", corpus.doc_log_prior_N, -np.inf))}
    (scores, idx), kl_M = _dense_eval(
        graphdef, params, jax.device_put(queries.features_MxF), padded["doc_features"], np.int32(n_docs),
        jax.device_put(corpus.spec.beta * queries.latents_MxR), padded["latents"], padded["prior"],
        jax.device_put(queries.log_normalizer_M), k=min(k, n_docs), chunk=min(chunk_size, n_pad))
    return np.asarray(idx), np.asarray(scores), float(np.mean(np.asarray(kl_M)))


def evaluate_model(
    model,
    corpus: Corpus,
    *,
    docids: Docids | None = None,
    k: int = 100,
    measures: Sequence[str] = DEFAULT_MEASURES,
    beam: int | None = None,
    chunk_size: int = 8192,
    pad_docs: int | None = None,
) -> dict[str, float]:
    """ir_measures-named metrics on the test queries (qrels = top documents of p*) plus kl_true.

    pad_docs: a corpus size past N whose bucket DR's and AtomicGR's documents are padded to (masked as
    any bucket's padding is), so that every N of a sweep that trains there shares one program."""
    queries = corpus.test
    if isinstance(model, SeqGR):
        docs, scores = retrieve(model, queries.features_MxF, corpus.doc_features_NxF, k, docids=docids, beam=beam)
        kl = _seq_gr_kl(model, corpus, docids)
    else:
        docs, scores, kl = _dense_metrics(model, corpus, k, chunk_size, pad_docs)
    qrels = queries.qrels_MxQ
    metrics = ranking_metrics(docs, scores, qrels, np.ones_like(qrels), measures)
    metrics["kl_true"] = kl
    return metrics
