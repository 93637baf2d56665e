"""The free-embedding trainer: feasible cases are solved, infeasible ones are not, unit norms hold,
the reported margin is the brute-force margin, and SeqGR's node-wise log-probabilities equal the
model's own teacher-forced ones."""
import itertools

import jax
import numpy as np
import pytest
from flax import nnx

from sim.docids import random_tree_docids
from sim.free_embedding import (FreeEmbeddingConfig, _init, _seq_gr_consts, _seq_gr_scores, all_pairs,
                                train_free_embedding)


def test_all_pairs_is_every_unordered_pair():
    assert [tuple(p) for p in all_pairs(5)] == list(itertools.combinations(range(5), 2))
    with pytest.raises(ValueError, match="n_docs"):
        all_pairs(1)


@pytest.mark.parametrize("field,value", [("dim", 0), ("kind", "atomic"), ("temperature", 0.0), ("patience", 0),
                                         ("docid_vocab", 1)])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        FreeEmbeddingConfig(**{"dim": 4, field: value})


def _brute_margins(queries_MxD, docs_NxD, temperature, n):
    scores = queries_MxD @ docs_NxD.T / temperature
    out = []
    for m, (i, j) in enumerate(itertools.combinations(range(n), 2)):
        irr = [scores[m, k] for k in range(n) if k not in (i, j)]
        out.append(min(scores[m, i], scores[m, j]) - max(irr))
    return np.array(out)


def test_dr_solves_n_at_most_d_with_unit_norms_and_the_brute_force_margin():
    # n <= d is feasible: orthonormal documents, each query the normalised sum of its pair.
    n, d = 5, 6
    r = train_free_embedding(FreeEmbeddingConfig(dim=d, max_steps=2_000, patience=200), n, [0], keep_params=True)
    assert r.solved_S[0] and r.accuracy_S[0] == 1.0 and r.steps_S[0] < 2_000
    q, docs = np.asarray(r.params_S["queries"][0], np.float64), np.asarray(r.params_S["docs"][0], np.float64)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    brute = _brute_margins(q, docs, 0.1, n)
    assert brute.min() > 0
    np.testing.assert_allclose(r.margin_S[0], brute.min(), rtol=1e-4, atol=1e-4)


def test_dr_in_one_dimension_cannot_solve_three_documents():
    # Unit vectors in 1-D are +-1: two of three documents tie for every query, so no margin is positive.
    r = train_free_embedding(FreeEmbeddingConfig(dim=1, max_steps=300, patience=50), 8, [0, 1], keep_params=True)
    assert not r.solved_S.any() and (r.accuracy_S < 1).all()
    np.testing.assert_allclose(np.abs(np.asarray(r.params_S["docs"])), 1.0, atol=1e-6)


def test_seq_gr_nodewise_log_probs_equal_teacher_forcing_and_normalise():
    n, d = 7, 3
    cfg = FreeEmbeddingConfig(dim=d, kind="seq_gr", docid_vocab=2)
    docids = random_tree_docids(n, 2, 0)
    graphdef, params = _init(cfg, n, n * (n - 1) // 2, 0, docids)
    consts = jax.tree.map(np.asarray, _seq_gr_consts(docids))
    logp_MxN = np.asarray(_seq_gr_scores(graphdef, docids.length)(params, consts))
    model = nnx.merge(graphdef, params["decoder"])
    q_MxH = np.asarray(params["queries"])
    M = q_MxH.shape[0]
    # every (query, doc) pair through the model's own teacher-forced path, in one call
    q_rows = np.repeat(q_MxH, n, axis=0)
    codes = np.tile(docids.codes_NxL, (M, 1))
    valid = np.tile(docids.valid_PxV[docids.prefix_NxL], (M, 1, 1))
    ref_MxN = np.asarray(jax.jit(model.log_prob)(q_rows, codes, valid)).reshape(M, n)
    np.testing.assert_allclose(logp_MxN, ref_MxN, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(logp_MxN).sum(axis=1), 1.0, atol=1e-5)


def test_seq_gr_solves_a_small_case():
    r = train_free_embedding(FreeEmbeddingConfig(dim=4, kind="seq_gr", max_steps=1_500, patience=200), 5, [0])
    assert r.solved_S[0] and r.accuracy_S[0] == 1.0
