"""The free-embedding trainer: it follows LIMIT's published loop step for step (a plain reference
loop), starts from LIMIT's initialisation, reads success as LIMIT does (argsort top-2, ties to the
lower index) beside the strict margin, solves feasible cases, reaches the known optimum of an
infeasible one, a padded run equals the unpadded one, and SeqGR's node-wise log-probabilities equal
the model's own teacher-forced ones. MaxSim's free multi-vector scores equal a brute-force MaxSim, with
one vector per side it is DR step for step, and it solves an n that DR of the same d cannot."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from grdr.sim.docids import random_tree_docids
from grdr.sim.free_embedding import (STOP_REASONS, FreeEmbeddingConfig, _decoder_init, _seq_gr_consts, _seq_gr_scores,
                                _tables_init, all_pairs, train_free_embedding)
from grdr.sim.free_scores import _margins, _maxsim_scores, _top2_hits, tf32_scores


def test_all_pairs_is_every_unordered_pair():
    assert [tuple(p) for p in all_pairs(5)] == list(itertools.combinations(range(5), 2))
    with pytest.raises(ValueError, match="n_docs"):
        all_pairs(1)


@pytest.mark.parametrize("field,value", [("dim", 0), ("kind", "atomic"), ("temperature", 0.0), ("patience", 0),
                                         ("docid_vocab", 1), ("eval_every", 0), ("success", "argmax"),
                                         ("min_delta", -1.0), ("vectors", 0), ("doc_vectors", 0)])
def test_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        FreeEmbeddingConfig(**{"dim": 4, field: value})


def test_only_maxsim_has_several_vectors():
    with pytest.raises(ValueError, match="vectors=2.*only kind='maxsim'"):
        FreeEmbeddingConfig(dim=4, vectors=2)
    with pytest.raises(ValueError, match="doc_vectors=3.*only kind='maxsim'"):
        FreeEmbeddingConfig(dim=4, kind="seq_gr", doc_vectors=3)
    assert FreeEmbeddingConfig(dim=4, kind="maxsim", vectors=2, doc_vectors=3).doc_vectors == 3


def test_defaults_are_limits_published_settings():
    # google-deepmind/limit, free_embedding_experiment.py, DEFAULT_EXPERIMENT_PARAMS
    cfg = FreeEmbeddingConfig(dim=4)
    assert (cfg.temperature, cfg.learning_rate, cfg.max_steps, cfg.patience, cfg.min_delta, cfg.eval_every,
            cfg.success) == (0.1, 0.01, 100_000, 1_000, 1e-5, 50, "topk")


def _limit_init(seed, n, m, d, dtype=jnp.float32):
    """LIMIT's initialize_embeddings: split the key, standard normals, unit rows."""
    key_q, key_d = jax.random.split(jax.random.PRNGKey(seed))
    q = jax.random.normal(key_q, (m, d), dtype=dtype)
    docs = jax.random.normal(key_d, (n, d), dtype=dtype)
    return q / jnp.linalg.norm(q, axis=1, keepdims=True), docs / jnp.linalg.norm(docs, axis=1, keepdims=True)


@pytest.mark.parametrize("pad", [7, 12])
def test_initialisation_is_limits_and_padding_does_not_change_it(pad):
    n, d, seed = 7, 3, 42
    m = n * (n - 1) // 2
    q_ref, d_ref = _limit_init(seed, n, m, d)
    got = _tables_init(seed, n, m, dim=d, pad_docs=pad, pad_queries=pad * (pad - 1) // 2)
    # the same draws; the unit-normalisation may round differently in its last bit
    np.testing.assert_allclose(np.asarray(got["queries"][:m]), np.asarray(q_ref), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(got["docs"][:n]), np.asarray(d_ref), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(got["docs"]), axis=1), 1.0, rtol=1e-6)


