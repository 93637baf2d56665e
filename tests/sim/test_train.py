import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from grdr.sim.corpus import CorpusSpec, make_corpus
from grdr.sim.docids import random_tree_docids
from grdr.sim.models import ModelConfig
from grdr.sim.train import TrainConfig, TrainData, TrainingDiverged, _loss_fn, model_at, train


@pytest.fixture(scope="module")
def data():
    c = make_corpus(CorpusSpec(n_docs=60, n_train_queries=300, n_test_queries=10, latent_rank=3, feature_dim=6))
    return TrainData.from_corpus(c, random_tree_docids(60, 4))


def test_the_local_objective_with_every_other_document_as_negatives_is_the_global_one(data, monkeypatch):
    """sim.train's sampled-softmax path (gather of d+ and its negatives, scores, masking) equals its
    full-softmax path when the sampler returns the N-1 other documents, uncorrected."""
    from grdr.sim.models import make_model
    from grdr.sim.samplers import Sampler

    N, B = data.n_docs, 12
    pos = jnp.asarray(data.pos_M[:B])

    def every_other(self, key, batch_size, num_negatives, n_docs, consts, pool_BxP=None):
        return jnp.stack([jnp.delete(jnp.arange(N), p, assume_unique_indices=True) for p in np.asarray(pos)])

    monkeypatch.setattr(Sampler, "draw", every_other)
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True)
    graphdef, params = nnx.split(make_model(model_cfg, n_docs=N, feature_dim=6, seed=1), nnx.Param)
    batch = {"query_features": jnp.asarray(data.query_features_MxF[:B]), "pos": pos}
    consts = {"doc_features": jnp.asarray(data.doc_features_NxF)}
    local = _loss_fn(graphdef, params, batch, jax.random.key(0), consts,
                     TrainConfig(objective="local", num_negatives=N - 1), "dr")
    full = _loss_fn(graphdef, params, batch, jax.random.key(0), consts, TrainConfig(objective="global"), "dr")
    np.testing.assert_allclose(local, full, rtol=1e-5)


@pytest.mark.parametrize("hits", ["keep", "mask"])
def test_the_local_objective_is_the_standard_logq_loss_on_the_drawn_candidates(data, hits):
    """sim.train's local loss with logQ equals a plain-numpy loss over the same draws: every candidate's
    logit is s - log Q (the positive's too), accidental hits kept or dropped as configured."""
    import scipy.special

    from grdr.sim.local_objective import draw_candidates
    from grdr.sim.models import make_model
    from grdr.sim.samplers import get_sampler

    N, B, K = data.n_docs, 16, 40   # K close to N: some draws hit d+
    pos = jnp.asarray(data.pos_M[:B])
    cfg = TrainConfig(objective="local", sampler="popularity", logq=True, num_negatives=K, accidental_hits=hits)
    consts = {k: jnp.asarray(v) for k, v in get_sampler("popularity").constants(data.pos_M, N).items()}
    consts["doc_features"] = jnp.asarray(data.doc_features_NxF)
    model_cfg = ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table")
    model = make_model(model_cfg, n_docs=N, feature_dim=6, seed=1)
    graphdef, params = nnx.split(model, nnx.Param)
    batch = {"query_features": jnp.asarray(data.query_features_MxF[:B]), "pos": pos}
    got = float(_loss_fn(graphdef, params, batch, jax.random.key(3), consts, cfg, "dr"))
    idx, _, _ = draw_candidates(jax.random.key(3), pos, cfg, N, consts)
    idx = np.asarray(idx)
    s = np.asarray(model.encode_queries(batch["query_features"]) @ model.doc_table(None, consts["doc_features"])[0].T,
                   np.float64)
    counts = np.bincount(data.pos_M, minlength=N) / len(data.pos_M)
    logits = np.take_along_axis(s, idx, axis=1) - np.log(counts[idx])
    hit = idx[:, 1:] == idx[:, :1]
    assert hit.any()
    if hits == "mask":
        logits[:, 1:][hit] = -np.inf
    expected = np.mean(scipy.special.logsumexp(logits, axis=1) - logits[:, 0])
    assert got == pytest.approx(expected, rel=1e-5)


def test_per_seed_data_equals_training_each_seed_on_its_own(data):
    """Each seed may train on its own corpus (same shapes): vmapped together equals one at a time."""
    other = make_corpus(CorpusSpec(n_docs=60, n_train_queries=300, n_test_queries=10, latent_rank=3, feature_dim=6,
                                   seed=9))
    datas = [data, TrainData.from_corpus(other, data.docids)]
    model_cfg, cfg = ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="local", steps=4, steps_per_call=2)
    both = train(model_cfg, cfg, datas, [3, 4])
    for i, (d, seed) in enumerate(zip(datas, [3, 4])):
        alone = train(model_cfg, cfg, d, [seed])
        np.testing.assert_allclose(both.losses_SxT[i], alone.losses_SxT[0], rtol=2e-4, atol=1e-5)
    assert not np.allclose(both.losses_SxT[0], both.losses_SxT[1])


