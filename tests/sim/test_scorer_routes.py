"""Every scorer through the hard-negative pool, the hard-negative samplers and the row-sparse table
(docs/design.md, sections 1, 2 and 4), against references written here."""
import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.hard_pool import hard_pool
from grdr.sim.models import ModelConfig, make_model, scorer_fields
from grdr.sim.scorers import MaxSim
from grdr.sim.scorers import SCORERS as REGISTERED
from grdr.sim.train import TrainConfig, TrainData, _loss_fn, model_at, train

SETTINGS = {"lowrank": {"rank": 2}, "maxsim": {"vectors": 2, "doc_vectors": 2}}  # beyond the defaults
SCORERS = {name: scorer_fields(name, **SETTINGS.get(name, {})) for name in REGISTERED}  # every registered scorer
F = 6


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CorpusSpec(n_docs=40, n_train_queries=200, n_test_queries=4, latent_rank=3, feature_dim=F,
                                  beta=20.0, train_top_k=8))


@pytest.fixture(scope="module")
def data(corpus):
    return TrainData.from_corpus(corpus)


# --- the hard-negative pool -------------------------------------------------------------------------

def _reference_scores(model, qf_MxF, df_NxF):
    """Every query's score of every document in float64, from the towers' outputs by each scorer's
    formula written out here (not through sim.scorers), plus the document bias."""
    cfg, t = model.cfg, model.cfg.temperature
    f = np.asarray(model.query_tower(qf_MxF), np.float64)
    g = np.asarray(model.doc_embed[...] if cfg.doc_side == "table" else model.doc_tower(df_NxF), np.float64)
    sp = {k: np.asarray(v[...], np.float64) for k, v in getattr(model, "score_params", {}).items()}
    if cfg.scorer == "dot":
        s = f @ g.T
    elif cfg.scorer == "cosine":
        s = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    elif cfg.scorer == "bilinear":
        s = f @ sp["score_w"] @ g.T
    elif cfg.scorer == "lowrank":
        s = (f @ sp["score_u"]) @ (g @ sp["score_v"]).T
    elif cfg.scorer != "maxsim":  # any other dot-form scorer: its own representations, met in float64
        scorer, own = model.scorer, {k: v[...] for k, v in getattr(model, "score_params", {}).items()}
        assert scorer.dot_form, f"scorer {cfg.scorer!r}: write its formula out here"
        s = np.asarray(scorer.queries(own, f), np.float64) @ np.asarray(scorer.docs(own, g), np.float64).T * t
    else:
        m, mp, D = cfg.maxsim.vectors, cfg.maxsim.doc_vectors, cfg.dim
        f3, g3 = f.reshape(-1, m, D), g.reshape(-1, mp, D)
        s = np.zeros((f.shape[0], g.shape[0]))
        for i in range(m):
            s += np.max(np.stack([f3[:, i] @ g3[:, j].T for j in range(mp)]), axis=0)
    bias = np.asarray(model.bias[...], np.float64) if cfg.doc_bias else 0.0
    return s / t + bias


def _models(model_cfg, n_docs, seeds):
    """Models with a random (not zero) document bias, so that the pool has to add it."""
    out = []
    for seed in seeds:
        model = make_model(model_cfg, n_docs=n_docs, feature_dim=F, seed=seed)
        model.bias[...] = jax.random.normal(jax.random.key(100 + seed), (n_docs,))
        out.append(model)
    return out


def _pool_of(models, qf, df, exclude, P):
    graphdef, _ = nnx.split(models[0], nnx.Param)
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.state(m, nnx.Param) for m in models])
    return np.asarray(hard_pool(graphdef, params, jnp.asarray(qf), jnp.asarray(df), jnp.asarray(exclude),
                                pool=P, data_axis=None))