def _limit_reference(n, d, seed, *, lr, temperature, max_steps, patience, min_delta, eval_every):
    """LIMIT's optimize_embeddings as a plain Python loop: update, then patience on the loss the update
    used, then (every eval_every iterations) top-2 accuracy of the updated tables by a stable argsort;
    a last read of the final tables. Returns (steps taken, stop reason, solved, final tables)."""
    pairs = all_pairs(n)
    rel = np.zeros((len(pairs), n), bool)
    rel[np.arange(len(pairs))[:, None], pairs] = True
    params = _limit_init(seed, n, len(pairs), d, jnp.float64)
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def update(params, state):
        def loss_fn(p):
            logp = jax.nn.log_softmax(p[0] @ p[1].T / temperature, axis=1)
            return -(logp * rel).sum() / rel.sum()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        upd, state = opt.update(grads, state, params)
        q, docs = optax.apply_updates(params, upd)
        unit = (q / jnp.linalg.norm(q, axis=1, keepdims=True), docs / jnp.linalg.norm(docs, axis=1, keepdims=True))
        return unit, state, loss

    def accuracy(params):
        scores = np.asarray(params[0]) @ np.asarray(params[1]).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :2]
        return np.take_along_axis(rel, top, axis=1).sum() / rel.sum()

    best, waited, reason, steps = np.inf, 0, "max_steps", max_steps
    for i in range(max_steps):
        params, state, loss = update(params, state)
        if float(loss) < best - min_delta:
            best, waited = float(loss), 0
        else:
            waited += 1
        if waited >= patience:
            reason, steps = "patience", i + 1
            break
        if i % eval_every == 0 and accuracy(params) >= 1.0:
            reason, steps = "solved", i + 1
            break
    return steps, reason, accuracy(params) >= 1.0, params


@pytest.mark.parametrize("n,d,patience,min_delta,eval_every", [(6, 3, 1_000, 1e-5, 50), (7, 2, 30, 1e-5, 5),
                                                               (5, 4, 1_000, 1e-5, 1), (9, 3, 50, 1e-3, 7)])
def test_the_loop_is_limits_step_for_step(n, d, patience, min_delta, eval_every):
    # float64 on both sides, so that the patience counter sees the same losses
    kw = dict(lr=0.01, temperature=0.1, max_steps=3_000, patience=patience, min_delta=min_delta, eval_every=eval_every)
    with jax.enable_x64(True):
        steps, reason, solved, (q_ref, d_ref) = _limit_reference(n, d, 42, **kw)
        cfg = FreeEmbeddingConfig(dim=d, learning_rate=kw["lr"], max_steps=kw["max_steps"], patience=patience,
                                  min_delta=min_delta, eval_every=eval_every)
        r = train_free_embedding(cfg, n, [42], keep_params=True)
    assert (int(r.steps_S[0]), r.stop_reasons[0], bool(r.solved_S[0])) == (steps, reason, solved)
    np.testing.assert_allclose(r.params_S["queries"][0], q_ref, atol=1e-8)
    np.testing.assert_allclose(r.params_S["docs"][0], d_ref, atol=1e-8)