CASES = [
    (ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="global", steps=20, steps_per_call=10)),
    (ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table", doc_bias=True),
     TrainConfig(objective="local", sampler="mixed", logq=True, steps=20, hard_refresh=10, hard_pool=8, num_negatives=4)),
    (ModelConfig(kind="atomic_gr", hidden=8), TrainConfig(objective="local", sampler="popularity", steps=20, num_negatives=4)),
    (ModelConfig(kind="seq_gr", hidden=8), TrainConfig(objective="mle", steps=20, steps_per_call=10)),
]


@pytest.mark.parametrize("model_cfg,train_cfg", CASES[1:], ids=["dr-mixed-logq", "atomic-pop", "seq"])
def test_vmap_over_seeds_equals_one_seed_at_a_time(data, model_cfg, train_cfg):
    # few steps: Adam's normalisation amplifies float reassociation over long runs
    train_cfg = dataclasses.replace(train_cfg, steps=4, steps_per_call=2, hard_refresh=2)
    both = train(model_cfg, train_cfg, data, seeds=[3, 4])
    for i, seed in enumerate([3, 4]):
        alone = train(model_cfg, train_cfg, data, seeds=[seed])
        np.testing.assert_allclose(both.losses_SxT[i], alone.losses_SxT[0], rtol=2e-4, atol=1e-5)
        a = nnx.to_flat_state(nnx.state(model_at(both, i), nnx.Param))
        b = dict(nnx.to_flat_state(nnx.state(model_at(alone, 0), nnx.Param)))
        for path, x in a:
            # a per-query constant (the doc tower's output bias under a full softmax) has zero true
            # gradient; Adam turns its float noise into full-size steps, so it is not comparable
            if path[:2] == ("doc_tower", "out") and path[-1] == "bias" and train_cfg.objective == "global":
                continue
            np.testing.assert_allclose(x[...], b[path][...], rtol=2e-3, atol=2e-5, err_msg=str(path))


@pytest.mark.parametrize("model_cfg,train_cfg", CASES[:1] + CASES[3:], ids=["dr-global", "seq"])
def test_jit_equals_eager(data, model_cfg, train_cfg):
    from grdr.sim.models import make_model

    model = make_model(model_cfg, n_docs=data.n_docs, feature_dim=6, docids=data.docids)
    graphdef, params = nnx.split(model, nnx.Param)
    batch = {"query_features": jnp.asarray(data.query_features_MxF[:16]), "pos": jnp.asarray(data.pos_M[:16])}
    consts = {"doc_features": jnp.asarray(data.doc_features_NxF), "codes_NxL": jnp.asarray(data.docids.codes_NxL),
              "prefix_NxL": jnp.asarray(data.docids.prefix_NxL), "valid_PxV": jnp.asarray(data.docids.valid_PxV)}
    f = lambda p: _loss_fn(graphdef, p, batch, jax.random.key(0), consts, train_cfg, model_cfg.kind)  # noqa: E731
    eager = jax.value_and_grad(f)(params)
    jitted = jax.jit(jax.value_and_grad(f))(params)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), eager, jitted)


def test_training_lowers_the_loss(data):
    r = train(ModelConfig(kind="dr", dim=4, hidden=16), TrainConfig(objective="global", steps=200, steps_per_call=50), data, [0])
    assert r.losses_SxT[0, -1] < r.losses_SxT[0, 0] - 0.3


def test_nan_loss_stops_with_the_config(data):
    bad = TrainData(data.query_features_MxF.copy(), data.pos_M, data.doc_features_NxF)
    bad.query_features_MxF[:] = np.nan
    with pytest.raises(TrainingDiverged, match="objective='global'"):
        train(ModelConfig(kind="dr", dim=4, hidden=8), TrainConfig(objective="global", steps=10), bad, [0])


def test_objective_must_fit_the_model(data):
    with pytest.raises(ValueError, match="maximum likelihood"):
        train(ModelConfig(kind="seq_gr"), TrainConfig(objective="global"), data, [0])
    with pytest.raises(ValueError, match="TrainConfig.sampler"):
        TrainConfig(sampler="nearest")


def test_same_shapes_compile_once(data):
    """A second sweep point with other seeds and more steps reuses the compiled program."""
    mc = ModelConfig(kind="dr", dim=4, hidden=8)
    first = train(mc, TrainConfig(objective="local", steps=4, steps_per_call=2), data, [0, 1])
    again = train(mc, TrainConfig(objective="local", steps=6, steps_per_call=2), data, [5, 6])
    assert first.compiles <= 1 and again.compiles == 0
    # one timing per compiled call, as one loss per call: 6 steps in calls of 2
    assert len(again.call_seconds) == again.losses_SxT.shape[1] == 3 and min(again.call_seconds) > 0


