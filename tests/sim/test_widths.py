"""Width buckets (sim.widths): a model trained inside a wider one is the same model, its padded units
exactly inert (zero contribution, zero gradient), and one program serves every width of a bucket.

The reference is the same model trained at its own widths, with no padding."""
import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

import grdr.sim.evaluate
from grdr.sim.evaluate import evaluate_model
from grdr.sim.curves import curve_data, curve_evaluator
from grdr.sim.models import ModelConfig, count_params, make_model, scorer_fields
from grdr.sim.scorers import scorer_of
from grdr.sim.train import TrainConfig, TrainData, compile_count, model_at, train
from grdr.sim.widths import (WIDTH_FLOOR, can_pad, check_inert, pad_params, padded_config, padded_width,
                             param_count)

N = 40  # the small_corpus fixture's documents (tests/sim/conftest.py)


@pytest.fixture(scope="module")
def corpus(small_corpus):
    return small_corpus


@pytest.fixture(scope="module")
def data(corpus):
    return TrainData.from_corpus(corpus)


def test_padded_width_shares_one_width_below_the_floor_and_stays_within_one_and_a_half_above():
    widths = (1, 2, 3, 5, 8, 12, 16, 30, 64, 100, 128, 129, 200, 256, 700, 1024)
    padded = [padded_width(w, widths) for w in widths]
    assert all(p >= w for w, p in zip(widths, padded))
    assert padded == sorted(padded)
    assert {p for w, p in zip(widths, padded) if w <= WIDTH_FLOOR} == {WIDTH_FLOOR}  # one program for all of them
    assert all(p <= 1.5 * w for w, p in zip(widths, padded) if w > WIDTH_FLOOR)
    # a sweep that stays below the floor is padded to its own widest bucket, not to the floor
    assert {padded_width(w, (2, 4, 9)) for w in (2, 4, 9)} == {12}
    assert padded_width(3, (3,)) == 8  # the smallest bucket


def test_padded_config_pads_only_what_is_inert():
    dr = ModelConfig(kind="dr", dim=3, hidden=6)
    assert padded_config(dr, widths=(6, 40), dims=(3, 5)) == dataclasses.replace(dr, dim=8, hidden=48)
    assert padded_config(dr, widths=(6,)) == dataclasses.replace(dr, hidden=8)  # D not swept: left alone
    maxsim = ModelConfig(kind="dr", dim=2, hidden=6, **scorer_fields("maxsim", vectors=2))
    assert padded_config(maxsim, widths=(6,), dims=(2, 4)).dim == 2  # m vectors of D: columns are not coordinates
    atomic = ModelConfig(kind="atomic_gr", dim=3, hidden=6)  # its D is not read: unified with the sweep's
    assert padded_config(atomic, widths=(6,), dims=(3, 9)) == dataclasses.replace(atomic, dim=12, hidden=8)
    lowrank = ModelConfig(kind="dr", dim=4, hidden=6, **scorer_fields("lowrank", rank=1))
    assert padded_config(lowrank, ranks=(1, 2, 4, 8)).lowrank.rank == 8  # r's zero columns of U and V
    assert padded_config(dr, ranks=(1, 8)) == dr  # no low-rank scorer: nothing to pad
    seq = ModelConfig(kind="seq_gr", hidden=6)
    assert not can_pad(seq) and padded_config(seq, widths=(6, 40)) == seq  # SoftNorm divides by H


CASES = {
    "dr-tower-global": (ModelConfig(kind="dr", dim=3, hidden=6, depth=2),
                        dict(dim=8, hidden=16), TrainConfig(objective="global")),
    "dr-table-global-bias": (ModelConfig(kind="dr", dim=3, hidden=6, doc_side="table", doc_bias=True),
                             dict(dim=8), TrainConfig(objective="global")),
    "dr-tower-local-uniform": (ModelConfig(kind="dr", dim=3, hidden=6),
                               dict(dim=4, hidden=12), TrainConfig(objective="local", num_negatives=6, logq=True)),
    "dr-cosine": (ModelConfig(kind="dr", dim=3, hidden=6, scorer="cosine"), dict(dim=8, hidden=8),
                  TrainConfig(objective="global")),
    "dr-bilinear": (ModelConfig(kind="dr", dim=3, hidden=6, scorer="bilinear"), dict(dim=8),
                    TrainConfig(objective="global")),
    "dr-lowrank": (ModelConfig(kind="dr", dim=3, hidden=6, **scorer_fields("lowrank", rank=2)), dict(dim=8, hidden=12),
                   TrainConfig(objective="global")),
    "dr-lowrank-rank": (ModelConfig(kind="dr", dim=3, hidden=6, **scorer_fields("lowrank", rank=1)),
                        dict(**scorer_fields("lowrank", rank=8), dim=4), TrainConfig(objective="global")),
    "atomic-global": (ModelConfig(kind="atomic_gr", hidden=5, depth=2), dict(hidden=16),
                      TrainConfig(objective="global")),
    "atomic-local-popularity": (ModelConfig(kind="atomic_gr", hidden=5), dict(hidden=8),
                                TrainConfig(objective="local", sampler="popularity", num_negatives=6)),
}
STEPS = dict(steps=12, steps_per_call=4, schedule="cosine", heldout=40, weight_decay=1e-2)