def _inputs(M, N, T, seed=0):
    rng = np.random.default_rng(seed)
    qf = rng.normal(size=(M, F)).astype(np.float32)
    df = rng.normal(size=(N, F)).astype(np.float32)
    exclude = np.where(rng.random((M, T)) < 0.7, rng.integers(0, N, (M, T)), -1).astype(np.int32)
    return qf, df, exclude


def _assert_pool_is_the_top(pool_MxP, ref_MxN, exclude_MxT):
    """The pool is each query's top-P of the reference scores with its exclusions removed, best
    first; equal sets wherever the P-th and (P+1)-th scores are apart (ties aside)."""
    M, P = pool_MxP.shape
    ref = ref_MxN.copy()
    rows = np.repeat(np.arange(M), exclude_MxT.shape[1])
    keep = exclude_MxT.reshape(-1) >= 0
    ref[rows[keep], exclude_MxT.reshape(-1)[keep]] = -np.inf
    order = np.argsort(-ref, axis=1, kind="stable")
    top_MxP1 = np.take_along_axis(ref, order[:, :P + 1], axis=1)
    got_MxP = np.take_along_axis(ref, pool_MxP, axis=1)
    assert np.all(np.isfinite(got_MxP)), "an excluded document entered the pool"
    assert all(len(set(r)) == P for r in pool_MxP.tolist()), "a document twice in one pool"
    scale = np.abs(top_MxP1[:, :P]).max()
    np.testing.assert_allclose(got_MxP, top_MxP1[:, :P], atol=2e-5 * scale)  # the top P, in order
    apart = top_MxP1[:, P - 1] - top_MxP1[:, P] > 1e-4 * scale
    assert apart.mean() > 0.9  # the set comparison below covers nearly every query
    for r in np.flatnonzero(apart):
        assert set(pool_MxP[r].tolist()) == set(order[r, :P].tolist()), r


@pytest.mark.parametrize("name", list(SCORERS))
@pytest.mark.parametrize("doc_side", ["table", "tower"])
def test_the_hard_pool_is_the_top_p_of_the_scorers_scores(name, doc_side):
    """M = 300 queries: two query blocks of 256, the second padded; two seeds under vmap."""
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, doc_side=doc_side, doc_bias=True, **SCORERS[name])
    M, N, P = 300, 50, 6
    qf, df, exclude = _inputs(M, N, 3)
    models = _models(model_cfg, N, [0, 1])
    pool_SxMxP = _pool_of(models, qf, df, exclude, P)
    assert pool_SxMxP.shape == (2, M, P)
    for model, pool_MxP in zip(models, pool_SxMxP):
        _assert_pool_is_the_top(pool_MxP, _reference_scores(model, qf, df), exclude)
    assert not np.array_equal(pool_SxMxP[0], pool_SxMxP[1])


def test_the_maxsim_pool_over_many_document_chunks(monkeypatch):
    """A small pair budget: MaxSim scores each query block in document chunks of 16 (the last padded)."""
    monkeypatch.setattr("grdr.sim.scorers._MAXSIM_BUDGET", 256)
    model_cfg = ModelConfig(kind="dr", dim=3, hidden=8, depth=1, doc_side="table", doc_bias=True,
                            **scorer_fields("maxsim", vectors=2, doc_vectors=3))
    M, N, P = 40, 70, 5  # shapes no other test traces, so hard_pool compiles under this budget
    assert MaxSim(dim=3, vectors=2, doc_vectors=3)._chunk(M) == 16 < N
    qf, df, exclude = _inputs(M, N, 2, seed=1)
    models = _models(model_cfg, N, [2])
    _assert_pool_is_the_top(_pool_of(models, qf, df, exclude, P)[0], _reference_scores(models[0], qf, df), exclude)


