"""sim.evaluate against brute force: retrieval, ir_measures metrics and KL over the whole M x N matrix."""
import numpy as np
import pytest

from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.docids import make_docids
from grdr.sim.evaluate import evaluate_model, retrieve
from grdr.sim.logprobs import model_log_probs, true_log_probs
from grdr.sim.metrics import ranking_metrics
from grdr.sim.models import ModelConfig, make_model


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CorpusSpec(n_docs=90, n_train_queries=50, n_test_queries=25, latent_rank=3, feature_dim=6,
                                  qrels_k=2, beta=15.0))


@pytest.mark.parametrize("kind", ["dr", "atomic_gr", "seq_gr"])
def test_kl_and_metrics_equal_the_whole_matrix(corpus, kind):
    docids = make_docids("random", corpus.n_docs, vocab=5, seed=1) if kind == "seq_gr" else None
    model = make_model(ModelConfig(kind=kind, dim=4, hidden=8, depth=1, doc_side="table"), n_docs=corpus.n_docs,
                       feature_dim=6, docids=docids, seed=2)
    got = evaluate_model(model, corpus, docids=docids, k=10, beam=corpus.n_docs, chunk_size=16)
    logp_MxN, logq_MxN = true_log_probs(corpus), model_log_probs(model, corpus, docids)
    kl = np.mean(np.sum(np.exp(logp_MxN) * (logp_MxN - logq_MxN), axis=1))
    assert got["kl_true"] == pytest.approx(kl, rel=1e-4, abs=1e-5)
    # exact top-10 of the model's log-probabilities (a beam as wide as the corpus is exact for SeqGR)
    order = np.argsort(-logq_MxN, axis=1, kind="stable")[:, :10]
    ref = ranking_metrics(order, np.take_along_axis(logq_MxN, order, 1), corpus.test.qrels_MxQ,
                          np.ones_like(corpus.test.qrels_MxQ))
    for name in ("Success@1", "RR@10", "nDCG@10"):
        assert got[name] == pytest.approx(ref[name], abs=1e-6), name


def test_retrieve_returns_the_top_scores_in_order(corpus):
    model = make_model(ModelConfig(kind="dr", dim=4, hidden=8, depth=1), n_docs=corpus.n_docs, feature_dim=6, seed=0)
    docs_MxK, scores_MxK = retrieve(model, corpus.test.features_MxF, corpus.doc_features_NxF, 7)
    logq_MxN = model_log_probs(model, corpus)
    assert np.all(np.diff(scores_MxK, axis=1) <= 1e-6)
    np.testing.assert_array_equal(np.sort(docs_MxK, 1), np.sort(np.argsort(-logq_MxN, 1, kind="stable")[:, :7], 1))