def _tf32_reference(x):
    """float32 -> TF32 by integer arithmetic on the bits: keep 10 of 23 mantissa bits, round to nearest
    even (finite, normal inputs)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0xFFF + ((u >> 13) & 1)) & ~np.uint64(0x1FFF)
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def test_tf32_scores_round_every_matmul_input_as_tensor_cores_do():
    rng = np.random.default_rng(0)
    a, b, w = (rng.standard_normal(s).astype(np.float32) for s in ((7, 5), (9, 5), (7, 9)))
    ra, rb, rw = _tf32_reference(a), _tf32_reference(b), _tf32_reference(w)
    np.testing.assert_allclose(tf32_scores(a, b), ra @ rb.T, rtol=1e-6, atol=1e-6)
    # the rounding is real: float32's exact product is farther from TF32's than float32 rounding
    assert np.abs(a.astype(np.float64) @ b.T.astype(np.float64) - ra @ rb.T).max() > 1e-4
    # both backward matmuls see TF32 inputs too (w is the upstream gradient)
    da, db = jax.grad(lambda a, b: (jnp.asarray(w) * tf32_scores(a, b)).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(da, rw @ rb, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, rw.T @ ra, rtol=1e-6, atol=1e-6)


def test_tf32_probes_train_with_rounded_scores():
    r32 = train_free_embedding(FreeEmbeddingConfig(dim=3, max_steps=400), 7, [42], keep_params=True)
    rtf = train_free_embedding(FreeEmbeddingConfig(dim=3, max_steps=400, matmul="tf32"), 7, [42], keep_params=True)
    assert not np.array_equal(r32.params_S["docs"], rtf.params_S["docs"])
    assert rtf.loss_S[0] < np.log(7)  # it trains: below the uniform softmax's loss


def test_top2_breaks_ties_to_the_lower_index_and_the_margin_does_not():
    # One query, relevant {0, 2}; document 1 ties document 2: LIMIT's argsort puts 1 in the top 2.
    rel = jnp.array([[True, False, True, False]])
    tie = jnp.array([[3.0, 2.0, 2.0, 0.0]])
    assert int(_top2_hits(tie, rel)) == 1 and float(_margins(tie, rel)[0]) == 0.0
    # Relevant {0, 1} tied with document 2: the lower index wins, so top-2 is right, the margin is 0.
    rel = jnp.array([[True, True, False, False]])
    assert int(_top2_hits(tie, rel)) == 2 and float(_margins(tie, rel)[0]) == 0.0
    scores = np.random.default_rng(0).integers(0, 3, size=(50, 6)).astype(np.float32)  # many ties
    rel = np.zeros((50, 6), bool)
    rel[np.arange(50), np.random.default_rng(1).integers(0, 6, 50)] = True
    top = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    assert int(_top2_hits(jnp.asarray(scores), jnp.asarray(rel))) == np.take_along_axis(rel, top, axis=1).sum()


def _brute_margins(queries_MxD, docs_NxD, temperature, n):
    scores = queries_MxD @ docs_NxD.T / temperature
    out = []
    for m, (i, j) in enumerate(itertools.combinations(range(n), 2)):
        irr = [scores[m, k] for k in range(n) if k not in (i, j)]
        out.append(min(scores[m, i], scores[m, j]) - max(irr))
    return np.array(out)


@pytest.mark.parametrize("success", ["topk", "margin"])
def test_dr_solves_n_at_most_d_with_unit_norms_and_the_brute_force_margin(success):
    # n <= d is feasible: orthonormal documents, each query the normalised sum of its pair.
    n, d = 5, 6
    r = train_free_embedding(FreeEmbeddingConfig(dim=d, success=success), n, [0], keep_params=True)
    assert r.solved_S[0] and r.accuracy_S[0] == 1.0 and r.stop_reasons == ["solved"]
    q, docs = np.asarray(r.params_S["queries"][0], np.float64), np.asarray(r.params_S["docs"][0], np.float64)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    brute = _brute_margins(q, docs, 0.1, n)
    assert brute.min() > 0
    np.testing.assert_allclose(r.margin_S[0], brute.min(), rtol=1e-4, atol=1e-4)


def _loss_and_accuracy(q_MxD, docs_NxD, n, temperature=0.1):
    """Plain numpy: mean -log softmax over the relevant (query, doc) pairs, and LIMIT's top-2 accuracy."""
    scores = np.asarray(q_MxD, np.float64) @ np.asarray(docs_NxD, np.float64).T / temperature
    logp = scores - scores.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    pairs = all_pairs(n)
    loss = -np.take_along_axis(logp, pairs, axis=1).mean()
    top = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    return loss, np.mean([len(set(t) & set(p)) / 2 for t, p in zip(top, pairs)])