def _dot_pool_before_scorers(model, qf_MxF, df_NxF, exclude_MxT, pool):
    """sim.hard_pool's computation before it went through the scorer: q @ e^T + b in blocks of 256."""
    emb_NxD, bias_N = model.doc_table(None, df_NxF)
    out = []
    for s in range(0, qf_MxF.shape[0], 256):
        qf, ex = qf_MxF[s:s + 256], exclude_MxT[s:s + 256]
        s_bxN = model.encode_queries(qf) @ emb_NxD.T + bias_N[None, :]
        rows = jnp.broadcast_to(jnp.arange(s_bxN.shape[0])[:, None], ex.shape)
        s_bxN = s_bxN.at[rows, jnp.where(ex >= 0, ex, emb_NxD.shape[0])].set(-jnp.inf, mode="drop")
        out.append(np.asarray(jax.lax.top_k(s_bxN, pool)[1]))
    return np.concatenate(out)


@pytest.mark.parametrize("name", ["dot", "cosine", "bilinear", "lowrank"])
def test_a_dot_form_pool_is_the_plain_dot_product_pool(name):
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, doc_side="tower", doc_bias=True, **SCORERS[name])
    qf, df, exclude = _inputs(300, 50, 3, seed=2)
    models = _models(model_cfg, 50, [0])
    np.testing.assert_array_equal(_pool_of(models, qf, df, exclude, 6)[0],
                                  _dot_pool_before_scorers(models[0], jnp.asarray(qf), jnp.asarray(df),
                                                           jnp.asarray(exclude), 6))


# --- training with hard negatives ---------------------------------------------------------------------

@pytest.mark.parametrize("name,sampler,sparse", [("maxsim", "hard", False), ("bilinear", "hard_denoised", False),
                                                 ("lowrank", "mixed", False), ("maxsim", "hard", True)],
                         ids=["maxsim-hard", "bilinear-denoised", "lowrank-mixed", "maxsim-hard-sparse"])
def test_a_non_dot_scorer_trains_with_hard_negatives(data, name, sampler, sparse):
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=16, depth=1, doc_side="table", **SCORERS[name])
    cfg = TrainConfig(objective="local", sampler=sampler, num_negatives=4, batch_size=32, steps=120,
                      steps_per_call=20, hard_refresh=40, hard_pool=8, learning_rate=0.02, heldout=20,
                      sparse_table=sparse)
    got = train(model_cfg, cfg, data, [0])
    assert np.all(np.isfinite(got.losses_SxT))
    # the sampled loss falls (not far: a pool that holds d+ draws it as its own negative, a hit that is kept
    # and costs at least log 2 whatever the scores)
    assert got.losses_SxT[0, -1] < 0.9 * got.losses_SxT[0, 0]
    assert got.heldout_SxT[0, -1] < got.heldout_SxT[0, 0] - 0.1  # and the full-softmax NLL with it
    if sampler == "hard_denoised":
        assert got.pool_false_negatives_S[0] == 0.0


# --- the row-sparse table ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bilinear", "lowrank", "maxsim"])
def test_sparse_sgd_equals_dense_sgd_for_every_scorer(data, name):
    """Under SGD the row-sparse update is exact: the same parameters as the dense step, the scorer's
    own parameters included (and they moved)."""
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, doc_side="table", doc_bias=True, **SCORERS[name])
    cfg = TrainConfig(objective="local", sampler="uniform", num_negatives=5, steps=6, steps_per_call=3,
                      optimizer="sgd", learning_rate=0.05, batch_size=8)
    dense = train(model_cfg, cfg, data, [0, 1])
    sparse = train(model_cfg, dataclasses.replace(cfg, sparse_table=True), data, [0, 1])
    np.testing.assert_allclose(sparse.losses_SxT, dense.losses_SxT, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), dense.params, sparse.params)
    init = nnx.state(make_model(model_cfg, n_docs=data.n_docs, feature_dim=F, seed=0), nnx.Param)
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a[0]) - np.asarray(b)).max()), sparse.params, init)
    assert min(jax.tree.leaves(moved["doc_embed"])) > 1e-4
    if name in ("bilinear", "lowrank"):  # cosine and MaxSim have no parameters of their own
        assert min(jax.tree.leaves(moved["score_params"])) > 1e-4


