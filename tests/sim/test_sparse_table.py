"""Row-sparse updates of a free document table against dense references written here."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.models import ModelConfig, make_model
from grdr.sim.train import TrainConfig, TrainData, _loss_fn, model_at, train

MODEL = ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True)


@pytest.fixture(scope="module")
def data():
    c = make_corpus(CorpusSpec(n_docs=40, n_train_queries=200, n_test_queries=4, latent_rank=3, feature_dim=6))
    return TrainData.from_corpus(c)


def test_sparse_sgd_equals_dense_sgd(data):
    cfg = TrainConfig(objective="local", sampler="uniform", num_negatives=5, steps=6, steps_per_call=3,
                      optimizer="sgd", learning_rate=0.05, batch_size=8)
    dense = train(MODEL, cfg, data, [0, 1])
    sparse = train(MODEL, dataclasses.replace(cfg, sparse_table=True), data, [0, 1])
    np.testing.assert_allclose(sparse.losses_SxT, dense.losses_SxT, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), dense.params, sparse.params)


def test_lazy_adam_matches_a_masked_dense_reference(data):
    """Reference: dense gradients; Adam moments and rows move only where the gradient is nonzero."""
    cfg = TrainConfig(objective="local", sampler="uniform", num_negatives=5, steps=4, steps_per_call=4,
                      learning_rate=0.01, batch_size=8, sparse_table=True)
    got = train(MODEL, cfg, data, [3])

    model = make_model(MODEL, n_docs=data.n_docs, feature_dim=6, seed=3)
    graphdef, params = nnx.split(model, nnx.Param)
    tower_opt = optax.adamw(cfg.learning_rate, weight_decay=0.0)
    tower_state = tower_opt.init(params["query_tower"])
    table = {k: np.asarray(params[k][...], np.float64) for k in ("doc_embed", "bias")}
    m = {k: np.zeros_like(x) for k, x in table.items()}
    v = {k: np.zeros_like(x) for k, x in table.items()}
    consts = {"doc_features": jnp.asarray(data.doc_features_NxF)}
    key = jax.random.fold_in(jax.random.key(3), 1)
    for t in range(1, cfg.steps + 1):
        key, k_batch, k_neg = jax.random.split(key, 3)
        rows = jax.random.randint(k_batch, (cfg.batch_size,), 0, data.pos_M.shape[0])
        batch = {"query_features": jnp.asarray(data.query_features_MxF)[rows], "pos": jnp.asarray(data.pos_M)[rows]}
        grads = jax.grad(lambda p: _loss_fn(graphdef, p, batch, k_neg, consts, cfg, "dr"))(params)
        upd, tower_state = tower_opt.update(grads["query_tower"], tower_state, params["query_tower"])
        new_tower = optax.apply_updates(params["query_tower"], upd)
        for k in table:
            g = np.asarray(grads[k][...], np.float64)
            touched = np.any(g != 0, axis=tuple(range(1, g.ndim))) if g.ndim > 1 else g != 0
            sel = touched.reshape((-1,) + (1,) * (g.ndim - 1))
            m[k] = np.where(sel, 0.9 * m[k] + 0.1 * g, m[k])
            v[k] = np.where(sel, 0.999 * v[k] + 0.001 * g * g, v[k])
            step = cfg.learning_rate * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
            table[k] = np.where(sel, table[k] - step, table[k])
        nnx.replace_by_pure_dict(params, {"query_tower": nnx.to_pure_dict(new_tower),
                                          **{k: jnp.asarray(x, jnp.float32) for k, x in table.items()}})
    trained = nnx.state(model_at(got, 0), nnx.Param)
    for k in table:
        np.testing.assert_allclose(np.asarray(trained[k][...]), table[k], rtol=1e-4, atol=2e-6)


def test_sparse_table_needs_a_free_table(data):
    with pytest.raises(ValueError, match="doc_side='table'"):
        train(ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="local", sparse_table=True, steps=2), data, [0])
    with pytest.raises(ValueError, match="objective='local'"):
        TrainConfig(objective="global", sparse_table=True)
