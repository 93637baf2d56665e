"""sim.retrieve.topk / topk_streamed against a brute-force numpy reference, and invariants.

Embeddings are small integers, so every dot product is exact in float32 and the reference
(float64 scores, lexsort by (-score, index)) must agree bit for bit, planted ties included.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grdr.sim.metrics import ranking_metrics
from grdr.sim.retrieve import topk, topk_streamed


def reference_topk(queries_MxD, docs_NxD, k, bias_N=None, temperature=1.0):
    scores_MxN = queries_MxD.astype(np.float64) @ docs_NxD.T.astype(np.float64) / temperature
    if bias_N is not None:
        scores_MxN = scores_MxN + bias_N
    index_MxN = np.broadcast_to(np.arange(docs_NxD.shape[0]), scores_MxN.shape)
    order_MxN = np.lexsort((index_MxN, -scores_MxN), axis=1)[:, :k]  # equal scores: lower index
    return np.take_along_axis(scores_MxN, order_MxN, 1), order_MxN


def integer_corpus(seed, num_queries, num_docs, dim, duplicates=True):
    rng = np.random.default_rng(seed)
    queries = rng.integers(-2, 3, (num_queries, dim)).astype(np.float32)
    docs = rng.integers(-2, 3, (num_docs, dim)).astype(np.float32)
    if duplicates:  # planted ties: copies of earlier documents further down the corpus
        copies = rng.integers(0, num_docs, num_docs // 4)
        docs[rng.integers(0, num_docs, copies.size)] = docs[copies]
    return queries, docs, rng.integers(-2, 3, num_docs).astype(np.float32)


@pytest.mark.parametrize(
    "num_docs, k, chunk, block, merge, biased",
    [(1024, 10, 64, 8, 256, False),   # stage 1 over 4 merges of 4 chunks, no tail
     (2000, 9, 64, 8, 512, True),     # 3 merges, then a tail of 7 chunks and a partial chunk
     (1003, 17, 64, 16, 300, True),   # merges of k * b rounded up to chunks; partial last block
     (300, 25, 512, 8, 512, False),   # the corpus smaller than one chunk
     (999, 7, 100, 1, 200, True),     # blocks of one document
     (1200, 40, 160, 32, 320, False)],  # no more blocks than k: one plain top_k
)
def test_topk_equals_brute_force_with_ties(num_docs, k, chunk, block, merge, biased):
    queries, docs, bias = integer_corpus(num_docs, 9, num_docs, 4)
    bias_N, temperature = (bias, 0.5) if biased else (None, 1.0)
    want_scores, want_idx = reference_topk(queries, docs, k, bias_N, temperature)
    scores, idx = topk(queries, docs, k, doc_bias_N=bias_N, chunk_size=chunk, block_size=block,
                       merge_size=merge, temperature=temperature)
    np.testing.assert_array_equal(np.asarray(idx), want_idx)
    np.testing.assert_array_equal(np.asarray(scores), want_scores)
    assert idx.dtype == jnp.int32 and scores.dtype == jnp.float32


def test_stage_two_query_tiles_with_a_partial_last_tile():
    # k * b * D = 64 * 16 * 512 floats per query: stage 2 rescores 8 queries per tile, 13 = 8 + 5.
    queries, docs, _ = integer_corpus(5, 13, 2000, 512)
    want_scores, want_idx = reference_topk(queries, docs, 64)
    scores, idx = topk(queries, docs, 64, chunk_size=256, block_size=16, merge_size=1024)
    np.testing.assert_array_equal(np.asarray(idx), want_idx)
    np.testing.assert_array_equal(np.asarray(scores), want_scores)


def test_minus_inf_bias_hides_documents_and_signed_zeros_tie():
    docs = jnp.array([[1.0], [2.0], [3.0], [0.0], [-0.0]])
    bias = jnp.array([0.0, -jnp.inf, 0.0, 0.0, 0.0])
    _, idx = topk(jnp.array([[1.0]]), docs, 4, doc_bias_N=bias, chunk_size=4, block_size=2)
    assert idx.tolist() == [[2, 0, 3, 4]]  # 3 > 1 > 0 == -0 (index order, across chunks) > -inf
    _, idx = topk(jnp.array([[-1.0]]), docs[::-1], 2)  # scores -0.0 and +0.0 tie: lower index
    assert idx.tolist() == [[0, 1]]


def test_streamed_equals_topk_without_the_table():
    num_docs, chunk, dim = 1100, 256, 4

    def doc_chunk_fn(start):
        # Document i is a function of i alone (small integers, many ties), so any chunking
        # describes the same corpus.
        index_C = start + jnp.arange(chunk, dtype=jnp.int32)
        mixed_CxD = (index_C[:, None] * 7919 + jnp.arange(dim, dtype=jnp.int32)[None, :] * 104729) % 9973
        return (mixed_CxD % 5 - 2).astype(jnp.float32), (index_C % 3).astype(jnp.float32)

    table = [jax.jit(doc_chunk_fn)(s) for s in range(0, num_docs, chunk)]
    table_NxD = np.concatenate([np.asarray(t[0]) for t in table])[:num_docs]
    bias_N = np.concatenate([np.asarray(t[1]) for t in table])[:num_docs]
    queries = integer_corpus(0, 5, 1, dim)[0]
    want_scores, want_idx = reference_topk(queries, table_NxD, 30, bias_N)
    scores, idx = topk_streamed(queries, doc_chunk_fn, num_docs, 30, chunk_size=chunk, block_size=8)
    np.testing.assert_array_equal(np.asarray(idx), want_idx)
    np.testing.assert_array_equal(np.asarray(scores), want_scores)


def test_orthogonal_embeddings_give_success_at_1():
    num_docs = 64
    docs = jnp.eye(num_docs)
    targets = jnp.arange(0, num_docs, 3)
    scores, idx = topk(docs[targets] * 2.0, docs, 10, chunk_size=16, block_size=4)
    metrics = ranking_metrics(idx, scores, targets[:, None], jnp.ones((targets.size, 1), jnp.int32),
                              ["Success@1", "RR@10", "nDCG@10"])
    assert metrics == {"Success@1": 1.0, "RR@10": 1.0, "nDCG@10": 1.0}


def test_shuffling_the_corpus_changes_no_metric():
    rng = np.random.default_rng(7)
    num_docs, dim = 700, 8
    docs = rng.standard_normal((num_docs, dim)).astype(np.float32)
    queries = rng.standard_normal((20, dim)).astype(np.float32)
    qrels = rng.integers(0, num_docs, (20, 3))
    gains = rng.integers(1, 3, (20, 3))
    perm = rng.permutation(num_docs)  # new position p holds old document perm[p]
    inverse = np.argsort(perm)
    measures = ["Success@1", "RR@10", "nDCG@10", "R@100", "P@5", "AP"]
    scores, idx = topk(queries, docs, 100, chunk_size=128, block_size=8)
    shuffled_scores, shuffled_idx = topk(queries, docs[perm], 100, chunk_size=128, block_size=8)
    before = ranking_metrics(idx, scores, qrels, gains, measures, per_query=True)
    after = ranking_metrics(shuffled_idx, shuffled_scores, inverse[qrels], gains, measures, per_query=True)
    for name in measures:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(perm[np.asarray(shuffled_idx)], np.asarray(idx))


def test_eager_equals_jit_and_no_recompile_for_a_new_corpus():
    queries, docs, bias = integer_corpus(11, 4, 90, 3)
    options = dict(doc_bias_N=bias, chunk_size=16, block_size=4, merge_size=32)
    jitted = topk(queries, docs, 5, **options)
    with jax.disable_jit():
        eager = topk(queries, docs, 5, **options)
    np.testing.assert_array_equal(np.asarray(eager[1]), np.asarray(jitted[1]))
    np.testing.assert_array_equal(np.asarray(eager[0]), np.asarray(jitted[0]))
    before = topk._cache_size()
    topk(queries, docs[::-1].copy(), 5, **{**options, "doc_bias_N": -bias})
    assert topk._cache_size() == before


def test_invalid_arguments_name_the_field():
    queries, docs, _ = integer_corpus(0, 2, 50, 3)
    with pytest.raises(ValueError, match="k:"):
        topk(queries, docs, 51)
    with pytest.raises(ValueError, match="block_size"):
        topk(queries, docs, 5, chunk_size=32, block_size=5)
    with pytest.raises(ValueError, match="chunk_size"):
        topk_streamed(queries, lambda s: (jnp.zeros((16, 3)), None), 50, 20, chunk_size=16, block_size=4)
    with pytest.raises(ValueError, match="doc_chunk_fn"):
        topk_streamed(queries, lambda s: (jnp.zeros((8, 3)), None), 50, 5, chunk_size=16, block_size=4)