def test_dr_training_solves_what_its_start_does_not_and_descends_where_it_cannot_solve():
    # On the circle (d = 2) a query's top 2 are neighbours in angular order. n = 3: every pair is a
    # neighbour pair (documents 120 degrees apart), so it is solvable, and LIMIT's start (seed 42)
    # does not solve it: training must. n = 4: only 4 of the 6 pairs are neighbours, so no run
    # solves it and top-2 accuracy is at most (4 * 2 + 2 * 1) / 12; training must still lower the
    # loss well below its start, and report the loss and accuracy of the tables it returns. A trainer
    # that never moves the tables, or climbs the loss, fails both.
    cfg = FreeEmbeddingConfig(dim=2)
    q0, d0 = _limit_init(42, 3, 3, 2)
    assert _loss_and_accuracy(q0, d0, 3)[1] < 1
    r3 = train_free_embedding(cfg, 3, [42])
    assert r3.solved_S[0] and r3.solved_margin_S[0] and r3.stop_reasons == ["solved"] and r3.steps_S[0] >= 1
    seeds = [0, 1, 2, 42]
    r4 = train_free_embedding(cfg, 4, seeds, keep_params=True)
    for s, seed in enumerate(seeds):
        loss0, _ = _loss_and_accuracy(*_limit_init(seed, 4, 6, 2), 4)
        loss, accuracy = _loss_and_accuracy(r4.params_S["queries"][s], r4.params_S["docs"][s], 4)
        assert not r4.solved_S[s] and r4.margin_S[s] < 0 and r4.accuracy_S[s] <= 10 / 12 + 1e-6
        assert r4.loss_S[s] == pytest.approx(loss, rel=1e-4) and r4.accuracy_S[s] == pytest.approx(accuracy)
        assert loss < loss0 - 0.1, (seed, loss0, loss)


@pytest.mark.parametrize("kind,n,pad,d", [("dr", 9, 16, 3), ("dr", 13, 13, 4), ("seq_gr", 11, 16, 3),
                                          ("seq_gr", 6, 8, 2)])