@pytest.mark.parametrize("name", ["lowrank", "maxsim"])
def test_sparse_adam_trains_the_scorer_densely_and_the_table_lazily(data, name):
    """Reference: the dense path's gradients (sim.train._loss_fn); AdamW on the query tower and the
    scorer's parameters (lowrank's U and V; MaxSim has none, its table rows are m' D wide); Adam on
    the table whose moments and rows move only where the gradient is nonzero."""
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, doc_side="table", doc_bias=True, **SCORERS[name])
    cfg = TrainConfig(objective="local", sampler="uniform", num_negatives=5, steps=4, steps_per_call=4,
                      learning_rate=0.01, batch_size=8, sparse_table=True)
    got = nnx.state(model_at(train(model_cfg, cfg, data, [3]), 0), nnx.Param)

    model = make_model(model_cfg, n_docs=data.n_docs, feature_dim=F, seed=3)
    graphdef, params = nnx.split(model, nnx.Param)
    dense_keys = ("query_tower", "score_params") if name == "lowrank" else ("query_tower",)
    opt = optax.adamw(cfg.learning_rate, weight_decay=0.0)
    dense = {k: params[k] for k in dense_keys}
    opt_state = opt.init(dense)
    table = {k: np.asarray(params[k][...], np.float64) for k in ("doc_embed", "bias")}
    m = {k: np.zeros_like(x) for k, x in table.items()}
    v = {k: np.zeros_like(x) for k, x in table.items()}
    consts = {"doc_features": jnp.asarray(data.doc_features_NxF)}
    key = jax.random.fold_in(jax.random.key(3), 1)
    grad = jax.jit(jax.grad(partial(_loss_fn, graphdef, consts=consts, cfg=cfg, kind="dr")))
    for t in range(1, cfg.steps + 1):
        key, k_batch, k_neg = jax.random.split(key, 3)
        rows = jax.random.randint(k_batch, (cfg.batch_size,), 0, data.pos_M.shape[0])
        batch = {"query_features": jnp.asarray(data.query_features_MxF)[rows], "pos": jnp.asarray(data.pos_M)[rows]}
        grads = grad(params, batch, k_neg)
        upd, opt_state = opt.update({k: grads[k] for k in dense_keys}, opt_state, dense)
        dense = optax.apply_updates(dense, upd)
        for k in table:
            g = np.asarray(grads[k][...], np.float64)
            sel = np.any(g != 0, axis=tuple(range(1, g.ndim)), keepdims=True) if g.ndim > 1 else g != 0
            m[k] = np.where(sel, 0.9 * m[k] + 0.1 * g, m[k])
            v[k] = np.where(sel, 0.999 * v[k] + 0.001 * g * g, v[k])
            step = cfg.learning_rate * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
            table[k] = np.where(sel, table[k] - step, table[k])
        nnx.replace_by_pure_dict(params, {**{k: nnx.to_pure_dict(dense[k]) for k in dense_keys},
                                          **{k: jnp.asarray(x, jnp.float32) for k, x in table.items()}})
    for k in table:
        np.testing.assert_allclose(np.asarray(got[k][...]), table[k], rtol=1e-4, atol=2e-6, err_msg=k)
    if name == "maxsim":
        assert table["doc_embed"].shape == (data.n_docs, 2 * 4)
        return
    init = nnx.state(make_model(model_cfg, n_docs=data.n_docs, feature_dim=F, seed=3), nnx.Param)
    for k in ("score_u", "score_v"):
        np.testing.assert_allclose(got["score_params"][k][...], params["score_params"][k][...], rtol=1e-4, atol=2e-6)
        assert np.abs(np.asarray(got["score_params"][k][...]) - np.asarray(init["score_params"][k][...])).max() > 1e-3
