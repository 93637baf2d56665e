
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from grdr.sim.beam import all_doc_log_probs, beam_search
from grdr.sim.docids import random_tree_docids, semantic_docids
from grdr.sim.models import ModelConfig, make_model


def seq_model(d, hidden=8, seed=0):
    return make_model(ModelConfig(kind="seq_gr", hidden=hidden, depth=1), n_docs=d.n_docs, feature_dim=5, docids=d, seed=seed)


def queries(model, m=4):
    return model.encode_queries(jnp.asarray(np.random.default_rng(1).standard_normal((m, 5)), jnp.float32))


def enumerate_log_probs(model, q, d):
    """Reference: teacher-forced log p of every docid, one document at a time."""
    cols = []
    for i in range(d.n_docs):
        codes = jnp.asarray(np.repeat(d.codes_NxL[i : i + 1], q.shape[0], 0))
        valid = jnp.asarray(np.repeat(d.valid_PxV[d.prefix_NxL[i : i + 1]], q.shape[0], 0))
        cols.append(np.asarray(model.log_prob(q, codes, valid)))
    return np.stack(cols, 1)


@pytest.mark.parametrize("d", [random_tree_docids(23, 3, seed=1), semantic_docids(np.random.default_rng(2).standard_normal((30, 4)), 4)])
def test_all_doc_log_probs_match_enumeration_and_normalise(d):
    model = seq_model(d)
    q = queries(model)
    ref = enumerate_log_probs(model, q, d)
    got = np.concatenate([b for _, b in all_doc_log_probs(model, q, d, query_block=3)])
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(np.exp(got).sum(1), 1.0, atol=1e-5)


def test_exhaustive_beam_equals_exact_ranking():
    d = random_tree_docids(23, 3, seed=1)
    model = seq_model(d)
    q = queries(model)
    ref = enumerate_log_probs(model, q, d)
    docs, logp = beam_search(model, q, d, k=23, beam=23)
    np.testing.assert_allclose(logp, np.sort(ref, axis=1)[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(ref, docs, 1), logp, atol=1e-5)
    assert all(sorted(row) == list(range(23)) for row in docs)


def test_rigged_logits_decode_the_planted_docid():
    """Zero every weight, then let the output bias spell one planted docid: beam 1 must find it."""
    d = random_tree_docids(50, 4, seed=0)
    model = seq_model(d)
    state = nnx.state(model, nnx.Param)
    zeroed = __import__("jax").tree.map(jnp.zeros_like, state)
    nnx.update(model, zeroed)
    planted = 37
    bias = np.zeros((d.length, d.vocab), np.float32)
    bias[np.arange(d.length), d.codes_NxL[planted]] = 10.0
    model.out_bias[...] = jnp.asarray(bias)
    docs, _ = beam_search(model, queries(model), d, k=1, beam=1)
    assert np.all(docs[:, 0] == planted)


def test_beam_returns_padding_when_k_exceeds_the_corpus():
    d = random_tree_docids(5, 2)
    model = seq_model(d)
    docs, logp = beam_search(model, queries(model, 2), d, k=8)
    assert np.all(docs[:, 5:] == -1) and np.all(np.isneginf(logp[:, 5:]))
    assert all(sorted(row[:5]) == list(range(5)) for row in docs)