def test_a_padded_run_equals_the_unpadded_run(kind, n, pad, d):
    # Short runs (trajectories are chaotic: float rounding is amplified over thousands of steps).
    cfg = FreeEmbeddingConfig(dim=d, kind=kind, max_steps=40, eval_every=1, docid_vocab=3)
    plain = train_free_embedding(cfg, n, [0, 1], keep_params=True)
    padded = train_free_embedding(cfg, n, [0, 1], pad_to=pad, keep_params=True)
    assert padded.n_padded == pad and plain.n_padded == n
    np.testing.assert_array_equal(padded.steps_S, plain.steps_S)
    np.testing.assert_array_equal(padded.stop_S, plain.stop_S)
    np.testing.assert_array_equal(padded.solved_S, plain.solved_S)
    assert padded.params == plain.params
    for field in ("accuracy_S", "margin_S", "loss_S"):
        np.testing.assert_allclose(getattr(padded, field), getattr(plain, field), rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(padded.params_S), jax.tree.leaves(plain.params_S)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_a_probe_budget_is_obeyed_and_reported():
    # n = 12 in d = 2 is far beyond the circle's reach: the run ends by patience or by max_steps.
    r = train_free_embedding(FreeEmbeddingConfig(dim=2, max_steps=300, patience=1_000), 12, [0])
    assert r.stop_reasons == ["max_steps"] and r.steps_S[0] == 300 and not r.solved_S[0]
    r = train_free_embedding(FreeEmbeddingConfig(dim=2, patience=20, min_delta=1.0), 12, [0])
    assert r.stop_reasons == ["patience"] and r.steps_S[0] == 21  # the first step sets the best
    assert set(STOP_REASONS) >= {"solved", "patience", "max_steps"}


@pytest.mark.parametrize("pad", [None, 16])
def test_seq_gr_nodewise_log_probs_equal_teacher_forcing_and_normalise(pad):
    n, d = 7, 3
    cfg = FreeEmbeddingConfig(dim=d, kind="seq_gr", docid_vocab=2)
    docids = random_tree_docids(n, 2, 0)
    graphdef, decoder = _decoder_init(cfg, docids, 0)
    M = n * (n - 1) // 2
    params = {"queries": _tables_init(0, n, M, dim=d, pad_docs=n, pad_queries=M)["queries"], "decoder": decoder}
    consts = jax.tree.map(np.asarray, _seq_gr_consts(docids, pad))
    logp_MxN = np.asarray(_seq_gr_scores(graphdef)(params, consts))[:, :n]
    model = nnx.merge(graphdef, decoder)
    q_MxH = np.asarray(params["queries"])
    # every (query, doc) pair through the model's own teacher-forced path, in one call
    q_rows = np.repeat(q_MxH, n, axis=0)
    codes = np.tile(docids.codes_NxL, (M, 1))
    valid = np.tile(docids.valid_PxV[docids.prefix_NxL], (M, 1, 1))
    ref_MxN = np.asarray(jax.jit(model.log_prob)(q_rows, codes, valid)).reshape(M, n)
    np.testing.assert_allclose(logp_MxN, ref_MxN, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(logp_MxN).sum(axis=1), 1.0, atol=1e-5)


def test_seq_gr_solves_a_small_case():
    r = train_free_embedding(FreeEmbeddingConfig(dim=4, kind="seq_gr"), 5, [0])
    assert r.solved_S[0] and r.accuracy_S[0] == 1.0


# ---------------------------------------------------------------------------------------------
# MaxSim: free multi-vector DR.


def _brute_maxsim(q_Mxmxd, d_Nxnxd, temperature):
    """sum_i max_j <q_i, d_j> / temperature, one (query, document) pair at a time, in float64."""
    q, d = np.asarray(q_Mxmxd, np.float64), np.asarray(d_Nxnxd, np.float64)
    return np.array([[sum(max(qi @ dj for dj in doc) for qi in query) for doc in d] for query in q]) / temperature


@pytest.mark.parametrize("m,m_doc", [(1, 1), (3, 2), (2, 4)])
def test_maxsim_scores_equal_a_brute_force_maxsim(m, m_doc):
    rng = np.random.default_rng(m * 10 + m_doc)
    q = rng.standard_normal((6, m, 5)).astype(np.float32)
    d = rng.standard_normal((7, m_doc, 5)).astype(np.float32)
    got = np.asarray(_maxsim_scores(0.1)({"queries": q, "docs": d}, {}))
    np.testing.assert_allclose(got, _brute_maxsim(q, d, 0.1), rtol=1e-5, atol=1e-4)
    # TF32: the same MaxSim of inputs rounded to 10 mantissa bits
    got = np.asarray(_maxsim_scores(0.1, "tf32")({"queries": q, "docs": d}, {}))
    np.testing.assert_allclose(got, _brute_maxsim(_tf32_reference(q), _tf32_reference(d), 0.1), rtol=1e-5, atol=1e-4)


def test_maxsim_tables_start_from_limits_draws_and_pad_like_drs():
    n, M, dim = 5, 10, 3
    dr = _tables_init(42, n, M, dim=dim, pad_docs=8, pad_queries=28)
    one = _tables_init(42, n, M, dim=dim, pad_docs=8, pad_queries=28, vectors=1, doc_vectors=1)
    np.testing.assert_array_equal(np.asarray(one["queries"])[:, 0], np.asarray(dr["queries"]))
    np.testing.assert_array_equal(np.asarray(one["docs"])[:, 0], np.asarray(dr["docs"]))
    multi = _tables_init(42, n, M, dim=dim, pad_docs=8, pad_queries=28, vectors=2, doc_vectors=3)
    unpadded = _tables_init(42, n, M, dim=dim, pad_docs=n, pad_queries=M, vectors=2, doc_vectors=3)
    assert multi["queries"].shape == (28, 2, dim) and multi["docs"].shape == (8, 3, dim)
    np.testing.assert_array_equal(np.asarray(multi["docs"])[:n], np.asarray(unpadded["docs"]))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(multi["docs"]), axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(multi["docs"])[n:], np.eye(dim)[0][None, None].repeat(3, 1).repeat(3, 0))
    # the m query vectors of a row are different draws, not copies
    assert np.abs(np.asarray(multi["queries"])[:M, 0] - np.asarray(multi["queries"])[:M, 1]).min() > 0