def _flat(model):
    return {p: np.asarray(v[...]) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


@pytest.mark.parametrize("name", list(CASES))
def test_training_inside_a_wider_model_equals_training_at_its_own_widths(name, corpus, data):
    """Losses, held-out NLL, learning curve, metrics and every real parameter agree up to float rounding,
    and every padded entry is exactly 0 after training (Adam moves an entry with any nonzero gradient)."""
    model_cfg, wider, cfg = CASES[name]
    cfg = dataclasses.replace(cfg, **STEPS)
    pad_to = dataclasses.replace(model_cfg, **wider)
    datas, seeds = [data, data], [3, 4]
    curve = lambda: curve_evaluator(model_cfg.kind, curve_data([corpus, corpus]))  # noqa: E731
    plain = train(model_cfg, cfg, datas, seeds, curve=curve())
    padded = train(model_cfg, cfg, datas, seeds, curve=curve(), pad_to=pad_to)

    np.testing.assert_allclose(padded.losses_SxT, plain.losses_SxT, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(padded.heldout_SxT, plain.heldout_SxT, rtol=2e-4, atol=1e-5)
    for key in ("kl", "success1"):
        np.testing.assert_allclose(padded.curve[key], plain.curve[key], rtol=2e-4, atol=1e-5)
    for i in range(2):
        a_model, b_model = model_at(padded, i), model_at(plain, i)
        assert a_model.cfg == pad_to and b_model.cfg == model_cfg
        a, b = _flat(a_model), _flat(b_model)
        assert a.keys() == b.keys()
        for path in a:
            real = a[path][tuple(slice(0, s) for s in b[path].shape)]
            assert np.count_nonzero(a[path]) == np.count_nonzero(real), f"a padded entry moved: {path}"
            if path[:2] == ("doc_tower", "out") and path[-1] == "bias":
                continue  # a per-query constant under a full softmax: zero true gradient, Adam amplifies float noise
            np.testing.assert_allclose(real, b[path], rtol=2e-3, atol=2e-5, err_msg=str(path))
        ours, theirs = (evaluate_model(m, corpus, k=10) for m in (a_model, b_model))
        for metric, value in theirs.items():
            assert ours[metric] == pytest.approx(value, rel=1e-4, abs=1e-5), metric


@pytest.mark.parametrize("name", ["dr-tower-global", "dr-bilinear", "dr-lowrank-rank", "atomic-global"])
def test_padded_units_have_exactly_zero_gradient_at_a_generic_point(name, corpus):
    """At a random (not trained) point, the full-softmax loss's gradient is exactly 0 on every padded entry
    and equals the unpadded model's gradient on the real ones."""
    model_cfg, wider, _ = CASES[name]
    pad_to = dataclasses.replace(model_cfg, **wider)
    model = make_model(model_cfg, n_docs=N, feature_dim=6, seed=7)
    graphdef, params = nnx.split(model, nnx.Param)
    big_def, big_abstract = nnx.split(nnx.eval_shape(lambda: make_model(pad_to, n_docs=N, feature_dim=6)), nnx.Param)
    big = jax.device_put(pad_params(params, big_abstract))
    q, pos = corpus.train.features_MxF[:32], corpus.train.pos_M[:32]

    def loss(graphdef, params):
        m = nnx.merge(graphdef, params)
        emb, bias = m.doc_table(None, corpus.doc_features_NxF)
        s = scorer_of(m).scores(m.encode_queries(q), emb) + bias[None, :]
        return -jax.nn.log_softmax(s, axis=1)[np.arange(32), pos].mean()

    g_small = _flat_state(jax.grad(lambda p: loss(graphdef, p))(params))
    g_big = _flat_state(jax.grad(lambda p: loss(big_def, p))(big))
    for path, g in g_big.items():
        real = g[tuple(slice(0, s) for s in g_small[path].shape)]
        assert np.count_nonzero(g) == np.count_nonzero(real), f"nonzero gradient on a padded entry: {path}"
        np.testing.assert_allclose(real, g_small[path], rtol=1e-4, atol=1e-6, err_msg=str(path))
    assert float(loss(big_def, big)) == pytest.approx(float(loss(graphdef, params)), rel=1e-6)


def _flat_state(state):
    return {p: np.asarray(v[...]) for p, v in nnx.to_flat_state(state)}


def test_check_inert_refuses_a_moved_padded_entry():
    real = {"w": jax.ShapeDtypeStruct((2, 3), np.float32)}
    ok = {"w": np.pad(np.ones((2, 2, 3), np.float32), ((0, 0), (0, 2), (0, 1)))}
    check_inert(ok, real, leading=1)
    moved = {"w": ok["w"].copy()}
    moved["w"][1, 3, 0] = 1e-30
    with pytest.raises(AssertionError, match="padded units moved"):
        check_inert(moved, real, leading=1)


def test_one_training_and_one_evaluation_program_serve_every_width_of_a_bucket(corpus, data):
    """Hidden widths 3, 5 and 7 and D = 2, 3 inside (D, H) = (4, 8): one training program, one evaluation
    program, and the parameter count is each model's own."""
    cfg = TrainConfig(objective="global", steps=5, steps_per_call=4, batch_size=16)
    pad_to = ModelConfig(kind="dr", dim=4, hidden=8, depth=1, temperature=0.2)  # no other test's shapes
    before, evals = compile_count(), grdr.sim.evaluate._dense_eval._cache_size()
    for dim, hidden, seeds in ((2, 3, [0, 1]), (3, 5, [2, 3]), (2, 7, [5, 6])):
        model_cfg = dataclasses.replace(pad_to, dim=dim, hidden=hidden)
        result = train(model_cfg, cfg, data, seeds, pad_to=pad_to)
        evaluate_model(model_at(result, 0), corpus, k=10)
        own = count_params(make_model(model_cfg, n_docs=N, feature_dim=6))
        tower = 6 * hidden + hidden + hidden * dim + dim  # F -> H -> D, kernels and biases; a query and a document tower
        assert param_count(model_cfg, n_docs=N, feature_dim=6) == own == 2 * tower
    assert compile_count() - before == 1
    assert grdr.sim.evaluate._dense_eval._cache_size() - evals == 1


def test_padding_a_model_that_is_not_inert_is_refused(data):
    cfg = TrainConfig(objective="mle", steps=2, steps_per_call=2)
    seq = ModelConfig(kind="seq_gr", hidden=4)
    with pytest.raises(ValueError, match="cannot train"):
        train(seq, cfg, data, [0], pad_to=dataclasses.replace(seq, hidden=8))


@pytest.mark.parametrize("name", ["dr-tower-global", "atomic-global"])
def test_early_stopping_inside_a_wider_model_stops_where_its_own_width_does(name, corpus, data):
    """capacity_dim's quick preset trains padded widths with early stopping: the padded run picks the same call
    per seed and returns the same real parameters, its padded entries still exactly 0."""
    model_cfg, wider, cfg = CASES[name]
    # 80 steps at 0.03: the held-out NLL turns up before the end (best calls at 56-72 steps, measured)
    cfg = dataclasses.replace(cfg, **{**STEPS, "steps": 80, "steps_per_call": 8, "schedule": "constant"},
                              learning_rate=0.03, early_stop=True)
    pad_to = dataclasses.replace(model_cfg, **wider)
    plain = train(model_cfg, cfg, [data, data], [3, 4])
    padded = train(model_cfg, cfg, [data, data], [3, 4], pad_to=pad_to)
    assert (plain.best_step_S < cfg.steps).any(), "the fixture should stop early somewhere"
    np.testing.assert_array_equal(padded.best_step_S, plain.best_step_S)
    for i in range(2):
        a, b = _flat(model_at(padded, i)), _flat(model_at(plain, i))
        for path in a:
            real = a[path][tuple(slice(0, s) for s in b[path].shape)]
            assert np.count_nonzero(a[path]) == np.count_nonzero(real), f"a padded entry moved: {path}"
            if path[:2] == ("doc_tower", "out") and path[-1] == "bias":
                continue  # as above: a per-query constant under a full softmax
            np.testing.assert_allclose(real, b[path], rtol=2e-3, atol=2e-5, err_msg=str(path))