def test_heldout_pairs_are_not_trained_on_and_their_nll_is_the_full_softmax_cross_entropy(data):
    cfg = TrainConfig(objective="local", steps=40, steps_per_call=10, heldout=50, schedule="cosine")
    r = train(ModelConfig(kind="dr", dim=4, hidden=8), cfg, data, [0])
    assert r.heldout_SxT.shape == (1, 1 + 4)  # before training and after each of the 4 calls
    model = model_at(r, 0)
    q = model.encode_queries(jnp.asarray(data.query_features_MxF[-50:]))
    emb, bias = model.doc_table(None, jnp.asarray(data.doc_features_NxF))
    s = np.asarray(q @ emb.T + bias[None, :], np.float64)
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    nll = -np.mean(logp[np.arange(50), data.pos_M[-50:]])
    assert r.heldout_SxT[0, -1] == pytest.approx(nll, rel=1e-4)
    last, total = r.heldout_falls_S()
    assert np.isfinite(last[0]) and total[0] == pytest.approx(r.heldout_SxT[0, 0] - r.heldout_SxT[0, -1:].mean())


def test_cosine_schedule_ends_at_its_final_fraction():
    from grdr.sim.train import learning_rate

    schedule = learning_rate(TrainConfig(steps=100, learning_rate=0.01, schedule="cosine", final_lr_fraction=0.1))
    assert float(schedule(0)) == pytest.approx(0.01) and float(schedule(100)) == pytest.approx(0.001)
    assert float(schedule(50)) == pytest.approx(0.001 + 0.009 * 0.5)


@pytest.mark.parametrize("cfg", [TrainConfig(), TrainConfig(schedule="cosine", weight_decay=0.1),
                                 TrainConfig(optimizer="sgd", schedule="cosine"), TrainConfig(optimizer="sgd")],
                         ids=["adamw", "adamw-cosine-decay", "sgd-cosine", "sgd"])
def test_the_optimizer_state_built_on_the_host_is_optax_s_init(data, cfg):
    """sim.optim.zero_state (host zeros in the state's structure) equals the optimizer's own init."""
    from grdr.sim.models import make_model
    from grdr.sim.optim import optimizer as _optimizer, zero_state

    params = nnx.state(make_model(ModelConfig(kind="dr", dim=4, hidden=8, doc_side="table"), n_docs=data.n_docs,
                                  feature_dim=6), nnx.Param)
    params_S = jax.tree.map(lambda x: jnp.stack([x, x]), params)
    init = jax.vmap(_optimizer(cfg).init)
    expected, got = init(params_S), zero_state(init, params_S)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _heldout_nll(model, data, n):
    q = model.encode_queries(jnp.asarray(data.query_features_MxF[-n:]))
    emb, bias = model.doc_table(None, jnp.asarray(data.doc_features_NxF))
    s = np.asarray(q @ emb.T + bias[None, :], np.float64)
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    return -np.mean(logp[np.arange(n), data.pos_M[-n:]])


def test_early_stopping_returns_each_seeds_parameters_at_its_least_heldout_nll(data):
    """A free table at a large step size overfits 200 training queries: the held-out NLL turns up, and
    each seed's returned model is the one after its best call, the same as a run stopped there."""
    model_cfg = ModelConfig(kind="dr", dim=8, doc_side="table")
    cfg = TrainConfig(objective="global", steps=300, steps_per_call=20, heldout=100, learning_rate=0.1,
                      early_stop=True)
    r = train(model_cfg, cfg, data, [0, 1])
    best_C = r.heldout_SxT.argmin(axis=1)
    np.testing.assert_array_equal(r.best_step_S, best_C * cfg.steps_per_call)
    assert (r.best_step_S < cfg.steps).all(), "the fixture should overfit before the last call"
    for i in range(2):
        assert _heldout_nll(model_at(r, i), data, 100) == pytest.approx(r.heldout_SxT[i].min(), rel=1e-4)
        stopped = train(model_cfg, dataclasses.replace(cfg, steps=int(r.best_step_S[i]), early_stop=False), data,
                        [[0, 1][i]])
        for a, b in zip(jax.tree.leaves(model_at(stopped, 0)), jax.tree.leaves(model_at(r, i))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)  # vmap of 2 vs 1 seed


def test_early_stopping_needs_heldout_queries():
    with pytest.raises(ValueError, match="heldout"):
        TrainConfig(early_stop=True)


@pytest.mark.parametrize("best, expected", [(0, 0.0), (100, 1.0), (300, 1.0), (400, 0.0)])
def test_under_early_stopping_a_run_converged_when_its_best_call_came_after_training_and_before_the_last_quarter(
        best, expected):
    """Steps 0-400, a curve still falling by half over its last doubling (so the curve's own rule says no):
    best step 0 is an untrained model, 400 (the last call) says more steps might help."""
    from types import SimpleNamespace

    from grdr.experiments.pipeline import _converged

    steps, kl_C = np.array([0, 100, 200, 400]), np.array([5.0, 3.0, 2.0, 1.0])
    assert _converged(SimpleNamespace(best_step_S=np.array([best])), 0, steps, kl_C) == expected
    assert _converged(SimpleNamespace(best_step_S=None), 0, steps, kl_C) == 0.0