@pytest.mark.parametrize("n,d,pad", [(7, 3, None), (9, 2, 16)])
def test_maxsim_with_one_vector_per_side_is_dr_step_for_step(n, d, pad):
    kw = dict(dim=d, max_steps=3_000)
    dr = train_free_embedding(FreeEmbeddingConfig(**kw), n, [42, 3], pad_to=pad, keep_params=True)
    ms = train_free_embedding(FreeEmbeddingConfig(kind="maxsim", **kw), n, [42, 3], pad_to=pad, keep_params=True)
    np.testing.assert_array_equal(ms.steps_S, dr.steps_S)
    np.testing.assert_array_equal(ms.stop_S, dr.stop_S)
    np.testing.assert_array_equal(ms.solved_S, dr.solved_S)
    assert ms.params == dr.params and (dr.steps_S > 100).all()
    np.testing.assert_allclose(ms.loss_S, dr.loss_S, rtol=1e-6)
    np.testing.assert_allclose(ms.params_S["queries"][:, :, 0], dr.params_S["queries"], atol=1e-6)
    np.testing.assert_allclose(ms.params_S["docs"][:, :, 0], dr.params_S["docs"], atol=1e-6)


def test_maxsim_solves_an_n_that_dr_of_the_same_d_cannot():
    # n = 8 in d = 3: DR fails it (its critical n at d = 3 is 4); MaxSim with 2 + 2 vectors of d = 3
    # solves it, and the final tables, read back in plain numpy, are unit vectors whose brute-force
    # MaxSim puts both relevant documents of every query strictly on top.
    n, d = 8, 3
    dr = train_free_embedding(FreeEmbeddingConfig(dim=d), n, [42])
    assert not dr.solved_S[0] and dr.stop_reasons == ["patience"]
    cfg = FreeEmbeddingConfig(dim=d, kind="maxsim", vectors=2, doc_vectors=2, success="margin")
    ms = train_free_embedding(cfg, n, [42], pad_to=16, keep_params=True)
    assert ms.solved_S[0] and ms.stop_reasons == ["solved"] and ms.accuracy_S[0] == 1.0
    M = n * (n - 1) // 2
    assert ms.params == (M * 2 + n * 2) * d
    q, docs = ms.params_S["queries"][0], ms.params_S["docs"][0]
    assert q.shape == (M, 2, d) and docs.shape == (n, 2, d)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=-1), 1.0, atol=1e-5)
    scores = _brute_maxsim(q, docs, 0.1)
    margins = [min(scores[i, a], scores[i, b]) - max(scores[i, k] for k in range(n) if k not in (a, b))
               for i, (a, b) in enumerate(all_pairs(n))]
    assert min(margins) > 0
    np.testing.assert_allclose(ms.margin_S[0], min(margins), rtol=1e-3, atol=1e-3)


def test_a_padded_maxsim_run_equals_the_unpadded_run():
    cfg = FreeEmbeddingConfig(dim=3, kind="maxsim", vectors=2, doc_vectors=3, max_steps=40, eval_every=1)
    plain = train_free_embedding(cfg, 9, [0, 1], keep_params=True)
    padded = train_free_embedding(cfg, 9, [0, 1], pad_to=16, keep_params=True)
    np.testing.assert_array_equal(padded.steps_S, plain.steps_S)
    np.testing.assert_array_equal(padded.stop_S, plain.stop_S)
    for field in ("accuracy_S", "margin_S", "loss_S"):
        np.testing.assert_allclose(getattr(padded, field), getattr(plain, field), rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(padded.params_S), jax.tree.leaves(plain.params_S)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
